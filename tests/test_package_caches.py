"""Real installers: pip uninstall after apply, and uv installs that link files into uv's cache.

The 0.5.21 wheel (cached, see ``eagle3_patch.fetch``) is installed with
``--no-deps`` into fresh virtual environments: by pip, and by uv (installed
from the package index into a cached folder) in its symlink and hardlink link
modes. eagle3-patch must never write, back up or sweep inside uv's cache, and
revert must give back the very links uv made.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from eagle3_patch.errors import EXIT_OK
from eagle3_patch.fetch import cache_dir, fetch_wheel
from eagle3_patch.ledger import BACKUP_SUFFIX, LEDGER_NAME
from eagle3_patch.marker import MARKER
from eagle3_patch.write import LOCK_NAME
from tests.test_reliability import TARGETS

UV_VERSION = "0.9.30"


def _tool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eagle3_patch", *args], capture_output=True, text=True, timeout=300, check=False
    )


def _site_packages(environment: Path) -> Path:
    return next((environment / "lib").glob("python3*/site-packages"))


def _ours(site: Path) -> list[str]:
    return sorted(str(p.relative_to(site)) for p in site.rglob("*") if ".eagle3" in p.name)


@pytest.fixture(scope="module")
def wheel() -> Path:
    return fetch_wheel("0.5.21")


@pytest.fixture(scope="module")
def uv() -> Path:
    """uv from the package index, installed once into the wheel cache's sibling folder."""
    home = cache_dir().parent / f"uv-{UV_VERSION}"
    binary = home / "bin" / "uv"
    if not binary.exists():
        installed = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(home), f"uv=={UV_VERSION}"],
            capture_output=True,
            text=True,
            check=False,
        )
        if installed.returncode != 0:
            pytest.skip(f"uv {UV_VERSION} cannot be installed from the index: {installed.stderr.strip()[-300:]}")
    return binary


@pytest.mark.slow
def test_pip_uninstall_after_apply_leaves_nothing_and_reinstall_starts_clean(tmp_path: Path, wheel: Path) -> None:
    """A venv of its own (it uninstalls), made without pip: this interpreter's pip installs into it (``--python``)."""
    environment = tmp_path / "venv"
    venv.create(environment, with_pip=False)
    python = environment / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(python), "--disable-pip-version-check", "--quiet"]
    subprocess.run([*pip, "install", "--no-deps", "--no-index", str(wheel)], check=True, timeout=600)
    site = _site_packages(environment)
    applied = _tool("apply", "--python", str(python))
    assert applied.returncode == EXIT_OK, applied.stderr
    assert (site / "sglang" / "srt" / "models" / LEDGER_NAME).exists()
    subprocess.run([*pip, "uninstall", "--yes", "sglang"], check=True, timeout=600)
    assert not (site / "sglang").exists(), "no namespace package is left for a later sglang"
    assert _ours(site) == []
    subprocess.run([*pip, "install", "--no-deps", "--no-index", str(wheel)], check=True, timeout=600)
    assert _tool("check", "--python", str(python)).returncode == 1, "a fresh install is unpatched"
    reverted = _tool("revert", "--python", str(python))
    assert reverted.returncode == EXIT_OK, reverted.stderr
    # apply, then revert: RECORD is as pip wrote it; uninstall leaves only the empty lock beside the package.
    record = next(site.glob("sglang-*.dist-info")) / "RECORD"
    as_installed = record.read_bytes()
    assert _tool("apply", "--python", str(python)).returncode == EXIT_OK
    assert record.read_bytes() != as_installed
    assert _tool("revert", "--python", str(python)).returncode == EXIT_OK
    assert record.read_bytes() == as_installed
    subprocess.run([*pip, "uninstall", "--yes", "sglang"], check=True, timeout=600)
    assert not (site / "sglang").exists() and _ours(site) == [LOCK_NAME]


@pytest.mark.parametrize("mode", ["symlink", "hardlink"])
def test_uv_link_modes_keep_the_cache_untouched_and_revert_relinks(
    tmp_path: Path, wheel: Path, uv: Path, mode: str
) -> None:
    cache = tmp_path / "uv-cache"
    environment = tmp_path / "venv"
    env = {**os.environ, "UV_CACHE_DIR": str(cache), "UV_NO_PROGRESS": "1"}
    subprocess.run([str(uv), "venv", "--quiet", "--python", sys.executable, str(environment)], env=env, check=True)
    python = environment / "bin" / "python"
    subprocess.run(
        [str(uv), "pip", "install", "--quiet", "--python", str(python), "--no-deps", f"--link-mode={mode}", str(wheel)],
        env=env,
        check=True,
        timeout=600,
    )
    models = _site_packages(environment) / "sglang" / "srt" / "models"
    before = {}
    for name in TARGETS:
        target = models / name
        if mode == "symlink":
            assert target.is_symlink(), "uv links the installed file into its cache"
            before[name] = (os.readlink(target), target.read_bytes())
        else:
            assert target.stat().st_nlink > 1, "uv hard-links the installed file to its cache"
            before[name] = (target.stat().st_ino, target.read_bytes())
    in_cache = {p: p.read_bytes() for p in cache.rglob("qwen3_5*.py")}
    assert in_cache, "the cache holds the files"
    planted = next(iter(in_cache)).parent / ".qwen3_5.py.abcdefgh.eagle3-tmp"
    planted.write_bytes(b"not ours to sweep")

    applied = _tool("apply", "--python", str(python))
    assert applied.returncode == EXIT_OK, applied.stderr
    for name in TARGETS:
        target = models / name
        assert not target.is_symlink() and MARKER.encode() in target.read_bytes(), "a private, patched copy"
    assert {p: p.read_bytes() for p in cache.rglob("qwen3_5*.py")} == in_cache, "uv's cache is never written"
    assert not list(cache.rglob(f"*{BACKUP_SUFFIX}")) and not list(cache.rglob(LEDGER_NAME))
    assert planted.exists(), "temp-looking files outside the install are not swept"

    reverted = _tool("revert", "--python", str(python))
    assert reverted.returncode == EXIT_OK, reverted.stderr
    for name in TARGETS:
        target = models / name
        if mode == "symlink":
            assert (os.readlink(target), target.read_bytes()) == before[name], "the very symlink is back"
        else:
            assert (target.stat().st_ino, target.read_bytes()) == before[name], "the very hard link is back"
    assert not list(models.glob(f"*{BACKUP_SUFFIX}")) and not (models / LEDGER_NAME).exists()
