"""Every command the tool tells a user to run, run exactly as printed, acts on the install it was printed for.

Each path that prints a next step is driven on an install chosen with
``--sglang-root`` (a plain folder, so the reinstall is ``pip --target`` it) and
with ``--python`` (a venv, so the reinstall is that interpreter's pip); the
hints are harvested from what was printed (the text between backticks, or after
``run:``, ``reinstall:``, ``undo with:``) and run through a shell as they are.
The one placeholder a hint may hold, ``DIR`` for a folder the user picks, is
filled in. The interpreter running the tests has no sglang, so a hint that
acted on it instead would show up as an sglang appearing there.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from eagle3_patch.fetch import extract_release, fetch_wheel
from tests.conftest import FIXTURES

pytestmark = pytest.mark.slow

RELEASE = "0.5.21"
_HINT = re.compile(r"`([^`]+)`|(?:run|reinstall|undo with): (\S.*?)(?=$|; |\.\s|\s\()", re.M)


def harvest(text: str) -> list[str]:
    """The commands a message tells the user to run."""
    found = []
    for quoted, after in _HINT.findall(text):
        command = (quoted or after).strip().rstrip(".")
        if command.split()[0] in ("eagle3-patch", "pip", "git") or "-m pip" in command:
            found.append(command)
    return found


def eagle3(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed ``eagle3-patch`` of the test interpreter, as a user would type it."""
    return shell(shlex.join(("eagle3-patch", *args)))


def shell(command: str, tmp: Path | None = None) -> subprocess.CompletedProcess[str]:
    if tmp is not None:
        command = command.replace(" DIR", f" {tmp / 'overlay'}")
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "NO_COLOR": "1"}
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True, env=env, timeout=600, check=False)


def qwen(site: Path) -> Path:
    return site / "sglang" / "srt" / "models" / "qwen3_5.py"


@pytest.fixture(autouse=True)
def no_sglang_here() -> None:
    assert importlib.util.find_spec("sglang") is None, "the tests' interpreter must not have sglang"


def test_hints_for_a_sglang_root_install_act_on_that_folder(tmp_path: Path) -> None:
    site = tmp_path / "site"
    extract_release(fetch_wheel(RELEASE), site)
    pristine = qwen(site).read_bytes()
    root = ("--sglang-root", str(site))

    unpatched = eagle3("check", *root)
    assert unpatched.returncode == 1
    (apply_hint,) = harvest(unpatched.stdout)
    assert apply_hint == shlex.join(("eagle3-patch", "apply", *root))
    applied = shell(apply_hint)
    assert applied.returncode == 0 and qwen(site).read_bytes() != pristine, applied.stderr
    (revert_hint,) = harvest(applied.stdout)
    assert shell(revert_hint).returncode == 0 and qwen(site).read_bytes() == pristine

    shell(apply_hint)
    qwen(site).write_bytes(qwen(site).read_bytes() + b"\n# an edit after the patch\n")
    for command in ("check", "apply", "revert"):
        drifted = eagle3(command, *root)
        assert drifted.returncode == 4, (command, drifted.stdout, drifted.stderr)
        hints = harvest(drifted.stderr)
        assert (
            hints
            == [
                shlex.join(("eagle3-patch", "revert", "--force", *root)),
                shlex.join(
                    (
                        "pip",
                        "install",
                        "--upgrade",
                        "--target",
                        str(site),
                        "--force-reinstall",
                        "--no-deps",
                        "sglang==0.5.21",
                    )
                ),
            ][: len(hints)]
            and len(hints) >= 1
        ), (command, drifted.stderr)
    reinstall = harvest(eagle3("check", *root).stderr)[1]
    reinstalled = shell(reinstall)
    assert reinstalled.returncode == 0, reinstalled.stderr[-2000:]
    assert qwen(site).read_bytes() == pristine, "the reinstall hint gave the folder its release's file back"
    assert eagle3("check", *root).returncode == 1  # unpatched again, nothing of ours left to confuse it

    shell(apply_hint)
    qwen(site).write_bytes(qwen(site).read_bytes() + b"\n# an edit after the patch\n")
    forced = shell(harvest(eagle3("check", *root).stderr)[0])
    assert forced.returncode == 0 and qwen(site).read_bytes() == pristine, forced.stderr


