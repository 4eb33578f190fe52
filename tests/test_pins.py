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
        (7, "sglang[all]==0.5.21", "0.5.21", "version from SGLANG_VERSION set on line 1"),  # its own line
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
        ("setup.py", "setup.py"),
        ("setup.cfg", "setup.cfg"),
        ("gpu.DockerFile", "dockerfile"),
        ("Dockerfile_prod", "dockerfile"),
        ("serve.dockerfile", "dockerfile"),
        ("README.md", None),
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


NO_RELEASE = "a tag that names no release (moving or nightly): pin a release tag"


def test_dockerfile_base_images_carry_their_sglang() -> None:
    """FROM lines: official and rebuilt sglang images, ARG-held images and tags, moving tags, embedded versions."""
    path = FIXTURES / "pins" / "base-images" / "Dockerfile"
    found = [(f.pin.line, f.pin.version, f.verdict, f.pin.note) for f in map(judge, find_pins(path))]
    assert found == [
        (4, "0.5.10.post1", "unsupported", "the base image"),
        (5, "0.5.21", "patch", "the base image"),
        (6, "0.4.10.post2", "unsupported", "the base image, from BASE_IMAGE set on line 2"),
        (7, "0.5.15.post1", "patch", "the base image, from SGLANG_IMAGE_TAG set on line 3"),
        (8, None, "unpinned", "the base image; " + NO_RELEASE),
        (9, None, "unpinned", "the base image; " + NO_RELEASE),
        (10, "0.5.2", "unsupported", "the base image"),
        (12, "0.5.21", "patch", "the base image"),  # -rocm700-mi30x
        (13, None, "unpinned", "the base image; " + NO_RELEASE),  # a dated nightly
    ]


@pytest.mark.parametrize("version", ["0.4.6.post5", "0.5.2", "0.5.7"])
def test_releases_older_than_the_table_predate_qwen3_5(version: str) -> None:
    finding = judge(Pin("requirements.txt", 1, f"sglang=={version}", version, "requirements"))
    assert finding.verdict == "unsupported" and "older than Qwen3.5" in finding.advice


def test_pip_options_before_install_and_git_tags() -> None:
    folder = FIXTURES / "pins" / "install-forms"
    found = [(f.pin.line, f.pin.version, f.verdict) for f in map(judge, find_pins(folder / "Dockerfile"))]
    assert found == [
        (3, "0.5.21", "patch"),  # python -m pip --no-cache-dir install
        (4, "0.5.16", "patch"),  # pip3 --disable-pip-version-check install --upgrade
        (5, "0.5.6.post2", "unsupported"),  # a git URL at a tag, no name
        (8, "0.5.19", "patch"),  # uv pip install -U --extra-index-url X, the requirement on its own line
        (9, "0.5.23", "native"),  # /opt/venv/bin/pip3.11 install --no-deps
        (10, None, "unpinned"),  # sglang @ git+...@main: a branch
        (11, "0.5.17", "patch"),  # pip install -e git+...@v0.5.17#egg=sglang
    ]
    found = [(f.pin.line, f.pin.version, f.verdict) for f in map(judge, find_pins(folder / "requirements.txt"))]
    assert found == [(2, "0.5.16", "patch"), (3, "0.5.21", "patch"), (4, None, "unpinned")]


def test_git_urls_in_pyproject_pep508_and_poetry() -> None:
    findings = [judge(p) for p in find_pins(FIXTURES / "pins" / "git-urls" / "pyproject.toml")]
    assert [(f.pin.line, f.pin.version, f.verdict) for f in findings] == [
        (7, "0.5.16", "patch"),  # sglang[all] @ git+...sglang.git@v0.5.16#subdirectory=python
        (11, None, "unpinned"),  # @main
        (15, "0.5.8", "unsupported"),  # Poetry: { git = ..., tag = "v0.5.8" }
    ]
    assert "branch main" in findings[1].pin.note


def test_uv_sources_give_the_dependency_its_version() -> None:
    """A dependency with no version is not unpinned when [tool.uv.sources] takes it from a tag."""
    findings = [judge(p) for p in find_pins(FIXTURES / "pins" / "uv-sources" / "pyproject.toml")]
    assert [(f.pin.line, f.pin.version, f.verdict, f.pin.note) for f in findings] == [
        (8, "0.5.21", "patch", "the git tag of sglang's repository, in [tool.uv.sources]")
    ]


