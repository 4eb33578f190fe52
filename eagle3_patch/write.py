"""Stage 6: the only module that changes files on disk.

Every file is written through a temp file in its own folder: write, fsync, give
it the original's mode (and owner, as root), ``os.replace``, fsync the folder.
All target files of an install change as one transaction: if one cannot be
written, those already replaced get their previous bytes back and the backups
and ledger written on the way are undone. Stale bytecode of every changed file
is removed, because a same-size edit within the same second (or an
unchecked-hash pyc) would otherwise keep the old code running.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import stat
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from eagle3_patch.errors import DriftError, WriteError
from eagle3_patch.ledger import sha256_hex

TEMP_SUFFIX = ".eagle3-tmp"


@dataclass(frozen=True)
class FileChange:
    """Replace ``path`` (expected to hash to ``expected_sha256``) with ``new_content``."""

    path: Path
    expected_sha256: str
    new_content: bytes
    #: Bytes to save as the backup beside the file first; None leaves the backup alone.
    backup: bytes | None = None
    backup_path: Path | None = None
    #: After success, delete the backup (revert).
    remove_backup: bool = False
    #: Save the current bytes here first (revert --force keeps the user's version).
    keep_as: Path | None = None


@dataclass(frozen=True)
class WritePlan:
    changes: tuple[FileChange, ...]
    ledger_path: Path
    #: The new ledger; None deletes it.
    ledger: bytes | None


@dataclass(frozen=True)
class WriteOutcome:
    written: tuple[Path, ...]
    removed_bytecode: tuple[Path, ...]


def execute(plan: WritePlan) -> WriteOutcome:
    """Carry out a plan as one transaction.

    Order: copies and backups, then the ledger, then the files, so a record of
    the original always exists before a file changes; a kill at any point leaves
    whole files that the next run classifies by their hashes. Afterwards, stale
    bytecode and (for revert) the backups are removed.
    """
    changes = _preflight(plan)
    journal = _Journal()
    try:
        for change in changes:
            if change.keep_as is not None:
                journal.write(change.keep_as, _read(change.path), like=change.path)
            if change.backup is not None and change.backup_path is not None:
                journal.write(change.backup_path, change.backup, like=change.path)
        _write_ledger(journal, plan, like=changes[0].path)
        for change in changes:
            journal.replace(change.path, change.new_content)
    except WriteError:
        journal.roll_back()
        raise
    # A symlinked file is imported (and cached) under the link's name: clean both places.
    removed = _remove_bytecode(dict.fromkeys([*(c.path for c in plan.changes), *(c.path for c in changes)]))
    for change in changes:
        if change.remove_backup and change.backup_path is not None:
            try:
                _unlink(change.backup_path)
            except OSError as exc:
                raise WriteError(
                    f"the file was written but its backup could not be removed ({exc.strerror}); delete it by hand",
                    path=change.backup_path,
                ) from exc
    return WriteOutcome(tuple(c.path for c in changes), removed)


def atomic_write(path: Path, data: bytes, *, like: Path | None = None) -> None:
    """Replace ``path`` with ``data`` atomically, keeping the mode of ``like`` (default: path)."""
    directory = path.parent
    try:
        reference = os.stat(like if like is not None else path)
    except FileNotFoundError:
        reference = None
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=directory)
    except OSError as exc:
        raise _write_error(directory, exc) from exc
    try:
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
                if reference is not None:
                    os.fchmod(handle.fileno(), stat.S_IMODE(reference.st_mode))
                    if os.geteuid() == 0 and (reference.st_uid, reference.st_gid) != (os.geteuid(), os.getegid()):
                        os.fchown(handle.fileno(), reference.st_uid, reference.st_gid)
            os.replace(temp, path)
        except OSError as exc:
            raise _write_error(path, exc) from exc
    except BaseException:
        _unlink(Path(temp))
        raise
    _fsync_directory(directory)


class _Journal:
    """What this transaction changed, so a failure can put every byte back."""

    def __init__(self) -> None:
        self._undo: list[tuple[Path, bytes | None]] = []

    def write(self, path: Path, data: bytes, *, like: Path) -> None:
        self._undo.append((path, _read_or_none(path)))
        atomic_write(path, data, like=like)

    def replace(self, path: Path, data: bytes) -> None:
        self._undo.append((path, _read(path)))
        atomic_write(path, data)

    def delete(self, path: Path) -> None:
        previous = _read_or_none(path)
        if previous is not None:
            self._undo.append((path, previous))
            try:
                _unlink(path)
            except OSError as exc:
                raise _write_error(path, exc) from exc

    def roll_back(self) -> None:
        """Best effort: each step is itself atomic, so a failure here leaves whole files."""
        for path, previous in reversed(self._undo):
            try:
                if previous is None:
                    _unlink(path)
                else:
                    atomic_write(path, previous)
            except (OSError, WriteError):
                continue


def _preflight(plan: WritePlan) -> tuple[FileChange, ...]:
    """Resolve symlinks, and refuse before touching anything if a change cannot succeed."""
    changes = []
    for change in plan.changes:
        real = Path(os.path.realpath(change.path))
        try:
            current = real.read_bytes()
            mode = os.stat(real).st_mode
        except OSError as exc:
            raise _write_error(real, exc) from exc
        if sha256_hex(current) != change.expected_sha256:
            raise DriftError(
                "changed while eagle3-patch was working on it; nothing was written. Run the command again",
                path=real,
            )
        if not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
            raise WriteError(
                "cannot write (the file is read-only); nothing was changed. Make it writable "
                "(chmod u+w) or patch at image build time",
                path=real,
            )
        if not os.access(real.parent, os.W_OK | os.X_OK):
            raise WriteError(
                "cannot write (its folder is not writable); nothing was changed. Run as the "
                "install's owner or patch at image build time",
                path=real.parent,
            )
        changes.append(dataclasses.replace(change, path=real))
    if not changes:
        raise ValueError("a write plan needs at least one change")
    return tuple(changes)


def _write_ledger(journal: _Journal, plan: WritePlan, *, like: Path) -> None:
    if plan.ledger is None:
        journal.delete(plan.ledger_path)
    elif _read_or_none(plan.ledger_path) != plan.ledger:
        journal.write(plan.ledger_path, plan.ledger, like=like)


def _remove_bytecode(paths: Iterable[Path]) -> tuple[Path, ...]:
    removed = []
    for path in paths:
        cache = path.parent / "__pycache__"
        for pyc in sorted(cache.glob(f"{path.stem}.*.pyc")):
            try:
                pyc.unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise WriteError(
                    f"the file was written but its stale bytecode could not be removed ({exc.strerror}); "
                    "delete it by hand, or Python may keep running the old code",
                    path=pyc,
                ) from exc
            removed.append(pyc)
    return tuple(removed)


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        # Some FUSE and network file systems refuse fsync on folders; the rename
        # itself has already happened, so this is not a failure of the write.
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise _write_error(directory, exc) from exc
    finally:
        os.close(fd)


def _write_error(path: Path, exc: OSError) -> WriteError:
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        hint = "free some disk space and run it again"
    elif exc.errno == errno.EROFS:
        hint = "the file system is read-only: patch at image build time instead"
    elif exc.errno in (errno.EACCES, errno.EPERM):
        hint = "run as the install's owner, or patch at image build time"
    else:
        hint = "fix the cause and run it again"
    return WriteError(f"cannot write ({reason}); nothing was changed. {hint}", path=path)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _write_error(path, exc) from exc


def _read_or_none(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _write_error(path, exc) from exc


def _unlink(path: Path) -> None:
    path.unlink(missing_ok=True)
