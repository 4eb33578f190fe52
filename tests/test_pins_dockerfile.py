"""pins.dockerfile: base images, pip installs and checkouts of sglang, per build stage, each at its own line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from eagle3_patch.errors import EXIT_OK, EXIT_UNPATCHED
from eagle3_patch.pins import find_pins, judge
from eagle3_patch.pins.dockerfile import dockerfile_pins
from tests.conftest import FIXTURES, run_json

CHECKOUTS = FIXTURES / "pins" / "checkouts"


def judged(path: Path) -> list[tuple[int, str | None, str, str]]:
    return [(f.pin.line, f.pin.version, f.verdict, f.pin.note) for f in map(judge, find_pins(path))]


def dockerfile(tmp_path: Path, text: str) -> list[tuple[int, str | None, str]]:
    path = tmp_path / "Dockerfile"
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return [(p.line, p.version, p.text) for p in dockerfile_pins(str(path))]


def test_checkouts_of_a_tag_installed_from_the_python_folder() -> None:
    """SGLang's own build: git clone --branch/-b TAG (or git checkout ${ARG}), then pip install [-e] python[...]."""
    assert judged(CHECKOUTS / "Dockerfile") == [
        # --branch on line 6; the install three lines below, after a comment line Docker drops
        (6, "0.5.16", "patch", "a checkout of tag v0.5.16, installed on line 9"),
        # the tag from an ARG, checked out after the clone in an earlier RUN
        (
            13,
            "0.4.6.post5",
            "unsupported",
            "a checkout of tag v0.4.6.post5 from SGL_BRANCH set on line 2, installed on line 13",
        ),
        # a branch: `cd python && uv pip install .`; `cd ../sgl-kernel && uv pip install .` is not sglang
        (
            20,
            None,
            "unpinned",
            "a checkout of branch main from VER_SGLANG set on line 16, installed on line 22; "
            "name a release tag (vX.Y.Z) the hook can judge",
        ),
        # -b TAG into a folder, installed as /opt/sglang/python
        (27, "0.5.21", "patch", "a checkout of tag v0.5.21, installed on line 27"),
        # no ref: the default branch moves
        (
            30,
            None,
            "unpinned",
            "a checkout of the default branch, installed on line 30; name a release tag (vX.Y.Z) the hook can judge",
        ),
        # line 33 clones v0.5.9 but installs nothing from it: no finding
    ]


def test_an_install_replaces_the_base_image_of_its_stage(runner: CliRunner) -> None:
    """Both are reported; the install is judged, the image's sglang is `replaced` (never failing)."""
    path = CHECKOUTS / "upgraded.Dockerfile"
    assert [(line, version, verdict) for line, version, verdict, _ in judged(path)] == [
        (2, "0.5.10.post1", "replaced"),  # 0.5.10 alone would fail the hook
        (4, "0.5.21", "patch"),  # `pip install --upgrade \` with the requirement on the next line
        (7, "0.5.21", "patch"),  # another stage's image is its own
        # `FROM serve AS final` names an earlier stage: nothing new to judge
    ]
    code, payload = run_json(runner, "pins", str(path))
    assert code == EXIT_OK
    assert payload["findings"][0]["verdict"] == "replaced"


def test_an_unpinned_install_over_a_pinned_image_still_fails(tmp_path: Path, runner: CliRunner) -> None:
    path = tmp_path / "Dockerfile"
    path.write_text("FROM lmsysorg/sglang:v0.5.21\nRUN pip install -U sglang\n")
    code, payload = run_json(runner, "pins", str(path))
    assert code == EXIT_UNPATCHED
    assert [f["verdict"] for f in payload["findings"]] == ["replaced", "unpinned"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            """
            FROM python:3.11
            RUN git clone --branch=v0.5.18 https://github.com/sgl-project/sglang.git \\
                && pip install "sglang/python[all]"
            """,
            [(2, "0.5.18", "https://github.com/sgl-project/sglang.git@v0.5.18")],
            id="--branch=TAG",
        ),
        pytest.param(
            """
            FROM python:3.11
            RUN git clone git@github.com:sgl-project/sglang.git src && git -C src checkout -b serve v0.5.19
            RUN cd src/python && pip install -e .
            """,
            [(2, "0.5.19", "git@github.com:sgl-project/sglang.git@v0.5.19")],
            id="git -C DIR checkout -b NAME TAG",
        ),
        pytest.param(
            """
            FROM python:3.11
            RUN git clone https://github.com/sgl-project/sglang.git && cd sglang && git checkout tags/v0.5.20 \\
                && pip install -e "python[all]"
            """,
            [(2, "0.5.20", "https://github.com/sgl-project/sglang.git@tags/v0.5.20")],
            id="checkout tags/TAG",
        ),
        pytest.param(
            """
            FROM python:3.11
            RUN git clone https://github.com/sgl-project/sglang.git && cd sglang && git checkout 3f2a9c1 \\
                && pip install -e "python[all]"
            """,
            [(2, None, "https://github.com/sgl-project/sglang.git@3f2a9c1")],
            id="a commit",
        ),
        pytest.param(
            """
            FROM python:3.11
            RUN git clone --branch v0.5.21 https://github.com/vllm-project/vllm.git && pip install -e "python[all]"
            """,
            [],
            id="another repository",
        ),
        pytest.param(
            """
            FROM python:3.11
            ENV SGL_BRANCH=v0.5.13
            RUN git clone https://github.com/sgl-project/sglang.git && cd sglang && git checkout ${SGL_BRANCH} \\
                && pip install -e "python[all]"
            """,
            [(3, "0.5.13", "https://github.com/sgl-project/sglang.git@v0.5.13")],
            id="ENV SGL_BRANCH",
        ),
        pytest.param(
            """
            FROM python:3.11
            ENV SGL_DEFAULT="main"
            ARG SGL_BRANCH=${SGL_DEFAULT}
            RUN git clone -b ${SGL_BRANCH} https://github.com/sgl-project/sglang.git && pip install sglang/python
            """,
            [(4, None, "https://github.com/sgl-project/sglang.git@main")],
            id="an ARG defaulting to another variable",
        ),
        pytest.param(
            """
            FROM python:3.11
            RUN git clone https://github.com/sgl-project/sglang.git && cd sglang \\
                && git checkout 0.4.9.post6 || echo "Using default branch" \\
                && pip install -e "python[all]"
            """,
            [(3, None, "https://github.com/sgl-project/sglang.git@0.4.9.post6")],
            id="a ref without v is no release tag",
        ),
        pytest.param(
            """
            FROM lmsysorg/sglang:v0.5.21 AS sglang
            FROM sglang
            """,
            [(1, "0.5.21", "lmsysorg/sglang:v0.5.21")],
            id="a stage named sglang is no moving image",
        ),
    ],
)
def test_checkout_shapes(tmp_path: Path, text: str, expected: list[tuple[int, str | None, str]]) -> None:
    assert dockerfile(tmp_path, text) == expected


