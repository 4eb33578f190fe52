"""Finding SGLang without importing it: folders, environment, other interpreters, editable installs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from click.testing import CliRunner

from eagle3_patch.errors import EXIT_NOT_FOUND, EXIT_OK, EXIT_UNPATCHED, EXIT_USAGE, NotFoundError, UsageError
from eagle3_patch.fetch import fetch_wheel
from eagle3_patch.locate import UNKNOWN_VERSION, locate, locate_python, locate_root
from tests.conftest import FIXTURES, MakeInstall, run_json, snapshot


def test_root_may_be_package_site_packages_or_checkout(make_install: MakeInstall) -> None:
    site = make_install("capture_no_hook", version="0.5.13")
    package = (site / "sglang").resolve()
    for given in (site, site / "sglang"):
        install = locate_root(given, found_by="test")
        assert (install.package_dir, install.version, install.layout) == (package, "0.5.13", "wheel")
        assert install.dist_info == site / "sglang-0.5.13.dist-info"


def make_checkout(root: Path, *, version_file: str | None) -> Path:
    package = root / "python" / "sglang"
    models = package / "srt" / "models"
    models.mkdir(parents=True)
    for source in (FIXTURES / "capture_no_hook").glob("*.py"):
        shutil.copyfile(source, models / source.name)
    (package / "__init__.py").write_text("raise RuntimeError('eagle3-patch must never import sglang')\n")
    (root / "python" / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=68"]\nbuild-backend = "setuptools.build_meta"\n\n'
        '[project]\nname = "sglang"\nversion = "0.5.21.dev7"\n\n'
        '[tool.setuptools.packages.find]\ninclude = ["sglang*"]\n'
    )
    if version_file == "_version.py":
        (package / "_version.py").write_text("__version__ = version = '0.5.21.dev7'\n")
    elif version_file == "version.py":
        (package / "version.py").write_text('__version__ = "0.5.21.dev7"\n')
    return package


@pytest.mark.parametrize(
    ("version_file", "version"),
    [("_version.py", "0.5.21.dev7"), ("version.py", "0.5.21.dev7"), (None, UNKNOWN_VERSION)],
)
def test_checkout_root_and_its_version(tmp_path: Path, version_file: str | None, version: str) -> None:
    package = make_checkout(tmp_path / "clone", version_file=version_file)
    install = locate_root(tmp_path / "clone", found_by="test")
    assert (install.package_dir, install.layout, install.version) == (package.resolve(), "checkout", version)


def test_version_file_is_read_not_executed(tmp_path: Path) -> None:
    package = make_checkout(tmp_path / "clone", version_file=None)
    (package / "_version.py").write_text("import os\nos.environ['PWNED'] = '1'\n__version__ = '9.9.9'\n")
    assert locate_root(package, found_by="test").version == "9.9.9"
    assert "PWNED" not in __import__("os").environ


def test_nothing_there_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError) as caught:
        locate_root(tmp_path, found_by="test")
    assert caught.value.exit_code == EXIT_NOT_FOUND
    assert str(tmp_path) in str(caught.value)


def test_root_and_python_together_are_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        locate(sglang_root=str(tmp_path), python=sys.executable)


@pytest.mark.parametrize("flag", ["--sglang-root", "--python"])
@pytest.mark.parametrize("command", ["apply", "revert", "check", "status", "verify"])
def test_an_empty_install_flag_is_a_usage_error_not_this_interpreter(
    runner: CliRunner, make_install: MakeInstall, monkeypatch: pytest.MonkeyPatch, flag: str, command: str
) -> None:
    """``--sglang-root "$SGLANG_DIR"`` with the variable unset must not act on another install."""
    site = make_install("capture_no_hook")
    monkeypatch.setenv("EAGLE3_PATCH_SGLANG_ROOT", str(site))  # an install the empty flag would fall back to
    before = snapshot(site)
    code, payload = run_json(runner, command, flag, "")
    assert code == EXIT_USAGE
    assert payload["error"].startswith(f"{flag} is empty")
    assert snapshot(site) == before


def test_environment_variable_is_used(make_install: MakeInstall, monkeypatch: pytest.MonkeyPatch) -> None:
    site = make_install("capture_no_hook")
    monkeypatch.setenv("EAGLE3_PATCH_SGLANG_ROOT", str(site))
    assert locate().package_dir == (site / "sglang").resolve()


def test_unrunnable_interpreter_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="cannot run this interpreter"):
        locate_python(str(tmp_path / "no-python"))


@pytest.fixture(scope="module")
def real_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtual environment made with ``python -m venv --without-pip``; its interpreter's path.

    No pip of its own (ensurepip costs seconds): ``pip`` runs this interpreter's pip into it.
    """
    folder = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(with_pip=False).create(folder)
    return folder / "bin" / "python"


