"""Stage 6: the only module that changes files on disk.

Every file is written through a temp file in its own folder: write, fsync, give
it the original's mode (and owner, as root), ``os.replace``, fsync the folder.
All target files of an install change as one transaction: if one cannot be
written, those already replaced get their previous bytes back and the backups
and ledger written on the way are undone. Stale bytecode of every changed file
is removed before and after the files change, because a same-size edit within
the same second (or an unchecked-hash pyc) would otherwise keep the old code
running, and a kill between the two must not leave such a pyc behind.

State-changing commands hold ``install_lock`` for the whole read -> decide ->
back up -> write -> bytecode sequence. The lock file is never replaced or
deleted (that would let two processes lock different inodes); it sits beside
the ``sglang`` package folder, not inside it, so that what an uninstall leaves
behind is one dot file and never a stray ``sglang`` folder (which Python would
import as a namespace package, shadowing a later install).
"""

from __future__ import annotations

import dataclasses
import errno
import os
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from eagle3_patch.errors import DriftError, WriteError
from eagle3_patch.ledger import sha256_hex

TEMP_SUFFIX = ".eagle3-tmp"
LOCK_NAME = ".eagle3-patch-sglang.lock"
DEFAULT_LOCK_TIMEOUT_S = 120.0
#: Told the name of each step as the writer finishes it ("lock", "keep", "backup",
#: "ledger", "bytecode-before", "replace", "bytecode", "backup-removed"). The
#: product passes none; the fault-injection tests pass one that waits or kills
#: the process there (tests/fault_injection.py).
StepCallback = Callable[[str], None]


def _no_step(step: str) -> None:
    """The product's step callback: nothing to do between steps."""


class LockTimeout(WriteError):
    """Another eagle3-patch holds the install's lock for longer than --lock-timeout."""


def lock_path_for(package_dir: Path) -> Path:
    """The install's lock file: beside the ``sglang`` package folder."""
    return package_dir.parent / LOCK_NAME


@contextmanager
def install_lock(
    package_dir: Path, *, timeout: float = DEFAULT_LOCK_TIMEOUT_S, on_step: StepCallback = _no_step
) -> Iterator[Path]:
    """Hold the install's exclusive lock (flock on a file that is never deleted)."""
    from filelock import Timeout, UnixFileLock

    path = lock_path_for(package_dir)
    lock = UnixFileLock(path, timeout=timeout, fallback_to_soft=False, preserve_lock_file=True)
    try:
        lock.acquire()
    except Timeout:
        raise LockTimeout(
            f"another eagle3-patch holds this lock (waited {timeout:g} s); let it finish, or raise --lock-timeout",
            path=path,
        ) from None
    except NotImplementedError as exc:
        raise WriteError(f"the file system cannot lock files ({exc}); patch on a local disk", path=path) from exc
    except OSError as exc:
        raise _write_error(path, exc) from exc
    try:
        on_step("lock")
        yield path
    finally:
        lock.release()


def find_orphans(folders: Iterable[Path]) -> Iterator[Path]:
    """Temp files a killed run left behind in ``folders``."""
    for folder in dict.fromkeys(folders):
        yield from folder.glob(f".*{TEMP_SUFFIX}")


def sweep_orphans(folders: Iterable[Path]) -> tuple[Path, ...]:
    """Delete temp files a killed run left behind (call only while holding the lock)."""
    removed = []
    for orphan in list(find_orphans(folders)):
        try:
            orphan.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise _write_error(orphan, exc) from exc
        removed.append(orphan)
    return tuple(removed)


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
    #: Our own leftovers to delete once the files are written (backups identical to their file).
    remove: tuple[Path, ...] = ()


@dataclass(frozen=True)
class WriteOutcome:
    written: tuple[Path, ...]
    removed_bytecode: tuple[Path, ...]


