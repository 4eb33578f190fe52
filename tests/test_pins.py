"""pins: finding sglang requirements in each file format, and judging them."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from eagle3_patch import pins
from eagle3_patch.errors import EXIT_OK, EXIT_UNPATCHED, EXIT_USAGE
from eagle3_patch.pins import Pin, file_kind, find_pins, judge, scan, verdicts
from eagle3_patch.pins import requirement as requirement_module
from eagle3_patch.pins.from_code import judge_from_code
from eagle3_patch.pins.requirement import SglangRequirement
from eagle3_patch.verified import load_verified
from tests.conftest import FIXTURES, REPO, run_cli, run_json


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def found(path: Path) -> list[tuple[int, str, str | None, str]]:
    return [(p.line, p.text, p.version, p.note) for p in find_pins(path)]


def test_requirements_extras_markers_comments_hashes(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "requirements.txt",
        """
        # sglang==0.5.0 in a comment is not a pin
        numpy>=1.26
        sglang[all,srt]==0.5.21 ; python_version >= "3.10"  # the pin
        SGLang==0.5.23 \\
            --hash=sha256:0123
        sglang~=0.5.11
        sglang==0.5.*
        sglang
        """,
    )
    assert found(path) == [
        (3, 'sglang[all,srt]==0.5.21 ; python_version >= "3.10"', "0.5.21", ""),
        (4, "SGLang==0.5.23", "0.5.23", ""),
        (6, "sglang~=0.5.11", None, ""),
        (7, "sglang==0.5.*", None, ""),
        (8, "sglang", None, ""),
    ]


def test_requirements_includes_and_editables(tmp_path: Path) -> None:
    top = write(
        tmp_path,
        "requirements.txt",
        """
        -r base/requirements-base.txt
        --constraint=constraints.txt
        -rloop.txt
        -e ./sglang/python
        -e git+https://github.com/sgl-project/sglang.git#egg=sglang&subdirectory=python
        https://example.invalid/wheels/sglang-0.5.19-cp311-cp311-manylinux_2_34_x86_64.whl
        """,
    )
    write(tmp_path, "base/requirements-base.txt", "-r ../requirements.txt\nsglang==0.5.17\n")
    write(tmp_path, "constraints.txt", "sglang==0.5.18\n")
    write(tmp_path, "loop.txt", "-r requirements.txt\n")
    pins_found = find_pins(top)
    assert [(Path(p.path).name, p.line, p.version) for p in pins_found] == [
        ("requirements-base.txt", 2, "0.5.17"),
        ("constraints.txt", 1, "0.5.18"),
        ("requirements.txt", 4, None),
        ("requirements.txt", 5, None),
        ("requirements.txt", 6, "0.5.19"),
    ]
    assert pins_found[2].note == "editable install from a checkout"


def test_pyproject_arrays_groups_and_poetry(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "pyproject.toml",
        """
        [project]
        name = "deploy"
        dependencies = [
            "click",
            "sglang[all]==0.5.21",
        ]

        [project.optional-dependencies]
        serve = ["sglang>=0.5.11"]

        [dependency-groups]
        gpu = ["sglang==0.5.22", {include-group = "serve"}]

        [tool.poetry.dependencies]
        sglang = {version = "0.5.20", extras = ["all"]}

        [tool.poetry.group.dev.dependencies]
        sglang = "^0.5.11"
        """,
    )
    assert [(line, version) for line, _, version, _ in found(path)] == [
        (5, "0.5.21"),
        (9, None),
        (12, "0.5.22"),
        (15, "0.5.20"),
        (18, None),
    ]


def test_dockerfile_arg_env_continuations_exec_form_and_uv(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "Dockerfile.serve",
        """
        ARG SGLANG_VERSION=0.5.21
        FROM python:3.11
        ARG SGLANG_VERSION
        ENV TOOLS_VERSION 0.1.0
        # RUN pip install sglang==0.5.0 (a comment)
        RUN pip install --no-cache-dir -i https://pypi.org/simple \\
            "sglang[all]==${SGLANG_VERSION}" \\
            && eagle3-patch apply
        RUN uv pip install --system sglang==$NOT_SET
        RUN ["python", "-m", "pip", "install", "sglang==0.5.10"]
        RUN pip install -r requirements.txt && echo sglang==0.5.9
        RUN pip3 install sglang==${LATER:-0.5.23}
        """,
    )
    assert found(path) == [
        (6, "sglang[all]==0.5.21", "0.5.21", "version from SGLANG_VERSION set on line 1"),
        (9, "sglang==$NOT_SET", None, "its version comes from a variable with no default here"),
        (10, "sglang==0.5.10", "0.5.10", ""),
        (12, "sglang==0.5.23", "0.5.23", ""),
    ]


LOCK_TAIL = '[[package]]\nname = "numpy"\nversion = "2"\n\n[[package]]\nname = "sglang"\nversion = "0.5.19"\n'


@pytest.mark.parametrize(("name", "text"), [("uv.lock", "version = 1\n\n" + LOCK_TAIL), ("poetry.lock", LOCK_TAIL)])
def test_lock_files(tmp_path: Path, name: str, text: str) -> None:
    assert found(write(tmp_path, name, text)) == [(8 if name == "uv.lock" else 6, "sglang==0.5.19", "0.5.19", "")]


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("requirements-dev.txt", "requirements"),
        ("constraints.txt", "requirements"),
        ("requirements.in", "requirements"),
        ("pyproject.toml", "pyproject"),
        ("Dockerfile", "dockerfile"),
        ("Containerfile.gpu", "dockerfile"),
        ("serve.Dockerfile", "dockerfile"),
        ("uv.lock", "uv.lock"),
        ("poetry.lock", "poetry.lock"),
        ("setup.py", None),
    ],
)
def test_file_kinds(name: str, kind: str | None) -> None:
    assert file_kind(Path(name)) == kind


def pin(version: str | None) -> Pin:
    return Pin(Path("requirements.txt"), 3, f"sglang=={version}" if version else "sglang>=0.5", version, "requirements")


@pytest.mark.parametrize(
    ("version", "verdict"),
    [
        ("0.5.21", "patch"),
        ("0.5.21.0", "patch"),  # PEP 440 equal to a row, spelt differently
        ("v0.5.21", "patch"),
        ("0.5.23", "native"),
        ("0.5.10", "unsupported"),
        ("0.5.99", "unknown"),
        ("banana", "unknown"),
        (None, "unpinned"),
    ],
)
def test_verdicts_come_from_the_verified_table(version: str | None, verdict: str) -> None:
    assert judge(pin(version)).verdict == verdict
    row = next((r for r in load_verified() if r.version == version), None)
    if row is not None:
        assert row.verdict == verdict


def test_finding_line_format() -> None:
    assert judge(pin("0.5.10")).line().startswith("requirements.txt:3: sglang==0.5.10: unsupported — ")
    assert judge(pin(None)).line().startswith("requirements.txt:3: sglang>=0.5: unpinned — pin an exact release")


def test_scan_reports_an_included_file_once(tmp_path: Path) -> None:
    top = write(tmp_path, "requirements.txt", "-r requirements-base.txt\n")
    base = write(tmp_path, "requirements-base.txt", "sglang==0.5.21\n")
    assert len(scan([top, base])) == 1


def test_cli_exit_codes_and_output(tmp_path: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "requirements.txt", "sglang==0.5.21\n")
    write(tmp_path, "docker/Dockerfile", "ARG V=0.5.23\nRUN pip install sglang==${V}\n")
    ok = run_cli(runner, "pins")
    assert ok.exit_code == EXIT_OK
    assert ok.stdout.splitlines()[0].startswith(
        "docker/Dockerfile:2: sglang==0.5.23 (version from V set on line 1): native"
    )
    write(tmp_path, "constraints.txt", "sglang>=0.5.11\n")
    assert run_cli(runner, "pins").exit_code == EXIT_UNPATCHED
    assert run_cli(runner, "pins", "--allow-unpinned").exit_code == EXIT_OK
    write(tmp_path, "pyproject.toml", '[project]\nname = "x"\ndependencies = ["sglang==0.5.99"]\n')
    code, payload = run_json(runner, "pins", "--allow-unpinned")
    assert code == EXIT_UNPATCHED
    unknown = next(f for f in payload["findings"] if f["verdict"] == "unknown")
    assert unknown == {
        "path": "pyproject.toml",
        "line": 3,
        "requirement": "sglang==0.5.99",
        "version": "0.5.99",
        "source": "pyproject",
        "verdict": "unknown",
        "advice": unknown["advice"],
        "note": "",
        "from_code": False,
    }
    assert "--fetch" in unknown["advice"]
    missing = run_cli(runner, "pins", "nope.txt")
    assert missing.exit_code == EXIT_USAGE and "nope.txt" in missing.stderr
    assert run_cli(runner, "pins", "--quiet", "requirements.txt").stdout == ""


def test_discovery_skips_hidden_and_environment_folders(tmp_path: Path) -> None:
    for name in ("requirements.txt", "sub/Dockerfile", ".venv/lib/requirements.txt", "node_modules/x/pyproject.toml"):
        write(tmp_path, name, "")
    write(tmp_path, "README.txt", "")
    assert [Path(p).relative_to(tmp_path).as_posix() for p in pins.discover(tmp_path)] == [
        "requirements.txt",
        "sub/Dockerfile",
    ]


def test_hook_files_pattern_is_the_one_pre_commit_uses() -> None:
    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    pins_hook = next(h for h in hooks if h["id"] == "eagle3-patch-pins")
    assert pins_hook["files"] == pins.HOOK_FILES.pattern
    assert pins_hook["language"] == "python" and pins_hook["require_serial"] is True
    check_hook = next(h for h in hooks if h["id"] == "eagle3-patch-check")
    assert check_hook["stages"] == ["manual"] and check_hook["pass_filenames"] is False


def test_example_dockerfile_pin_is_verified() -> None:
    findings = [judge(p) for p in find_pins(REPO / "examples" / "Dockerfile")]
    assert [f.verdict for f in findings] == ["patch"]


@pytest.mark.corpus
def test_fetch_classifies_a_release_missing_from_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """A release the table does not know is downloaded, classified and dry-run patched (network)."""
    table = tuple(r for r in load_verified() if r.version not in ("0.5.21", "0.5.22"))
    monkeypatch.setattr(verdicts, "load_verified", lambda: table)
    for version, verdict in (("0.5.21", "patch"), ("0.5.22", "native"), ("0.5.99", "unknown")):
        finding = judge_from_code(judge(pin(version), table))
        assert finding.verdict == verdict, finding
        assert finding.from_code == (verdict != "unknown")


def packaging_reading(text: str) -> tuple[str | None] | None:
    """What packaging's full PEP 508 parser says of ``text``: None, or (exact version,)."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    try:
        requirement = Requirement(text)
    except InvalidRequirement:
        return None
    if canonicalize_name(requirement.name) != "sglang":
        return None
    exact = [s.version for s in requirement.specifier if s.operator in ("==", "===") and "*" not in s.version]
    if exact:
        return (exact[0],)
    if requirement.url and requirement.url.endswith(".whl"):
        return (requirement_module.wheel_version(requirement.url),)
    return (None,)


