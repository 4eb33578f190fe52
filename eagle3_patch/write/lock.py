"""The install's lock, and the sweep of temp files a killed run left behind.

State-changing commands hold ``install_lock`` for the whole read -> decide ->
back up -> write -> bytecode sequence. The lock file is never replaced or
deleted (that would let two processes lock different inodes); it sits beside
the ``sglang`` package folder, not inside it, so that what an uninstall leaves
behind is one dot file and never a stray ``sglang`` folder (which Python would
import as a namespace package, shadowing a later install).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import Timeout, UnixFileLock

from eagle3_patch.errors import LockTimeout, WriteError
from eagle3_patch.write.atomic import TEMP_SUFFIX, write_error

LOCK_NAME = ".eagle3-patch-sglang.lock"
#: Where earlier builds of eagle3-patch kept the lock: in the models folder, listed in no RECORD, so an
#: uninstall left ``sglang/`` behind as a namespace package. The sweep removes it.
OLD_LOCK_NAMES = (".eagle3-patch.lock",)
DEFAULT_LOCK_TIMEOUT_S = 120.0
#: Told the name of each step as the writer finishes it ("lock", "keep", "backup",
#: "ledger", "bytecode-before", "replace", "bytecode", "backup-removed"). The
#: product passes none; the fault-injection tests pass one that waits or kills
#: the process there (tests/fault_injection.py).
StepCallback = Callable[[str], None]


def no_step(step: str) -> None:
    """The product's step callback: nothing to do between steps."""


def lock_path_for(package_dir: Path) -> Path:
    """The install's lock file: beside the ``sglang`` package folder."""
    return package_dir.parent / LOCK_NAME


@contextmanager
def install_lock(
    package_dir: Path, *, timeout: float = DEFAULT_LOCK_TIMEOUT_S, on_step: StepCallback = no_step
) -> Iterator[Path]:
    """Hold the install's exclusive lock (flock on a file that is never deleted)."""
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
        raise write_error(path, exc) from exc
    try:
        _own_like_the_install(path, package_dir.parent)
        on_step("lock")
        yield path
    finally:
        lock.release()


def _own_like_the_install(path: Path, folder: Path) -> None:
    """As root, give the lock file the owner of the folder it guards, so that owner can still lock it.

    ``sudo eagle3-patch apply`` on a user's venv would otherwise leave a root-owned
    lock the user cannot open for writing, and their next ``revert`` would fail.
    """
    if os.geteuid() != 0:
        return
    try:
        wanted, current = os.stat(folder), os.stat(path)
        if (current.st_uid, current.st_gid) != (wanted.st_uid, wanted.st_gid):
            os.chown(path, wanted.st_uid, wanted.st_gid)
    except OSError as exc:
        raise write_error(path, exc) from exc


def find_orphans(folders: Iterable[Path]) -> Iterator[Path]:
    """Temp files a killed run left behind in ``folders``, and an earlier version's lock file."""
    for folder in dict.fromkeys(folders):
        yield from folder.glob(f".*{TEMP_SUFFIX}")
        for name in OLD_LOCK_NAMES:
            if (folder / name).is_file() and not (folder / name).is_symlink():
                yield folder / name


def sweep_orphans(folders: Iterable[Path]) -> tuple[Path, ...]:
    """Delete temp files a killed run left behind (call only while holding the lock)."""
    removed = []
    for orphan in list(find_orphans(folders)):
        try:
            orphan.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise write_error(orphan, exc) from exc
        removed.append(orphan)
    return tuple(removed)
