"""Stage 6: the writer, the only code that changes files on disk (this package).

The invariant: at every instant, for every target file, its original bytes
exist in at least one place the next run finds and trusts: the file itself, or
a backup the ledger vouches for. Everything below follows from it:

- records first: backups (a hard link to the original where the file system
  allows, else a copy) and the ledger are durable before any file changes;
- compare and swap: each file is hashed again right before its replacement,
  so an edit that landed after the plan was made is never overwritten;
- rollback puts the files back first and reads each one back; it removes a
  backup or the ledger only after every file is verified as it was, and when a
  file cannot be put back it keeps them all and says which file is in which
  state (``PartialWriteError``);
- revert removes the ledger and the backups only after every file is restored;
- SIGINT/SIGTERM are held while files change (``signals``);
- nothing is followed through a symlink: a target that links into a package
  cache is replaced by a private copy, and only the install's folders are written.

Each file goes through ``atomic.atomic_write`` or ``atomic.place_link``. Stale
bytecode of every changed file is removed before and after the files change,
because a same-size edit within the same second (or an unchecked-hash pyc)
would otherwise keep the old code running. The lock that serialises runs, and
the sweep of temp files, are in ``lock``; the undo log is in ``journal``.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, NoReturn

from eagle3_patch.errors import DriftError, Eagle3PatchError, Interrupted, PartialWriteError, WriteError
from eagle3_patch.ledger import sha256_hex
from eagle3_patch.reading import file_kind, open_regular, read_backup, read_regular_bytes
from eagle3_patch.write.atomic import (
    TEMP_SUFFIX,
    atomic_write,
    cannot_link,
    read_or_fail,
    read_or_none,
    unlink,
    write_error,
)
from eagle3_patch.write.journal import Journal
from eagle3_patch.write.lock import (
    LOCK_NAME,
    StepCallback,
    find_orphans,
    install_lock,
    lock_path_for,
    no_step,
    sweep_orphans,
)
from eagle3_patch.write.signals import held_signals, signal_name

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
    "write_new_tree",
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
    #: The file was this symlink before apply: put the link back when its target still reads as ``new_content``.
    restore_link: str | None = None


@dataclass(frozen=True)
class WritePlan:
    changes: tuple[FileChange, ...]
    ledger_path: Path
    #: The new ledger; None deletes it.
    ledger: bytes | None
    #: Our own leftovers to delete once the files are written (backups identical to their file).
    remove: tuple[Path, ...] = ()
    #: Other records to rewrite with the backups (pip's RECORD, listing our files): path and bytes.
    records: tuple[tuple[Path, bytes], ...] = ()
    #: Files of ours whose bytes exist nowhere else, copied (from, to) before anything
    #: replaces or removes them: a backup is never thrown away, only kept under another name.
    kept: tuple[tuple[Path, Path], ...] = ()
    #: ``sys.pycache_prefix`` of the interpreter that has SGLang: its bytecode lives there, not in ``__pycache__``.
    pycache_prefix: str | None = None


@dataclass(frozen=True)
class WriteOutcome:
    written: tuple[Path, ...]
    removed_bytecode: tuple[Path, ...]


def execute(plan: WritePlan, *, on_step: StepCallback = no_step) -> WriteOutcome:
    """Carry out a plan as one transaction (the order and the invariant: the module docstring).

    Records, then stale bytecode, then the files, then stale bytecode again,
    then (revert) the ledger and the backups. A kill at any point leaves whole
    files that the next run classifies by their hashes.
    """
    changes = _preflight(plan)
    journal = Journal()
    paths = tuple(c.path for c in changes)
    prefix = plan.pycache_prefix
    with held_signals() as received:
        try:
            _write_records(journal, plan, changes, on_step)
            removed = _remove_bytecode(paths, written=False, prefix=prefix)
            on_step("bytecode-before")
            if received:  # nothing replaced yet: undo the records
                raise Interrupted("", signum=received[0])
            for change in changes:
                _replace(journal, change)
                on_step("replace")
            journal.sync()
        except (WriteError, DriftError, Interrupted) as exc:
            _roll_back(journal, exc)
        removed += _remove_bytecode(paths, written=True, prefix=prefix)
        on_step("bytecode")
        _finish(plan, changes, on_step)
    if received:  # arrived while the files were replaced: they all were
        raise Interrupted(
            f"interrupted by {signal_name(received[0])} while the files were being replaced; the run "
            "finished first, so every file was written and the install is consistent",
            signum=received[0],
        )
    return WriteOutcome(paths, removed)


def _write_records(journal: Journal, plan: WritePlan, changes: tuple[FileChange, ...], on_step: StepCallback) -> None:
    """Backups, kept copies, the ledger and RECORD, durable before any file changes."""
    for source, destination in plan.kept:
        journal.write(destination, read_or_fail(source), like=source)
        on_step("keep")
    for change in changes:
        if change.keep_as is not None:
            journal.write(change.keep_as, read_or_fail(change.path), like=change.path)
            on_step("keep")
        if change.backup is not None and change.backup_path is not None:
            linkable = sha256_hex(change.backup) == change.expected_sha256 and not change.path.is_symlink()
            if not (linkable and journal.link_backup(change.backup_path, target=change.path)):
                journal.write(change.backup_path, change.backup, like=change.path)
            on_step("backup")
    like = changes[0].path if changes else plan.ledger_path
    if plan.ledger is not None and read_or_none(plan.ledger_path) != plan.ledger:
        journal.write(plan.ledger_path, plan.ledger, like=like)
    for path, data in plan.records:
        journal.write(path, data, like=path)
    journal.sync()
    if plan.ledger is not None:
        on_step("ledger")


def _replace(journal: Journal, change: FileChange) -> None:
    """Compare and swap: the file must still be the bytes the plan was made from, read just now.

    The bytes are read through a descriptor opened first, and read again
    through it once the new file is in place: an edit that landed in the old
    file between the hash and the rename (an editor appending to it, say) is
    caught there, put back, and the run rolled back, so it is never lost in a
    displaced file (or in the backup, which may be another name of that file).
    """
    if change.path.is_symlink():  # a link into a package cache: that file is never written, nothing to displace
        handle = None
        current = read_or_fail(change.path)
    else:
        handle = _open_target(change.path)
    try:
        if handle is not None:
            current = _read_fd(change.path, handle.fileno())
        if sha256_hex(current) != change.expected_sha256:
            raise _edited_meanwhile(change.path)
        if handle is not None and not _same_file(change.path, handle.fileno()):
            raise _edited_meanwhile(change.path)  # replaced by another file since it was hashed
        _swap(journal, change, current)
        if handle is not None:
            displaced = _read_fd(change.path, handle.fileno())
            if displaced != current:
                journal.displaced(change.path, displaced)
                raise _edited_meanwhile(change.path)
    finally:
        if handle is not None:
            handle.close()


def _swap(journal: Journal, change: FileChange, current: bytes) -> None:
    """Put the new bytes in place: as the link or backup inode they already are, else (or failing that) a copy."""
    backup = read_backup(change.backup_path) if change.remove_backup and change.backup_path else None
    if change.restore_link is not None and _reads_as(change.path.parent / change.restore_link, change.new_content):
        linked: dict[str, Path | str] = {"symlink_to": change.restore_link}
    elif backup is not None and backup == change.new_content and change.backup_path is not None:
        linked = {"inode_of": change.backup_path}
    else:
        journal.replace(change.path, current, change.new_content)
        return
    try:
        journal.replace(change.path, current, change.new_content, **linked)  # type: ignore[arg-type]
    except WriteError as exc:
        if not cannot_link(exc):
            raise
        # exFAT, protected hard links (another user's backup), an immutable backup: copy the bytes instead.
        journal.replace(change.path, current, change.new_content)
        if read_or_fail(change.path) != change.new_content:
            raise WriteError(
                "the copy written in place of a link does not read back as written; nothing is lost "
                "(the backup stays). Run the command again",
                path=change.path,
            ) from exc


def _open_target(path: Path) -> BinaryIO:
    try:
        return open_regular(path, follow_symlinks=False)
    except OSError as exc:
        raise write_error(path, exc) from exc


def _read_fd(path: Path, fd: int) -> bytes:
    """The whole file behind ``fd``, from its first byte (the offset is left where it was)."""
    chunks, offset = [], 0
    try:
        while chunk := os.pread(fd, 1 << 20, offset):
            chunks.append(chunk)
            offset += len(chunk)
    except OSError as exc:
        raise write_error(path, exc) from exc
    return b"".join(chunks)


def _same_file(path: Path, fd: int) -> bool:
    try:
        now, held = os.lstat(path), os.fstat(fd)
    except OSError:
        return False
    return (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino)


def _edited_meanwhile(path: Path) -> DriftError:
    return DriftError(
        "changed while eagle3-patch was writing (another process edited it); it was left as that "
        "process wrote it and this run's other changes were rolled back. Run the command again",
        path=path,
    )


def _roll_back(journal: Journal, cause: Eagle3PatchError) -> NoReturn:
    """Undo what this run changed, then raise: the cause, or what could not be undone."""
    result = journal.roll_back()
    if result.unrestored:
        changed = ", ".join(p.name for p in result.unrestored)
        kept = ", ".join(p.name for p in result.kept)
        raise PartialWriteError(
            f"{_reason(cause)}; putting back what this run had already changed failed too, so {changed} "
            f"stays as this run wrote it, every other file is as it was, and the records of the originals "
            f"were kept ({kept}): nothing is lost. Fix the cause, then run the same command again to finish",
            path=result.unrestored[0],
        ) from cause
    if isinstance(cause, Interrupted):
        raise Interrupted(
            f"interrupted by {signal_name(cause.signum)} before any file was replaced; everything this "
            "run wrote was rolled back: nothing was changed",
            signum=cause.signum,
        ) from None
    if result.kept:
        raise type(cause)(
            f"{cause.message} (left as this run wrote them, harmless: {', '.join(str(p) for p in result.kept)})",
            path=cause.path,
        ) from cause
    raise cause


def _reason(cause: Eagle3PatchError) -> str:
    if isinstance(cause.__cause__, OSError):
        return f"{cause.path}: cannot write ({cause.__cause__.strerror or cause.__cause__})"
    if isinstance(cause, Interrupted):
        return f"interrupted by {signal_name(cause.signum)}"
    return str(cause).split(";", 1)[0]


def _finish(plan: WritePlan, changes: tuple[FileChange, ...], on_step: StepCallback) -> None:
    """After every file is written: the ledger (revert) and the backups no longer vouch for anything."""
    if plan.ledger is None and read_or_none(plan.ledger_path) is not None:
        _remove(plan.ledger_path, "the files were written but the ledger")
        on_step("ledger")
    for change in changes:
        if change.remove_backup and change.backup_path is not None:
            _remove(change.backup_path, "the file was written but its backup")
            on_step("backup-removed")
    for leftover in plan.remove:
        _remove(leftover, "the files were written but this leftover of ours")


def write_new_tree(folder: Path, files: dict[str, bytes]) -> tuple[Path, ...]:
    """Write generated files (the overlay package) into ``folder``, creating it; each file atomically."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(folder, exc) from exc
    umask = os.umask(0)
    os.umask(umask)
    written = []
    for name, data in files.items():
        atomic_write(folder / name, data)
        try:  # a new file: readable as the umask allows (a temp file is 0600), for the service that imports it
            os.chmod(folder / name, 0o666 & ~umask)
        except OSError as exc:
            raise write_error(folder / name, exc) from exc
        written.append(folder / name)
    return tuple(written)