@pytest.mark.parametrize(
    ("text", "note"),
    [
        pytest.param(
            "FROM python:3.11\nRUN git clone https://github.com/sgl-project/sglang.git && cd sglang\n"
            'RUN cd sglang && git checkout 3f2a9c1 && pip install -e "python[all]"\n',
            "a checkout of commit 3f2a9c1, installed on line 3",
            id="a commit",
        ),
        pytest.param(
            "FROM python:3.11\nRUN git clone -b 0.4.9.post6 https://github.com/sgl-project/sglang.git"
            " && pip install -e sglang/python\n",
            "a checkout of ref 0.4.9.post6, which is no release tag (sglang's are v0.4.9.post6), installed on line 2",
            id="a ref without v",
        ),
    ],
)
def test_a_ref_that_names_no_release_is_unpinned_with_its_reason(tmp_path: Path, text: str, note: str) -> None:
    path = tmp_path / "Dockerfile"
    path.write_text(text)
    (finding,) = map(judge, find_pins(path))
    assert finding.verdict == "unpinned"
    assert finding.pin.note.startswith(note)


def test_each_requirement_reports_its_own_line_in_a_multi_line_run(tmp_path: Path) -> None:
    found = dockerfile(
        tmp_path,
        """
        FROM python:3.11
        ARG V=0.5.21
        RUN apt-get update \\
            # a comment inside the RUN
            && pip install --no-cache-dir \\
                numpy \\
                "sglang[all]==${V}" \\
            && pip install sglang-router==0.2.1 \\
            ; pip install 'sglang==0.5.23'
        """,
    )
    assert found == [(7, "0.5.21", "sglang[all]==0.5.21"), (9, "0.5.23", "sglang==0.5.23")]


def test_a_checkout_reports_every_install_of_it(tmp_path: Path) -> None:
    """A shell ``if`` installs it one way or another: the note names each line, the tag is judged once."""
    path = tmp_path / "Dockerfile"
    path.write_text(
        textwrap.dedent(
            """
            FROM lmsysorg/sglang:v0.5.10
            ARG BUILD_TYPE=all
            RUN git clone --branch v0.5.21 https://github.com/sgl-project/sglang.git \\
                && cd sglang \\
                && if [ "$BUILD_TYPE" = "srt" ]; then \\
                       pip install -e "python[srt]"; \\
                   else \\
                       pip install -e "python[all]"; \\
                   fi
            """
        ).lstrip("\n")
    )
    assert [(p.line, p.version, p.note, p.replaced_by) for p in find_pins(path)] == [
        (1, "0.5.10", "the base image", 6),
        (3, "0.5.21", "a checkout of tag v0.5.21, installed on lines 6, 8", 0),
    ]


def test_heredocs_run_as_shell_are_read_other_bodies_are_not() -> None:
    """``RUN <<EOF``: the script's pins at their lines; ``python3 <<EOF`` and COPY bodies are skipped."""
    assert [(line, version) for line, version, _, _ in judged(FIXTURES / "pins" / "heredocs" / "Dockerfile")] == [
        (7, "0.5.21"),  # inside the script, after a comment line and a continued line
        (15, "0.5.23"),  # the instruction after the bodies: they were not read as instructions
    ]
