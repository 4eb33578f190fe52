"""Reading files: the one place that says what a missing or unreadable file means.

Two answers exist, and each caller picks the one it means: a file that must be
readable if present (``read_bytes_or_none``: absent is None, other failures
raise), and a witness we can do without (``read_witness``: any failure is None,
the caller then decides from the other evidence). Writes live in ``write``.
The pins readers read only regular files (``read_regular_file``): a FIFO, a
socket or a device is refused before a read that could block or never end.
"""

from __future__ import annotations

import errno
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


class NotRegularFile(OSError):
    """A path that is a FIFO, a socket, a device or a folder: ``read_regular_file`` does not read it."""

    def __init__(self, path: str, kind: str) -> None:
        super().__init__(errno.EINVAL, f"not a regular file but {kind}", path)
        #: What it is instead: "a FIFO", "a socket", "a character device", "a block device", "a folder".
        self.kind = kind


def read_regular_file(path: str) -> bytes:
    """The bytes of a regular file (a link to one is followed); ``NotRegularFile`` at once for anything else.

    A FIFO blocks an open or a read until something writes to it, and a device such as
    /dev/zero never ends: so the path is looked at first (nothing else is opened), opened with
    O_NONBLOCK (a FIFO put there since cannot block the open) and looked at again, open, before
    the read. Other failures raise as ``OSError`` (FileNotFoundError, PermissionError, ...).
    """
    _refuse_unless_regular(path, os.stat(path).st_mode)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with open(fd, "rb") as file:
        _refuse_unless_regular(path, os.fstat(fd).st_mode)
        return file.read()


def _refuse_unless_regular(path: str, mode: int) -> None:
    if stat.S_ISREG(mode):
        return
    kinds = {stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket", stat.S_IFCHR: "a character device"}
    kinds |= {stat.S_IFBLK: "a block device", stat.S_IFDIR: "a folder"}
    raise NotRegularFile(path, kinds.get(stat.S_IFMT(mode), "some other kind of file"))


def read_text_lenient(path: str) -> str:
    """A UTF-8 text file for the pins readers (TOML, Dockerfiles, setup.cfg), from ``read_regular_file``.

    A leading UTF-8 byte order mark is dropped (Docker drops it; tomllib and configparser refuse the
    file, so reading it is harmless), and undecodable bytes are replaced, never fatal.
    """
    return read_regular_file(path).decode("utf-8", errors="replace").removeprefix("\ufeff")  # no utf-8-sig import