REQUIREMENT_CORPUS = [
    "sglang==0.5.21",
    "sglang",
    "SGLang==0.5.21",
    "sglang[all]==0.5.21",
    "sglang[all, srt]==0.5.21",
    "sglang [all] == 0.5.21",
    "sglang[]==0.5.21",
    "sglang==0.5.21 ; python_version >= '3.10'",
    "sglang==0.5.21;python_version>='3.10'",
    'sglang[all]==0.5.21; sys_platform == "linux" and platform_machine == "x86_64"',
    "sglang==0.5.21 ; python_version >= '3.10' or extra == 'gpu'",
    "sglang==0.5.21 ; 'linux' in sys_platform",
    "sglang==0.5.21 ; sys_platform not in 'win32'",
    "sglang==0.5.21 ; (python_version >= '3.10')",
    "sglang==0.5.21 ; python_version >= '3.10' AND os_name == 'posix'",
    "sglang==0.5.21 ; bogus_variable == '1'",
    "sglang==0.5.21 ;",
    "sglang==v0.5.21",
    "sglang==0.5.21.post1",
    "sglang==0.5.21.0",
    "sglang==00.5.21",
    "sglang==0.5.21-1",
    "sglang==0.5.21.dev3",
    "sglang==0.5.21a1.post2.dev3",
    "sglang==0.5.21rc1",
    "sglang==0.5.21RC1",
    "sglang==1!0.5.21+cu128",
    "sglang==0.5.*",
    "sglang==0.5.21.*",
    "sglang===0.5.21",
    "sglang>=0.5.21",
    "sglang>=0.5.11,<0.5.22",
    "sglang~=0.5.21",
    "sglang!=0.5.20",
    "sglang==",
    "sglang==banana",
    "sglang (==0.5.21)",
    "sglang @ https://example.invalid/sglang-0.5.21-py3-none-any.whl",
    "sglang @ https://example.invalid/sglang-0.5.21.tar.gz",
    "sglang @ git+https://github.com/sgl-project/sglang@v0.5.21#subdirectory=python",
    "sglang-router==0.2.1",
    "sglang_router==0.2.1",
    "sglang.x==1",
    "sgl-kernel==0.3.21",
    "my-sglang==1",
    "-sglang==1",
    "sglang-==1",
    "sglang==0.5.21 # comment",
    "sglang==0.5.21\t",
    "\tsglang==0.5.21",
    "sglang[all==0.5.21",
    "sglang[a-b.c_d]==0.5.21",
    "sglang[-a]==0.5.21",
    'sglang==0.5.21 ; python_version >= "3.10" and',
    "sglang==0.5.21 ; python_version >= '3.10' andos_name == 'posix'",
    "sglang==0.5.21 ; extras == 'x'",
    "sglang==0.5.21 ; sys_platform == 'a and b'",
    "sglang==0.5.21 ; sys_platform == 'a and python_version == b'",
    "sglang==0.5.21 ;  python_version >= '3.10'  or  sys_platform=='linux'  ",
    "sglang==0.5.21 ; python_version >= '3.10' or",
    "torch==2.9.1",
    "",
]