def _remove(path: Path, what: str) -> None:
    try:
        unlink(path)
    except OSError as exc:
        raise WriteError(f"{what} could not be removed ({exc.strerror}); delete it by hand", path=path) from exc


def _reads_as(path: Path, content: bytes) -> bool:
    try:
        return path.read_bytes() == content
    except OSError:
        return False


def _preflight(plan: WritePlan) -> tuple[FileChange, ...]:
    """Refuse before touching anything if a change cannot succeed.

    A symlinked target is not followed: the link itself is replaced (by a
    private copy), so the file it points to, in a package cache say, is never
    written, and the link's own folder is the one that must be writable.
    """
    _refuse_odd_records(plan)
    for change in plan.changes:
        real = change.path
        try:
            current = read_regular_bytes(real)
            mode = os.lstat(real).st_mode
        except OSError as exc:
            raise write_error(real, exc) from exc
        if sha256_hex(current) != change.expected_sha256:
            raise DriftError(
                "changed while eagle3-patch was working on it; nothing was written. Run the command again",
                path=real,
            )
        if not stat.S_ISLNK(mode) and not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
            raise WriteError(
                "cannot write (the file is read-only); nothing was changed. Make it writable "
                "(chmod u+w) or patch at image build time",
                path=real,
                cause="permission",
            )
        if not os.access(real.parent, os.W_OK | os.X_OK):
            if _read_only_file_system(real.parent):
                raise WriteError(
                    "cannot write (the file system is read-only); nothing was changed. Patch at image build time",
                    path=real.parent,
                    cause="read-only",
                )
            raise WriteError(
                "cannot write (its folder is not writable); nothing was changed. Run as the "
                "install's owner or patch at image build time",
                path=real.parent,
                cause="permission",
            )
    if not plan.changes and not plan.remove and plan.ledger is not None and not plan.records:
        raise ValueError("a write plan needs something to do")
    return plan.changes