def pip(python: Path, *args: str) -> None:
    """pip, installing into the venv of ``python`` (``--python``, pip >= 22.3)."""
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "--disable-pip-version-check", "-q", *args], check=True
    )


@pytest.mark.slow
def test_python_flag_finds_a_real_wheel_install(real_venv: Path, runner: CliRunner) -> None:
    """The acceptance scenario: pip install --no-deps sglang==0.5.21 in a fresh venv, then apply/check/revert."""
    code, payload = run_json(runner, "check", "--python", str(real_venv))
    assert code == EXIT_NOT_FOUND and str(real_venv) in payload["error"]

    pip(real_venv, "install", "--no-deps", str(fetch_wheel("0.5.21")))
    try:
        _round_trip_in_venv(real_venv, runner)
    finally:
        pip(real_venv, "uninstall", "-y", "sglang")
    site = Path(
        subprocess.run(
            [str(real_venv), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    assert not (site / "sglang").exists(), "nothing of ours keeps an sglang folder alive after pip uninstall"
    assert not [p.name for p in site.iterdir() if "eagle3" in p.name and p.name != ".eagle3-patch-sglang.lock"]


def _round_trip_in_venv(real_venv: Path, runner: CliRunner) -> None:
    site = Path(
        subprocess.run(
            [str(real_venv), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    models = site / "sglang" / "srt" / "models"
    install = locate_python(str(real_venv))
    assert (install.package_dir, install.version, install.layout) == (site / "sglang", "0.5.21", "wheel")
    pristine = snapshot(models)
    assert any(name.startswith("__pycache__/qwen3_5.cpython") for name in pristine), "pip compiled bytecode"

    python = ["--python", str(real_venv)]
    assert run_json(runner, "apply", *python)[0] == EXIT_OK
    assert not any(p.name.startswith("qwen3_5.") for p in (models / "__pycache__").iterdir()), "stale pyc removed"
    assert run_json(runner, "check", *python)[0] == EXIT_OK
    for name in ("qwen3_5.py", "qwen3_5_text.py"):
        assert_only_marked_additions(models / (name + ".eagle3-bak"), models / name)
    compiled = subprocess.run(
        [
            str(real_venv),
            "-c",
            "import sys; compile(open(sys.argv[1], 'rb').read(), sys.argv[1], 'exec')",
            str(models / "qwen3_5.py"),
        ],
        check=False,
    )
    assert compiled.returncode == 0, "the venv's own interpreter compiles the patched file"
    assert run_json(runner, "revert", *python)[0] == EXIT_OK
    restored = {k: v[0] for k, v in snapshot(models).items() if "__pycache__" not in k}
    assert restored == {k: v[0] for k, v in pristine.items() if "__pycache__" not in k}
    assert run_json(runner, "check", *python)[0] == EXIT_UNPATCHED


def assert_only_marked_additions(backup: Path, patched: Path) -> None:
    """``git diff --no-index backup file`` shows only added lines, each hunk one marked method."""
    diff = subprocess.run(
        ["git", "diff", "--no-index", "--no-color", "-U0", str(backup), str(patched)],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    hunks = diff.split("\n@@ ")[1:]
    assert hunks, f"no difference between {backup} and {patched}"
    for hunk in hunks:
        header, *lines = hunk.splitlines()
        assert header.split()[0].endswith(",0"), f"hunk removes lines: @@ {header}"
        assert all(line.startswith("+") for line in lines)
        added = [line[1:] for line in lines if line[1:].strip()]
        assert "[EAGLE3-PATCH" in added[0] and added[1].lstrip().startswith("def set_eagle3_layers_to_capture(")


@pytest.mark.slow
def test_editable_install_resolves_to_the_clone(real_venv: Path, tmp_path: Path, runner: CliRunner) -> None:
    package = make_checkout(tmp_path / "clone", version_file="_version.py")
    pip(real_venv, "install", "--no-deps", "-e", str(tmp_path / "clone" / "python"))
    try:
        install = locate_python(str(real_venv))
        assert (install.package_dir, install.layout, install.version) == (package, "editable", "0.5.21.dev7")
        python = ["--python", str(real_venv)]
        assert run_json(runner, "apply", *python)[0] == EXIT_OK
        assert "[EAGLE3-PATCH" in (package / "srt" / "models" / "qwen3_5.py").read_text()
        assert run_json(runner, "revert", *python)[0] == EXIT_OK
    finally:
        pip(real_venv, "uninstall", "-y", "sglang")


def test_sglang_folder_in_current_directory_is_not_an_install(
    real_venv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Neither probe (this interpreter, or --python) mistakes ./sglang for an installed package."""
    (tmp_path / "sglang" / "srt").mkdir(parents=True)
    (tmp_path / "sglang" / "__init__.py").write_text("")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(NotFoundError, match="sglang is not installed"):
        locate_python(str(real_venv))
    try:
        found = locate().package_dir  # the test interpreter may have a real sglang
    except NotFoundError:
        return
    assert found != tmp_path / "sglang"


# --- another interpreter's answer is checked, never trusted -----------------------------------

GOOD_ANSWER = {
    "python": "/venv/bin/python",
    "package_dir": None,
    "version": None,
    "dist_info": None,
    "editable_url": None,
    "pycache_prefix": None,
}


def fake_python(folder: Path, body: str) -> Path:
    """A "python" that ignores its arguments and runs ``body`` (sh), for --python."""
    script = folder / "python"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return script


def answering(folder: Path, answer: bytes) -> Path:
    (folder / "answer").write_bytes(answer)
    return fake_python(folder, f"cat '{folder / 'answer'}'")


BAD_ANSWERS: dict[str, bytes] = {
    "null": b"null",
    "a list": b"[1]",
    "a string": b'"sglang"',
    "a number": b"3",
    "nothing": b"",
    "not JSON": b"Python 2.7 says hello",
    "not UTF-8": b'\xff\xfe{"python": null}',
    "deeply nested": b"[" * 100_000 + b"]" * 100_000,
    "a numeric package_dir": json.dumps({**GOOD_ANSWER, "package_dir": 5}).encode(),
    "a list as package_dir": json.dumps({**GOOD_ANSWER, "package_dir": ["/x"]}).encode(),
    "a numeric dist_info": json.dumps({**GOOD_ANSWER, "package_dir": "/x/sglang", "dist_info": 3}).encode(),
    "a numeric version": json.dumps({**GOOD_ANSWER, "package_dir": "/x/sglang", "version": 5}).encode(),
    "a numeric python": json.dumps({**GOOD_ANSWER, "python": 7}).encode(),
    "a NUL in package_dir": json.dumps({**GOOD_ANSWER, "package_dir": "/x\u0000y"}).encode(),
    "no keys": b"{}",
    "no package_dir": json.dumps({k: v for k, v in GOOD_ANSWER.items() if k != "package_dir"}).encode(),
    "no version": json.dumps({k: v for k, v in GOOD_ANSWER.items() if k != "version"}).encode(),
}


@pytest.mark.parametrize("name", sorted(BAD_ANSWERS))
@pytest.mark.parametrize("command", ["status", "doctor"])
def test_an_interpreter_whose_answer_is_not_the_probes_is_not_found(
    tmp_path: Path, runner: CliRunner, name: str, command: str
) -> None:
    python = answering(tmp_path, BAD_ANSWERS[name])
    extra = ["--target", str(tmp_path), "--draft", str(tmp_path)] if command == "doctor" else []
    code, payload = run_json(runner, command, "--python", str(python), *extra)
    assert code == EXIT_NOT_FOUND, payload
    assert payload["error"].startswith(f"{python}: ") and "\n" not in payload["error"], payload["error"]


def test_a_good_answer_for_an_install_is_still_taken(make_install: MakeInstall, tmp_path: Path) -> None:
    site = make_install("capture_no_hook", version="0.5.13")
    answer = {**GOOD_ANSWER, "package_dir": str(site / "sglang"), "version": "0.5.13"}
    answer["dist_info"] = str(site / "sglang-0.5.13.dist-info")
    install = locate_python(str(answering(tmp_path, json.dumps(answer).encode())))
    assert (install.package_dir, install.version, install.layout) == (site / "sglang", "0.5.13", "wheel")


def test_a_good_answer_without_sglang_is_still_not_installed(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="sglang is not installed for /venv/bin/python"):
        locate_python(str(answering(tmp_path, json.dumps(GOOD_ANSWER).encode())))


def _limit_memory() -> None:  # pragma: no cover - runs in the child
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


@pytest.mark.parametrize(
    "body",
    ["exec yes", "exec yes >&2", "head -c 50000000 /dev/zero"],
    ids=["endless-stdout", "endless-stderr", "50-MB-stdout"],
)
def test_an_interpreter_that_answers_without_end_is_cut_off(tmp_path: Path, body: str) -> None:
    """Its output is read up to a bound: memory stays small and the answer comes at once (not after 60 s)."""
    python = fake_python(tmp_path, body)
    done = subprocess.run(
        [sys.executable, "-m", "eagle3_patch", "status", "--python", str(python)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        preexec_fn=_limit_memory,
    )
    assert done.returncode == EXIT_NOT_FOUND, done.stderr[-2000:]
    [line] = done.stderr.splitlines()
    assert line.startswith(f"eagle3-patch: error: {python}: "), line


def test_an_interpreter_that_never_answers_is_given_up_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from eagle3_patch import locate as locate_module

    monkeypatch.setattr(locate_module, "_PROBE_TIMEOUT_S", 1)
    with pytest.raises(NotFoundError, match="cannot run this interpreter|did not answer"):
        locate_python(str(fake_python(tmp_path, "exec sleep 30")))
