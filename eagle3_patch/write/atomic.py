"""One file, replaced atomically: the primitive every write of eagle3-patch goes through.

Write a temp file in the target's own folder, fsync it, give it the original's
mode (and owner, as root), ``os.replace`` it over the target, fsync the folder.
Every OS failure becomes a ``WriteError`` naming the file and what to do next.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
import tempfile
from pathlib import Path

from eagle3_patch.errors import WriteError
from eagle3_patch.reading import read_bytes_or_none, read_regular_bytes

TEMP_SUFFIX = ".eagle3-tmp"


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
        raise write_error(directory, exc) from exc
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
            raise write_error(path, exc) from exc
    except BaseException:
        unlink(Path(temp))
        raise
    if sync_directory:
        fsync_directory(directory)


def place_link(path: Path, *, inode_of: Path | None = None, symlink_to: str | None = None) -> None:
    """Make ``path`` a new name of ``inode_of`` (a hard link) or a symlink to ``symlink_to``, atomically.

    Both need no disk space for the file's bytes: revert and rollback put an
    original back this way even on a full disk, and a link into a package cache
    comes back as exactly that link. Built under a temp name, then renamed.
    """
    directory = path.parent
    for _ in range(100):
        temp = directory / f".{path.name}.{secrets.token_hex(4)}{TEMP_SUFFIX}"
        try:
            if inode_of is not None:
                os.link(inode_of, temp, follow_symlinks=False)
            elif symlink_to is not None:
                os.symlink(symlink_to, temp)
            else:
                raise ValueError("place_link needs inode_of or symlink_to")
        except FileExistsError:
            continue
        except OSError as exc:
            raise write_error(path, exc) from exc
        break
    else:  # pragma: no cover - 100 random names taken
        raise WriteError("cannot find a free temp name", path=directory)
    try:
        os.replace(temp, path)
    except OSError as exc:
        raise write_error(path, exc) from exc
    finally:
        unlink(temp)  # gone after a rename; still there when path already was that inode (rename did nothing)
    fsync_directory(directory)


def fsync_directory(directory: Path) -> None:
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
            raise write_error(directory, exc) from exc
    finally:
        os.close(fd)


def write_error(path: Path, exc: OSError) -> WriteError:
    reason = exc.strerror or str(exc)
    cause = ""
    if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        hint = "Free some disk space and run it again"
    elif exc.errno == errno.EROFS:
        hint, cause = "The file system is read-only: patch at image build time instead", "read-only"
    elif exc.errno in (errno.EACCES, errno.EPERM):
        hint, cause = "Run as the install's owner, or patch at image build time", "permission"
    else:
        hint = "Fix the cause and run it again"
    return WriteError(f"cannot write ({reason}); nothing was changed. {hint}", path=path, cause=cause)


#: Errors of a link the file system or its rules refuse (exFAT, FUSE, network file systems,
#: ``fs.protected_hardlinks`` on another user's file, an immutable file): copy the bytes instead.
LINK_REFUSED = (
    errno.EPERM,
    errno.EACCES,
    errno.EXDEV,
    errno.EMLINK,
    errno.ENOTSUP,
    errno.EOPNOTSUPP,
    errno.ENOSYS,
)


def cannot_link(exc: WriteError) -> bool:
    """``exc`` came from a link the file system refused, so a copy may still succeed."""
    cause = exc.__cause__
    return isinstance(cause, OSError) and cause.errno in LINK_REFUSED


def read_or_fail(path: Path) -> bytes:
    try:
        return read_regular_bytes(path)
    except OSError as exc:
        raise write_error(path, exc) from exc


def read_or_none(path: Path) -> bytes | None:
    try:
        return read_bytes_or_none(path)
    except OSError as exc:
        raise write_error(path, exc) from exc


def unlink(path: Path) -> None:
    path.unlink(missing_ok=True)
