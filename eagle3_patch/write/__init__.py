"""Stage 6: the writer, the only code that changes files on disk (this package).

``execute`` carries out a ``WritePlan`` as one transaction over all target
files of an install: if one cannot be written, those already replaced get
their previous bytes back and the backups and ledger written on the way are
undone. Each file goes through ``atomic.atomic_write``. Stale bytecode of every
changed file is removed before and after the files change, because a same-size
edit within the same second (or an unchecked-hash pyc) would otherwise keep the
old code running, and a kill between the two must not leave such a pyc behind.
The lock that serialises runs, and the sweep of temp files, are in ``lock``.
"""

from __future__ import annotations

import dataclasses
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from eagle3_patch.errors import DriftError, WriteError
from eagle3_patch.ledger import sha256_hex
from eagle3_patch.write.atomic import (
    TEMP_SUFFIX,
    atomic_write,
    fsync_directory,
    read_or_fail,
    read_or_none,
    unlink,
    write_error,
)
from eagle3_patch.write.lock import (
    LOCK_NAME,
    StepCallback,
    find_orphans,
    install_lock,
    lock_path_for,
    no_step,
    sweep_orphans,
)

__all__ = [
    "LOCK_NAME",
    "TEMP_SUFFIX",
    "FileChange",
    "WriteOutcome",
    "WritePlan",
    "atomic_write",
    "execute",
    "find_orphans",
    "install_lock",
    "lock_path_for",
    "sweep_orphans",
]


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


def execute(plan: WritePlan, *, on_step: StepCallback = no_step) -> WriteOutcome:
    """Carry out a plan as one transaction.

    Order: copies and backups, then the ledger, then stale bytecode, then the
    files, then stale bytecode again, then (for revert) the backups. A record of
    the original therefore exists before any file changes, and a kill at any
    point leaves whole files that the next run classifies by their hashes. Each
    file is hashed again right before it is replaced: an edit that landed after
    the plan was made is kept, and everything this run wrote is rolled back.
    """
    changes = _preflight(plan)
    journal = _Journal()
    # A symlinked file is imported (and cached) under the link's name: clean both places.
    sources = tuple(dict.fromkeys([*(c.path for c in plan.changes), *(c.path for c in changes)]))
    try:
        for change in changes:
            if change.keep_as is not None:
                journal.write(change.keep_as, read_or_fail(change.path), like=change.path)
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
            journal.replace(change.path, change.new_content, expected_sha256=change.expected_sha256)
            on_step("replace")
        journal.sync()
    except (WriteError, DriftError):
        journal.roll_back()
        raise
    removed = removed_before + _remove_bytecode(sources, written=True)
    on_step("bytecode")
    for change in changes:
        if change.remove_backup and change.backup_path is not None:
            try:
                unlink(change.backup_path)
            except OSError as exc:
                raise WriteError(
                    f"the file was written but its backup could not be removed ({exc.strerror}); delete it by hand",
                    path=change.backup_path,
                ) from exc
            on_step("backup-removed")
    for leftover in plan.remove:
        try:
            unlink(leftover)
        except OSError as exc:
            raise write_error(leftover, exc) from exc
    return WriteOutcome(tuple(c.path for c in changes), removed)


class _Journal:
    """What this transaction changed, so a failure can put every byte back."""

    def __init__(self) -> None:
        self._undo: list[tuple[Path, bytes | None]] = []
        self.unsynced: set[Path] = set()

    def write(self, path: Path, data: bytes, *, like: Path) -> None:
        self._undo.append((path, read_or_none(path)))
        atomic_write(path, data, like=like, sync_directory=False)
        self.unsynced.add(path.parent)

    def replace(self, path: Path, data: bytes, *, expected_sha256: str) -> None:
        """Compare and swap: the file must still be the bytes the plan was made from, read just now."""
        current = read_or_fail(path)
        if sha256_hex(current) != expected_sha256:
            raise DriftError(
                "changed while eagle3-patch was writing (another process edited it); it was left as that "
                "process wrote it and this run's other changes were rolled back. Run the command again",
                path=path,
            )
        self._undo.append((path, current))
        atomic_write(path, data, sync_directory=False)
        self.unsynced.add(path.parent)

    def sync(self) -> None:
        """fsync every folder written since the last sync: the new names are now durable."""
        for directory in sorted(self.unsynced):
            fsync_directory(directory)
        self.unsynced.clear()

    def delete(self, path: Path) -> None:
        previous = read_or_none(path)
        if previous is not None:
            self._undo.append((path, previous))
            try:
                unlink(path)
            except OSError as exc:
                raise write_error(path, exc) from exc
            self.unsynced.add(path.parent)

    def roll_back(self) -> None:
        """Best effort: each step is itself atomic, so a failure here leaves whole files."""
        for path, previous in reversed(self._undo):
            try:
                if previous is None:
                    unlink(path)
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
            raise write_error(real, exc) from exc
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
    elif read_or_none(plan.ledger_path) != plan.ledger:
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
