"""Reading files: the one place that says what a missing, unreadable or odd file means.

Every read opens the path without blocking and checks, on the open descriptor,
that it is a regular file before reading a byte (``open_regular``): a FIFO,
socket or device in place of a model file, backup, ledger, RECORD or a
checkpoint would otherwise block the run forever (holding the install's lock)
or feed it endless bytes. Such a path raises ``NotRegularFileError``, an
``OSError``, so callers handle it with every other unreadable file.

Two answers exist, and each caller picks the one it means: a file that must be
readable if present (``read_bytes_or_none``: absent is None, other failures
raise), and a witness we can do without (``read_witness``: any failure is None,
the caller then decides from the other evidence). Files a user names (doctor's
checkpoints) may be read up to a limit (``read_regular_bytes``). Writes live in
``write``.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:  # pathlib is not needed at run time: the pins hook never loads it
    from pathlib import Path

#: open() flags for a file that may turn out not to be one: a FIFO opens at once (no waiting
#: for a writer), a terminal does not become ours, and the descriptor never leaks into a child.
_PROBE_FLAGS = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)


class NotRegularFileError(OSError):
    """The path is a FIFO, a socket, a device or a folder: refused before any read, which could block."""

    def __init__(self, path: Path | str, kind: str) -> None:
        super().__init__(errno.EINVAL, f"it is {kind}, not a regular file", str(path))
        self.kind = kind


class FileTooLargeError(OSError):
    """A regular file larger than the caller's limit: not read past it."""

    def __init__(self, path: Path | str, limit: int) -> None:
        super().__init__(errno.EFBIG, f"larger than {limit} bytes", str(path))


def file_kind(mode: int) -> str:
    """What ``mode`` (an ``st_mode``) is, for a message: "a regular file", "a FIFO", "a folder", ..."""
    kinds = (
        (stat.S_ISREG, "a regular file"),
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    )
    return next((name for test, name in kinds if test(mode)), "not a file")


def open_regular(path: Path | str, *, follow_symlinks: bool = True) -> BinaryIO:
    """``path`` opened for reading only if it is a regular file; else ``NotRegularFileError``.

    Opening never blocks (``O_NONBLOCK``), and the check is made on the open
    descriptor (``fstat``), so what is read is what was checked.
    ``follow_symlinks=False`` refuses a symlink (``ELOOP``). Other failures
    (missing, permission) raise their usual ``OSError``.
    """
    flags = _PROBE_FLAGS if follow_symlinks else _PROBE_FLAGS | os.O_NOFOLLOW
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # a socket (or a device with nothing behind it) cannot be opened
            try:
                mode = os.stat(path).st_mode if follow_symlinks else os.lstat(path).st_mode
            except OSError:
                raise exc from None
            raise NotRegularFileError(path, file_kind(mode)) from exc
        raise
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFileError(path, file_kind(mode))
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def read_regular_bytes(path: Path | str, limit: int | None = None, *, follow_symlinks: bool = True) -> bytes:
    """The bytes of ``path`` if it is a regular file (``open_regular``), at most ``limit`` of them.

    A file longer than ``limit`` raises ``FileTooLargeError`` after reading one
    byte past it: never the whole of an unexpectedly huge file.
    """
    with open_regular(path, follow_symlinks=follow_symlinks) as file:
        data = file.read() if limit is None else file.read(limit + 1)
    if limit is not None and len(data) > limit:
        raise FileTooLargeError(path, limit)
    return data


def read_bytes_or_none(path: Path) -> bytes | None:
    """The file's bytes, or None when it does not exist; any other failure is raised."""
    try:
        return read_regular_bytes(path)
    except FileNotFoundError:
        return None


def read_witness(path: Path) -> bytes | None:
    """The bytes of a backup, ledger or RECORD, or None when it cannot be read for any reason."""
    try:
        return read_regular_bytes(path)
    except OSError:
        return None


def read_backup(path: Path) -> bytes | None:
    """Our backup's bytes, only from a regular file opened without following a link; else None.

    A backup that is a symlink (or a folder, a device) is not ours to trust: it
    could point at anything, and ``revert`` would copy that over a model file.
    """
    try:
        return read_regular_bytes(path, follow_symlinks=False)
    except OSError:
        return None


def read_text_lenient(path: str) -> str:
    """A UTF-8 text file for the pins readers (TOML, Dockerfiles, setup.cfg), from ``read_regular_bytes``.

    A leading UTF-8 byte order mark is dropped (Docker drops it; tomllib and configparser refuse the
    file, so reading it is harmless), and undecodable bytes are replaced, never fatal.
    """
    return read_regular_bytes(path).decode("utf-8", errors="replace").removeprefix("\ufeff")  # no utf-8-sig import
