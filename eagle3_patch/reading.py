"""Reading files: the one place that says what a missing, unreadable or odd file means.

Every read opens the path without blocking and checks that it is a regular
file before reading a byte: a FIFO, socket or device in place of a model file,
backup, ledger or RECORD would otherwise block the run forever (holding the
install's lock) or feed it endless bytes. Such a path raises ``NotRegularFile``,
an ``OSError``, so callers handle it with every other unreadable file.

Two answers exist, and each caller picks the one it means: a file that must be
readable if present (``read_bytes_or_none``: absent is None, other failures
raise), and a witness we can do without (``read_witness``: any failure is None,
the caller then decides from the other evidence). Writes live in ``write``.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pathlib is not needed at run time: the pins hook never loads it
    from pathlib import Path

_KINDS = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


class NotRegularFile(OSError):
    """The path is a FIFO, socket or device, not a file: refused before reading anything."""

    def __init__(self, path: str, kind: str) -> None:
        super().__init__(errno.EINVAL, f"is {kind}, not a regular file", path)
        self.kind = kind


def kind_of(mode: int) -> str:
    """What a non-regular file is, in words ("a FIFO"); "a folder" for a directory."""
    if stat.S_ISDIR(mode):
        return "a folder"
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def open_regular(path: Path | str, *, follow_symlinks: bool = True) -> int:
    """A read-only descriptor of ``path``, only when it is a regular file.

    ``O_NONBLOCK`` makes opening a FIFO return at once; ``fstat`` on the open
    descriptor (not the name) then decides, so nothing can swap the file in
    between. A folder raises ``IsADirectoryError``, anything else not a file
    ``NotRegularFile``; ``follow_symlinks=False`` refuses a symlink (ELOOP).
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    if not follow_symlinks:
        flags |= os.O_NOFOLLOW
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "is a folder, not a file", str(path))
        if not stat.S_ISREG(mode):
            raise NotRegularFile(str(path), kind_of(mode))
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_regular(path: Path | str, *, follow_symlinks: bool = True) -> bytes:
    """The bytes of a regular file (``open_regular``'s rules); every failure is raised."""
    with os.fdopen(open_regular(path, follow_symlinks=follow_symlinks), "rb") as file:
        return file.read()


def read_bytes_or_none(path: Path) -> bytes | None:
    """The file's bytes, or None when it does not exist; any other failure is raised."""
    try:
        return read_regular(path)
    except FileNotFoundError:
        return None


def read_witness(path: Path) -> bytes | None:
    """The bytes of a backup, ledger or RECORD, or None when it cannot be read for any reason."""
    try:
        return read_regular(path)
    except OSError:
        return None


def read_backup(path: Path) -> bytes | None:
    """Our backup's bytes, only from a regular file opened without following a link; else None.

    A backup that is a symlink (or a folder, a device) is not ours to trust: it
    could point at anything, and ``revert`` would copy that over a model file.
    """
    try:
        return read_regular(path, follow_symlinks=False)
    except OSError:
        return None


def read_text_lenient(path: str) -> str:
    """A text file for the pins readers: undecodable bytes are replaced, never fatal."""
    with open(path, encoding="utf-8", errors="replace") as file:
        return file.read()