def _refuse_odd_records(plan: WritePlan) -> None:
    """A folder, FIFO or device where a backup, kept copy, the ledger or RECORD goes: refuse before any change.

    The writer would otherwise fail half-way (a folder cannot be replaced by a
    file) or block on a FIFO; nothing of eagle3-patch's makes these, so they are
    someone else's, and not ours to move.
    """
    roles: list[tuple[Path, str]] = [(plan.ledger_path, "ledger")]
    for change in plan.changes:
        if change.backup_path is not None:
            roles.append((change.backup_path, "backup"))
        if change.keep_as is not None:
            roles.append((change.keep_as, "copy of your version"))
    roles += [(path, "record") for path, _ in plan.records]
    roles += [(path, "backup") for path in plan.remove]
    roles += [(path, "kept copy") for pair in plan.kept for path in pair]
    for path, role in roles:
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise write_error(path, exc) from exc
        if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
            raise WriteError(
                f"is {file_kind(mode)} where eagle3-patch keeps its {role}, not a file of ours; nothing was "
                "changed. Move it out of the way and run the command again",
                path=path,
            )


def _remove_bytecode(paths: Iterable[Path], *, written: bool, prefix: str | None = None) -> tuple[Path, ...]:
    """Delete every ``<stem>.*.pyc`` of ``paths`` (all tags and optimisation levels) wherever Python keeps them.

    That is ``__pycache__`` beside the file and, when the interpreter that has
    SGLang sets ``sys.pycache_prefix`` (``PYTHONPYCACHEPREFIX``), the mirror of
    the file's folder under that prefix, which Python then reads instead.
    """
    removed = []
    for path in paths:
        caches = [path.parent / "__pycache__"]
        if prefix:
            caches.append(Path(prefix) / Path(os.path.abspath(path.parent)).relative_to("/"))
        for pyc in sorted(p for cache in caches for p in cache.glob(f"{path.stem}.*.pyc")):
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


def _read_only_file_system(path: Path) -> bool:
    """Whether ``path`` sits on a file system mounted read-only (a ``docker run --read-only`` image, say)."""
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False
