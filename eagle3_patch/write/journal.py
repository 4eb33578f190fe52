"""What one transaction changed, and how to put it back (used by ``execute`` only).

Two kinds of entry. *Records* (backups, a kept copy, the ledger, pip's RECORD)
vouch for originals; *targets* are the model files. A rollback puts the targets
back first and reads each one back; it undoes the records only when every
target is verified to be as it was, because a record can be the last place
that holds a target's original. A target whose previous file is still linked at
its backup comes back by relinking that inode, which needs no disk space: on a
full disk, with the old inode held by a package cache's hard link, writing the
bytes back would fail.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from eagle3_patch.errors import WriteError
from eagle3_patch.write.atomic import (
    atomic_write,
    cannot_link,
    fsync_directory,
    place_link,
    read_or_none,
    unlink,
    write_error,
)


@dataclass(frozen=True)
class Replaced:
    """A target this run replaced, and what it was before."""

    path: Path
    previous: bytes
    #: The target was this symlink (into a package cache, say): rollback puts the link back.
    previous_link: str | None
    #: (st_dev, st_ino) of the previous file, and a backup that is another name of it.
    identity: tuple[int, int]
    same_inode: Path | None


@dataclass(frozen=True)
class RollbackResult:
    #: Targets that could not be verified back to what they were.
    unrestored: tuple[Path, ...] = ()
    #: Records left in place: all of them when a target is unrestored, else those that could not be undone.
    kept: tuple[Path, ...] = ()


class Journal:
    def __init__(self) -> None:
        self._records: list[tuple[Path, bytes | None]] = []
        self._targets: list[Replaced] = []
        self._linked: dict[Path, Path] = {}  # target -> the backup that is another name of it
        self.unsynced: set[Path] = set()

    @property
    def replaced(self) -> tuple[Path, ...]:
        return tuple(t.path for t in self._targets)

    def write(self, path: Path, data: bytes, *, like: Path) -> None:
        """Write a record (a backup, the ledger, RECORD), remembering what it replaced.

        A write that fails changed nothing (it is atomic), so only a done one is journalled.
        """
        previous = read_or_none(path)
        atomic_write(path, data, like=like, sync_directory=False)
        self._records.append((path, previous))
        self.unsynced.add(path.parent)

    def link_backup(self, path: Path, *, target: Path) -> bool:
        """Make the backup ``path`` another name of ``target``'s file: no copy, no disk space.

        False when the file system refuses hard links; the caller copies the bytes instead.
        """
        previous = read_or_none(path)
        try:
            place_link(path, inode_of=target)
        except WriteError as exc:
            if cannot_link(exc):
                return False
            raise
        self._records.append((path, previous))
        self._linked[target] = path
        return True

    def delete(self, path: Path) -> None:
        previous = read_or_none(path)
        if previous is not None:
            self._records.append((path, previous))
            try:
                unlink(path)
            except OSError as exc:
                raise write_error(path, exc) from exc
            self.unsynced.add(path.parent)

    def replace(
        self,
        path: Path,
        current: bytes,
        data: bytes,
        *,
        inode_of: Path | None = None,
        symlink_to: str | None = None,
    ) -> None:
        """Replace a target (never through a symlink): with ``data``, or by linking ``inode_of`` or ``symlink_to``."""
        status = os.lstat(path)
        previous_link = os.readlink(path) if path.is_symlink() else None
        if inode_of is not None:
            place_link(path, inode_of=inode_of)
        elif symlink_to is not None:
            place_link(path, symlink_to=symlink_to)
        else:
            atomic_write(path, data, sync_directory=False)
        self._targets.append(
            Replaced(path, current, previous_link, (status.st_dev, status.st_ino), self._linked.get(path))
        )
        self.unsynced.add(path.parent)

    def displaced(self, path: Path, previous: bytes) -> None:
        """The target's old file turned out to hold ``previous`` (an edit landed in it): rollback restores that."""
        for index, target in enumerate(self._targets):
            if target.path == path:
                self._targets[index] = replace(target, previous=previous)

    def sync(self) -> None:
        """fsync every folder written since the last sync: the new names are now durable."""
        for directory in sorted(self.unsynced):
            fsync_directory(directory)
        self.unsynced.clear()

    def roll_back(self) -> RollbackResult:
        """Targets first, each verified; then the records, only if every target came back."""
        unrestored = tuple(t.path for t in reversed(self._targets) if not _put_back(t))
        if unrestored:
            return RollbackResult(unrestored, tuple(dict.fromkeys(p for p, _ in self._records)))
        kept = []
        for path, previous in reversed(self._records):
            try:
                if previous is None:
                    unlink(path)
                else:
                    atomic_write(path, previous)
            except (OSError, WriteError):
                kept.append(path)
        return RollbackResult((), tuple(kept))


def _put_back(target: Replaced) -> bool:
    """Restore one target as it was (link, inode or bytes), then read it back to be sure."""
    attempts: list[Callable[[], None]] = []
    link, alias = target.previous_link, target.same_inode
    if link is not None:
        attempts.append(partial(place_link, target.path, symlink_to=link))
    else:
        if alias is not None and _identity(alias) == target.identity:
            attempts.append(partial(place_link, target.path, inode_of=alias))
        attempts.append(partial(atomic_write, target.path, target.previous))
    for attempt in attempts:
        try:
            attempt()
        except (OSError, WriteError):
            continue
        if _is_back(target):
            return True
    return _is_back(target)


def _is_back(target: Replaced) -> bool:
    try:
        if target.previous_link is not None:
            return os.readlink(target.path) == target.previous_link
        return not target.path.is_symlink() and target.path.read_bytes() == target.previous
    except OSError:
        return False


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        status = os.lstat(path)
    except OSError:
        return None
    return (status.st_dev, status.st_ino)
