"""Real SGLang releases from the package index, cached outside any repository.

Used by the test corpus and the maintainer script that extends the verified
table. It writes only into its own cache folder and into folders the caller
names; it never touches an install. Downloads go through pip, so pip's own
index configuration (mirrors, certificates) applies.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

from packaging.version import InvalidVersion, Version

from eagle3_patch.errors import FetchError

CACHE_ENV = "EAGLE3_PATCH_WHEEL_CACHE"
PACKAGE = "sglang"

# A wheel of any release must be fetchable from any interpreter, so ask for the
# files that a CPython 3.11 on x86-64 Linux would install (SGLang ships pure
# wheels up to 0.5.10.post1 and cp311 manylinux wheels after that).
_TARGET_FLAGS = (
    "--only-binary=:all:",
    "--implementation", "cp",
    "--python-version", "3.11",
    "--platform", "manylinux_2_28_x86_64",
    "--platform", "manylinux_2_34_x86_64",
    "--platform", "manylinux_2_39_x86_64",
    "--platform", "any",
)  # fmt: skip


def cache_dir() -> Path:
    """Where wheels are kept: $EAGLE3_PATCH_WHEEL_CACHE, else the user's cache folder."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "eagle3-patch" / "wheels"


def index_versions(minimum: str = "0.0") -> tuple[str, ...]:
    """Every sglang release on the index at or above ``minimum``, oldest first, pre-releases left out."""
    completed = subprocess.run(
        [sys.executable, "-m", "pip", "index", "versions", PACKAGE, *_TARGET_FLAGS],
        capture_output=True,
        text=True,
        check=False,
    )
    match = re.search(r"Available versions:\s*(.+)", completed.stdout)
    if completed.returncode != 0 or match is None:
        last = (completed.stderr.strip().splitlines() or ["no output"])[-1]
        raise FetchError(f"cannot list {PACKAGE} releases on the index ({last})")
    floor = Version(minimum)
    versions = []
    for text in match.group(1).split(","):
        try:
            version = Version(text.strip())
        except InvalidVersion:
            continue
        if version >= floor and not version.is_prerelease:
            versions.append(version)
    return tuple(str(v) for v in sorted(versions))


def fetch_wheel(version: str, *, cache: Path | None = None) -> Path:
    """The cached wheel of ``sglang==version``, downloaded with ``pip download --no-deps`` if needed."""
    cache = cache or cache_dir()
    cached = _cached_wheel(cache, version)
    if cached is not None:
        return cached
    cache.mkdir(parents=True, exist_ok=True)
    completed = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", *_TARGET_FLAGS,
         "--dest", str(cache), f"{PACKAGE}=={version}"],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    cached = _cached_wheel(cache, version)
    if completed.returncode != 0 or cached is None:
        last = (completed.stderr.strip().splitlines() or ["no output"])[-1]
        raise FetchError(f"cannot download {PACKAGE}=={version} ({last})")
    return cached


def extract_release(wheel: Path, site_packages: Path) -> Path:
    """Unpack what eagle3-patch reads: model files, version files, ServerArgs, the dist-info.

    Returns the ``sglang`` package folder inside ``site_packages``; the result is
    laid out exactly as ``pip install --no-deps`` would lay out those files.
    """
    with zipfile.ZipFile(wheel) as archive:
        members = [name for name in archive.namelist() if _wanted(name)]
        for name in members:
            archive.extract(name, site_packages)
    return site_packages / PACKAGE


def _wanted(name: str) -> bool:
    head, _, rest = name.partition("/")
    if head.endswith(".dist-info"):
        return True
    if head != PACKAGE:
        return False
    return (
        rest.startswith(("srt/models/", "srt/arg_groups/"))
        or rest in ("srt/__init__.py", "srt/server_args.py")
        or "/" not in rest
    )


def _cached_wheel(cache: Path, version: str) -> Path | None:
    found = sorted(cache.glob(f"{PACKAGE}-{version}-*.whl"))
    return found[-1] if found else None