@pytest.mark.parametrize("text", REQUIREMENT_CORPUS)
def test_fast_requirement_reading_agrees_with_packaging(text: str) -> None:
    ours = pins.parse_requirement(text)
    assert (None if ours is None else (ours.version,)) == packaging_reading(text)


def test_common_shapes_take_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shapes deployment files use must not load packaging's parsers (the hook's start-up)."""
    import sys

    # Importing packaging's reader now raises, even where an earlier test loaded it.
    monkeypatch.delattr(pins, "pep508", raising=False)
    monkeypatch.setitem(sys.modules, "eagle3_patch.pins.pep508", None)
    assert pins.parse_requirement("sglang[all]==0.5.21 ; python_version >= '3.10'") == SglangRequirement("0.5.21")
    assert pins.parse_requirement("SGLang == 0.5.21") == SglangRequirement("0.5.21")
    assert pins.parse_requirement("sglang") == SglangRequirement(None)
    assert pins.parse_requirement("torch==2.9.1") is None
    with pytest.raises(ImportError):
        pins.parse_requirement("sglang>=0.5.11,<0.5.22")  # a range goes to packaging


def test_fast_requirement_reading_agrees_with_packaging_on_generated_text() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    pieces = st.sampled_from(
        ["sglang", "SGLang", "sglang-x", "[all]", "[a, b]", "[", "]", "==", "===", ">=", ",", "0.5.21", "v1",
         ".post1", "rc1", "+cu128", ".*", " ", "\t", ";", " ; ", "python_version", "sys_platform", "extra",
         "'3.10'", '"linux"', "'a and b'", " and ", " or ", " in ", " not in ", "(", ")", "@", "x", "-", "_", "."]
    )  # fmt: skip

    @settings(max_examples=400, deadline=None, database=None)
    @given(st.lists(pieces, max_size=9).map("".join))
    def agree(text: str) -> None:
        ours = pins.parse_requirement(text)
        assert (None if ours is None else (ours.version,)) == packaging_reading(text)

    agree()


def test_dockerfile_base_images_carry_their_sglang() -> None:
    """FROM lines: official and rebuilt sglang images, ARG-held images and tags, moving tags, embedded versions."""
    path = FIXTURES / "pins" / "base-images" / "Dockerfile"
    found = [(f.pin.line, f.pin.version, f.verdict, f.pin.note) for f in map(judge, find_pins(path))]
    assert found == [
        (4, "0.5.10.post1", "unsupported", "the base image"),
        (5, "0.5.21", "patch", "the base image"),
        (6, "0.4.10.post2", "unsupported", "the base image, from BASE_IMAGE set on line 2"),
        (7, "0.5.15.post1", "patch", "the base image, from SGLANG_IMAGE_TAG set on line 3"),
        (8, None, "unpinned", "the base image; a moving tag: pin a release tag"),
        (9, None, "unpinned", "the base image; a moving tag: pin a release tag"),
        (10, "0.5.2", "unsupported", "the base image"),
    ]


@pytest.mark.parametrize("version", ["0.4.6.post5", "0.5.2", "0.5.7"])
def test_releases_older_than_the_table_predate_qwen3_5(version: str) -> None:
    finding = judge(Pin("requirements.txt", 1, f"sglang=={version}", version, "requirements"))
    assert finding.verdict == "unsupported" and "older than Qwen3.5" in finding.advice


def test_pip_options_before_install_and_git_tags() -> None:
    folder = FIXTURES / "pins" / "install-forms"
    found = [(f.pin.line, f.pin.version, f.verdict) for f in map(judge, find_pins(folder / "Dockerfile"))]
    assert found == [(3, "0.5.21", "patch"), (4, "0.5.16", "patch"), (5, "0.5.6.post2", "unsupported")]
    found = [(f.pin.line, f.pin.version, f.verdict) for f in map(judge, find_pins(folder / "requirements.txt"))]
    assert found == [(2, "0.5.16", "patch"), (3, "0.5.21", "patch"), (4, None, "unpinned")]