def test_doctor_on_an_unsupported_sglang_root_points_at_that_install(tmp_path: Path) -> None:
    site = tmp_path / "site"
    extract_release(fetch_wheel("0.5.10"), site)
    root = ("--sglang-root", str(site))
    doctored = eagle3(
        "doctor", "--target", str(FIXTURES / "doctor/target"), "--draft", str(FIXTURES / "doctor/draft"), *root
    )
    assert doctored.returncode == 1
    hints = [h for h in harvest(doctored.stdout) if h.startswith("eagle3-patch")]
    assert shlex.join(("eagle3-patch", "status", *root)) in hints, doctored.stdout
    for hint in hints:
        status = shell(hint)
        assert status.returncode == 3, (hint, status.stderr)  # unsupported: about this folder, not "sglang not found"
        assert str(site / "sglang") in status.stdout + status.stderr


def test_hints_for_a_python_install_use_that_interpreters_pip(tmp_path: Path) -> None:
    folder = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(folder)
    python = folder / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", str(fetch_wheel(RELEASE))], check=True)
    found = subprocess.run(
        [str(python), "-c", "import importlib.util as u; print(u.find_spec('sglang').submodule_search_locations[0])"],
        capture_output=True,
        text=True,
        check=True,
    )
    target = Path(found.stdout.strip()) / "srt" / "models" / "qwen3_5.py"
    pristine = target.read_bytes()
    chosen = ("--python", str(python))

    (apply_hint,) = harvest(eagle3("check", *chosen).stdout)
    assert shell(apply_hint).returncode == 0 and target.read_bytes() != pristine
    target.write_bytes(target.read_bytes() + b"\n# an edit after the patch\n")
    hints = harvest(eagle3("check", *chosen).stderr)
    assert hints == [
        shlex.join(("eagle3-patch", "revert", "--force", *chosen)),
        shlex.join((str(python), "-m", "pip", "install", "--force-reinstall", "--no-deps", "sglang==0.5.21")),
    ]
    reinstalled = shell(hints[1])
    assert reinstalled.returncode == 0, reinstalled.stderr[-2000:]
    assert target.read_bytes() == pristine
    assert eagle3("check", *chosen).returncode == 1


def test_a_read_only_refusal_names_the_overlay_for_that_install(tmp_path: Path) -> None:
    site = tmp_path / "site"
    extract_release(fetch_wheel(RELEASE), site)
    root = ("--sglang-root", str(site))
    models = qwen(site).parent
    mounted = subprocess.run(["mount", "--bind", "-o", "ro", str(models), str(models)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot make a read-only mount here: {mounted.stderr.strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(models)], check=False, capture_output=True)
        refused = eagle3("apply", *root)
        assert refused.returncode == 6, refused.stderr
        hints = harvest(refused.stderr)
        overlay = shlex.join(("eagle3-patch", "overlay", "--out", "DIR", *root))
        assert overlay in hints, refused.stderr
        written = shell(overlay, tmp_path)
        assert written.returncode == 0, written.stderr
        assert (tmp_path / "overlay" / "eagle3_overlay" / "__init__.py").is_file()
    finally:
        subprocess.run(["umount", str(models)], check=False)


def test_the_reinstall_hint_for_a_source_checkout_is_gits_copy(make_install, tmp_path: Path) -> None:
    """A clone has no wheel to reinstall: the hint restores the files from git, in that clone."""
    clone = tmp_path / "sglang-clone"
    (clone / "python").mkdir(parents=True)
    (clone / "python" / "pyproject.toml").write_text('[project]\nname = "sglang"\nversion = "0.5.21"\n')
    make_install("capture_no_hook", name="built")
    shutil.copytree(tmp_path / "built" / "sglang", clone / "python" / "sglang")
    git = ("git", "-C", str(clone), "-c", "user.name=t", "-c", "user.email=t@example.com")
    subprocess.run(["git", "init", "-q", str(clone)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "sglang"], check=True)
    target = clone / "python" / "sglang" / "srt" / "models" / "qwen3_5.py"
    pristine = target.read_bytes()
    root = ("--sglang-root", str(clone))
    assert shell(harvest(eagle3("check", *root).stdout)[0]).returncode == 0 and target.read_bytes() != pristine
    target.write_bytes(target.read_bytes() + b"\n# an edit after the patch\n")
    hints = harvest(eagle3("check", *root).stderr)
    assert hints[1] == shlex.join(("git", "-C", str(clone), "checkout", "--", "python/sglang/srt/models/qwen3_5.py"))
    assert shell(hints[1]).returncode == 0 and target.read_bytes() == pristine