def execute(plan: WritePlan, *, on_step: StepCallback = _no_step) -> WriteOutcome:
    """Carry out a plan as one transaction.

    Order: copies and backups, then the ledger, then stale bytecode, then the
    files, then stale bytecode again, then (for revert) the backups. A record of
    the original therefore exists before any file changes, and a kill at any
    point leaves whole files that the next run classifies by their hashes.
    """
    changes = _preflight(plan)
    journal = _Journal()
    # A symlinked file is imported (and cached) under the link's name: clean both places.
    sources = tuple(dict.fromkeys([*(c.path for c in plan.changes), *(c.path for c in changes)]))
    try:
        for change in changes:
            if change.keep_as is not None:
                journal.write(change.keep_as, _read(change.path), like=change.path)
                on_step("keep")
            if change.backup is not None and change.backup_path is not None:
                journal.write(change.backup_path, change.backup, like=change.path)
                on_step("backup")
        _write_ledger(journal, plan, like=changes[0].path if changes else plan.ledger_path)
        journal.sync()
        on_step("ledger")
        removed_before = _remove_bytecode(sources, written=False)
        on_step("bytecode-before")
        for change in changes:
            journal.replace(change.path, change.new_content)
            on_step("replace")
        journal.sync()
    except WriteError:
        journal.roll_back()
        raise
    removed = removed_before + _remove_bytecode(sources, written=True)
    on_step("bytecode")
    for change in changes:
        if change.remove_backup and change.backup_path is not None:
            try:
                _unlink(change.backup_path)
            except OSError as exc:
                raise WriteError(
                    f"the file was written but its backup could not be removed ({exc.strerror}); delete it by hand",
                    path=change.backup_path,
                ) from exc
            on_step("backup-removed")
    for leftover in plan.remove:
        try:
            _unlink(leftover)
        except OSError as exc:
            raise _write_error(leftover, exc) from exc
    return WriteOutcome(tuple(c.path for c in changes), removed)


def atomic_write(path: Path, data: bytes, *, like: Path | None = None, sync_directory: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically, keeping the mode of ``like`` (default: path).

    ``sync_directory=False`` leaves the folder's fsync to the caller, who syncs
    each folder once per phase (the new names are durable before the next phase).
    """
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
    if sync_directory:
        _fsync_directory(directory)


class _Journal:
    """What this transaction changed, so a failure can put every byte back."""

    def __init__(self) -> None:
        self._undo: list[tuple[Path, bytes | None]] = []
        self.unsynced: set[Path] = set()

    def write(self, path: Path, data: bytes, *, like: Path) -> None:
        self._undo.append((path, _read_or_none(path)))
        atomic_write(path, data, like=like, sync_directory=False)
        self.unsynced.add(path.parent)

    def replace(self, path: Path, data: bytes) -> None:
        self._undo.append((path, _read(path)))
        atomic_write(path, data, sync_directory=False)
        self.unsynced.add(path.parent)

    def sync(self) -> None:
        """fsync every folder written since the last sync: the new names are now durable."""
        for directory in sorted(self.unsynced):
            _fsync_directory(directory)
        self.unsynced.clear()

    def delete(self, path: Path) -> None:
        previous = _read_or_none(path)
        if previous is not None:
            self._undo.append((path, previous))
            try:
                _unlink(path)
            except OSError as exc:
                raise _write_error(path, exc) from exc
            self.unsynced.add(path.parent)

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
    if not changes and not plan.remove and plan.ledger is not None:
        raise ValueError("a write plan needs something to do")
    return tuple(changes)


def _write_ledger(journal: _Journal, plan: WritePlan, *, like: Path) -> None:
    if plan.ledger is None:
        journal.delete(plan.ledger_path)
    elif _read_or_none(plan.ledger_path) != plan.ledger:
        journal.write(plan.ledger_path, plan.ledger, like=like)


def _remove_bytecode(paths: Iterable[Path], *, written: bool) -> tuple[Path, ...]:
    """Delete every ``__pycache__/<stem>.*.pyc`` of ``paths`` (all tags and optimisation levels)."""
    removed = []
    for path in paths:
        cache = path.parent / "__pycache__"
        for pyc in sorted(cache.glob(f"{path.stem}.*.pyc")):
            try:
                pyc.unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                done = "the file was written but" if written else "nothing was changed:"
                raise WriteError(
                    f"{done} its stale bytecode could not be removed ({exc.strerror}); delete it by hand, "
                    "or Python may keep running the old code",
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
