"""Reading files: the one place that says what a missing or unreadable file means.

Two answers exist, and each caller picks the one it means: a file that must be
readable if present (``read_bytes_or_none``: absent is None, other failures
raise), and a witness we can do without (``read_witness``: any failure is None,
the caller then decides from the other evidence). Writes live in ``write``.
"""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pathlib is not needed at run time: the pins hook never loads it
    from pathlib import Path


def read_bytes_or_none(path: Path) -> bytes | None:
    """The file's bytes, or None when it does not exist; any other failure is raised."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def read_witness(path: Path) -> bytes | None:
    """The bytes of a backup, ledger or RECORD, or None when it cannot be read for any reason."""
    try:
        return path.read_bytes()
    except OSError:
        return None


def read_backup(path: Path) -> bytes | None:
    """Our backup's bytes, only from a regular file opened without following a link; else None.

    A backup that is a symlink (or a folder, a device) is not ours to trust: it
    could point at anything, and ``revert`` would copy that over a model file.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            return None
        try:
            return file.read()
        except OSError:
            return None


def read_text_lenient(path: str) -> str:
    """A text file for the pins readers: undecodable bytes are replaced, never fatal."""
    with open(path, encoding="utf-8", errors="replace") as file:
        return file.read()