def test_uv_lock_reports_the_package_entry_not_a_dependency_reference() -> None:
    path = FIXTURES / "pins" / "locks" / "uv.lock"
    assert '{ name = "sglang"' in path.read_text().splitlines()[9]  # the reference the old reader reported
    assert [(p.line, p.version) for p in find_pins(path)] == [(17, "0.5.21")]


def test_a_base_image_replaced_in_its_stage_is_reported_not_judged() -> None:
    finding = judge(Pin("Dockerfile", 2, "lmsysorg/sglang:v0.5.10", "0.5.10", "dockerfile", replaced_by=4))
    assert finding.verdict == verdicts.REPLACED and "line 4" in finding.advice
    assert verdicts.REPLACED not in verdicts.FAILING


NAMED = FIXTURES / "pins" / "named"


def test_files_named_explicitly_are_always_read(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    """Names the hook's pattern would not pick are read by name (any case) or by content."""
    monkeypatch.chdir(NAMED)
    code, payload = run_json(runner, "pins", "gpu.DockerFile", "Dockerfile_prod", "deps.list", "base.image")
    assert code == EXIT_OK
    assert [(f["path"], f["line"], f["version"], f["source"]) for f in payload["findings"]] == [
        ("gpu.DockerFile", 1, "0.5.21", "dockerfile"),
        ("Dockerfile_prod", 2, "0.5.18", "dockerfile"),
        ("deps.list", 3, "0.5.20", "requirements"),  # kind guessed from its lines
        ("base.image", 2, "0.5.12", "dockerfile"),  # kind guessed from its FROM line
    ]


def test_a_file_of_no_known_kind_is_an_error_naming_it(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(NAMED)
    result = run_cli(runner, "pins", "deps.list", "NOTES.md")
    assert result.exit_code == EXIT_USAGE
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]  # one line
    assert "NOTES.md: not a requirements file" in result.stderr


def test_an_unreadable_file_is_an_error_naming_it(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(path: str) -> bytes:
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.chdir(NAMED)
    monkeypatch.setattr("eagle3_patch.pins.readers.read_regular_bytes", refuse)
    result = run_cli(runner, "pins", "deps.list")
    assert result.exit_code == EXIT_USAGE
    assert "deps.list: cannot read it (Permission denied)" in result.stderr


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ('version = 1\n[[package]]\nname = "sglang"\nversion = "0.5.21"\n', "uv.lock"),
        ('[[package]]\nname = "sglang"\nversion = "0.5.21"\n[metadata]\ncontent-hash = "x"\n', "poetry.lock"),
        ('[project]\nname = "x"\n', "pyproject"),
        ("# build\nARG V=1\nfrom python:3.11\n", "dockerfile"),
        ("[options]\ninstall_requires = sglang==0.5.21\n", "setup.cfg"),
        ("from setuptools import setup\nsetup(install_requires=['sglang==0.5.21'])\n", "setup.py"),
        ("# pins\nsglang[all]==0.5.21 ; python_version >= '3.10'\n-r base.txt\ntorch\n", "requirements"),
        ("We serve Qwen3.6 with sglang.\n", None),
        ("setup(broken\n", None),
    ],
)
def test_kinds_guessed_from_content(text: str, kind: str | None) -> None:
    assert pins.readers.guess_kind(text) == kind


def test_discovery_and_the_hook_pattern_ignore_case() -> None:
    discovered = sorted(Path(p).name for p in pins.discover(NAMED))
    assert discovered == ["Dockerfile_prod", "gpu.DockerFile", "serve.dockerfile"]
    names = ["gpu.DockerFile", "serve.dockerfile", "Dockerfile_prod", "docker/DOCKERFILE", "setup.py", "pkg/setup.cfg"]
    assert all(pins.HOOK_FILES.search(name) for name in names)
    assert not any(pins.HOOK_FILES.search(name) for name in ["deps.list", "NOTES.md", "setup.py.bak"])


def test_pyproject_pins_on_a_shared_line_get_that_line(tmp_path: Path) -> None:
    """Another requirement on the line (or the same one twice) no longer sends the finding to line 1."""
    path = write(
        tmp_path,
        "pyproject.toml",
        """
        [project]
        name = "x"
        dependencies = ["click", "sglang==0.5.21"]

        [dependency-groups]
        a = ['sglang==0.5.20', "sglang==0.5.20"]
        b = ["sglang==0.5.20"]
        """,
    )
    assert [(line, version) for line, _, version, _ in found(path)] == [
        (3, "0.5.21"),
        (6, "0.5.20"),
        (6, "0.5.20"),
        (7, "0.5.20"),
    ]
