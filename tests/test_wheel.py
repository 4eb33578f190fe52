"""The built wheel in a fresh venv, run from outside the checkout; and the Docker recipe's sequence."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from eagle3_patch import __version__
from eagle3_patch.fetch import extract_release, fetch_wheel
from eagle3_patch.spec import load_spec
from eagle3_patch.verified import anchors_version, load_verified
from tests.conftest import REPO

pytestmark = pytest.mark.slow


def run(bin_dir: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(bin_dir / args[0]), *args[1:]], cwd=cwd, capture_output=True, text=True, check=False)


def test_wheel_runs_from_any_directory(wheel_venv: Path, tmp_path: Path) -> None:
    version = run(wheel_venv, "eagle3-patch", "--version", cwd=tmp_path)
    assert version.returncode == 0
    assert version.stdout.startswith(f"eagle3-patch {__version__} (anchors data {anchors_version()}; verified sglang")
    assert "patch 0.5.11-0.5.21" in version.stdout
    helped = run(wheel_venv, "python", "-m", "eagle3_patch", "--help", cwd=tmp_path)
    assert helped.returncode == 0 and "apply" in helped.stdout and "pins" in helped.stdout
    site = tmp_path / "site"
    extract_release(fetch_wheel("0.5.21"), site)
    applied = run(wheel_venv, "eagle3-patch", "apply", "--json", "--sglang-root", str(site), cwd=tmp_path)
    assert applied.returncode == 0, applied.stderr
    assert json.loads(applied.stdout)["state"] == "patched"
    checked = run(wheel_venv, "eagle3-patch", "check", "--json", "--sglang-root", str(site), cwd=tmp_path)
    assert (checked.returncode, json.loads(checked.stdout)["state"]) == (0, "patched")
    anchors = run(
        wheel_venv,
        "python",
        "-c",
        "from importlib import resources; from eagle3_patch.spec import load_spec; "
        "from eagle3_patch.verified import load_verified; "
        "print(resources.files('eagle3_patch.anchors').joinpath('targets.toml'), len(load_spec().files), "
        "len(load_verified()))",
        cwd=tmp_path,
    )
    assert anchors.returncode == 0, anchors.stderr
    where, files, releases = anchors.stdout.split()
    assert where.startswith(str(wheel_venv.parent)) and "site-packages" in where, where
    assert (int(files), int(releases)) == (len(load_spec().files), len(load_verified()))


def source_modules() -> list[str]:
    """Every module of the source tree, as a dotted name."""
    package = REPO / "eagle3_patch"
    names = []
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_every_module_of_the_source_tree_imports_from_the_wheel(wheel_venv: Path, tmp_path: Path) -> None:
    """A package left out of the wheel (as eagle3_patch/doctor once was) fails here, by name."""
    modules = source_modules()
    assert "eagle3_patch.doctor.rules" in modules and len(modules) > 50
    script = (
        "import importlib, json, sys\n"
        "failed = {}\n"
        "for name in json.loads(sys.argv[1]):\n"
        "    try:\n"
        "        module = importlib.import_module(name)\n"
        "        assert module.__file__.startswith(sys.prefix), module.__file__\n"
        "    except Exception as exc:\n"
        "        failed[name] = repr(exc)\n"
        "print(json.dumps(failed))\n"
    )
    imported = run(wheel_venv, "python", "-c", script, json.dumps(modules), cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout) == {}


def test_every_command_runs_from_the_wheel(wheel_venv: Path, tmp_path: Path) -> None:
    """Each command once, from the wheel's venv, with the exit code its documentation gives."""
    site = tmp_path / "site"
    extract_release(fetch_wheel("0.5.21"), site)
    root = ("--sglang-root", str(site))
    target, draft = str(REPO / "fixtures" / "doctor" / "target"), str(REPO / "fixtures" / "doctor" / "draft")
    pins_file = tmp_path / "requirements.txt"
    pins_file.write_text("sglang[all]==0.5.21\n")
    steps: list[tuple[tuple[str, ...], int, str]] = [
        (("--help",), 0, "doctor"),
        (("check", *root), 1, "unpatched"),
        (("status", *root), 0, "Qwen3_5ForConditionalGeneration"),
        (("apply", "--dry-run", *root), 0, "+    def set_eagle3_layers_to_capture"),
        (("apply", *root), 0, "patched: qwen3_5.py"),
        (("check", *root), 0, "patched"),
        (("verify", *root), 0, "passed: behaviour"),
        (("doctor", "--target", target, "--draft", draft, *root), 0, "ready: launch with"),
        (("doctor", "--launch-only", "--target", "/m/t", "--draft", "/m/d", *root), 0, "--mamba-radix-cache-strategy"),
        (("pins", str(pins_file)), 0, "sglang==0.5.21: patch"),
        (("revert", *root), 0, "restored: qwen3_5.py"),
        (("overlay", "--out", str(tmp_path / "overlay"), *root), 0, "SGLANG_EXTERNAL_MODEL_PACKAGE=eagle3_overlay"),
        (("check", "--overlay", str(tmp_path / "overlay"), *root), 0, "overlaid"),
    ]
    for args, code, expected in steps:
        completed = run(wheel_venv, "eagle3-patch", *args, cwd=tmp_path)
        shown = completed.stdout + completed.stderr
        assert completed.returncode == code, (args, shown[-2000:])
        assert expected in shown, (args, shown[-2000:])
        assert "Traceback" not in shown, (args, shown[-2000:])
    for name in ("apply", "revert", "check", "status", "verify", "doctor", "overlay", "pins"):
        helped = run(wheel_venv, "eagle3-patch", name, "--help", cwd=tmp_path)
        assert helped.returncode == 0 and "Usage: eagle3-patch " + name in helped.stdout, helped.stderr


def test_a_non_editable_install_runs_from_the_checkout_root(wheel_venv: Path, tmp_path: Path) -> None:
    """From the checkout's root, `python -m eagle3_patch` imports the source folder: anchors/ still loads."""
    version = run(wheel_venv, "python", "-m", "eagle3_patch", "--version", cwd=REPO)
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith(f"eagle3-patch {__version__} (anchors data {anchors_version()}")
    site = tmp_path / "site"
    extract_release(fetch_wheel("0.5.21"), site)
    checked = run(wheel_venv, "python", "-m", "eagle3_patch", "check", "--json", "--sglang-root", str(site), cwd=REPO)
    assert (checked.returncode, json.loads(checked.stdout)["state"]) == (1, "unpatched"), checked.stderr
