"""Our files in pip's RECORD, so that ``pip uninstall sglang`` takes them away with sglang.

pip removes exactly the paths RECORD lists (bytecode aside). Backups and the
ledger left in ``sglang/srt/models/`` after an uninstall would keep the folder
alive, and Python would import a later ``sglang`` as an empty namespace
package. So apply lists them and the lock beside the package (``path,,``: no
hash, no size, as pip lists RECORD itself), and revert takes every line out
again: after revert, RECORD is byte for byte what the installer wrote (the lock
file, outside the ``sglang`` folder, then outlives an uninstall; harmless).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from eagle3_patch.ledger import LEDGER_NAME, backup_path_for
from eagle3_patch.locate import Install
from eagle3_patch.reading import read_witness
from eagle3_patch.spec import PatchSpec
from eagle3_patch.write import LOCK_NAME


def record_path(install: Install) -> Path | None:
    """The install's RECORD, or None when it has none (a source tree, an egg)."""
    if install.dist_info is None:
        return None
    path = install.dist_info / "RECORD"
    return path if path.is_file() else None


def our_lines(install: Install, spec: PatchSpec) -> tuple[str, ...]:
    """RECORD paths of our files: the ledger, every backup, the lock."""
    files = [install.models_dir / LEDGER_NAME, *(backup_path_for(install.models_dir / f.name) for f in spec.files)]
    site = install.package_dir.parent
    lines = []
    for path in files:
        try:
            lines.append(path.relative_to(site).as_posix())
        except ValueError:  # a models folder outside site-packages: nothing pip would find either
            continue
    return (*lines, LOCK_NAME)


def listing_ours(install: Install, spec: PatchSpec) -> tuple[Path, bytes] | None:
    """RECORD with our files listed; None when it already lists them or there is none."""
    return _rewrite(install, lambda record: _with(record, our_lines(install, spec)))


def not_listing_ours(install: Install, spec: PatchSpec) -> tuple[Path, bytes] | None:
    """RECORD without our lines, as the installer wrote it; None when there are none."""
    return _rewrite(install, lambda record: _without(record, our_lines(install, spec)))


def _rewrite(install: Install, edit: Callable[[bytes], bytes]) -> tuple[Path, bytes] | None:
    path = record_path(install)
    record = read_witness(path) if path is not None else None
    if path is None or record is None:
        return None
    new = edit(record)
    return (path, new) if new != record else None


def _with(record: bytes, paths: Iterable[str]) -> bytes:
    """RECORD with our lines added, each ended as the installer ended its first line.

    A RECORD whose last line has no line ending gets ours before a final one
    that has none either, so ``_without`` can give back the very same bytes.
    """
    lines = record.splitlines(keepends=True)
    newline = _ending(lines[0]) if lines and _ending(lines[0]) else b"\n"
    listed = {line.split(b",", 1)[0] for line in record.splitlines()}
    missing = [p.encode() + b",," for p in paths if p.encode() not in listed]
    if not missing:
        return record
    if not lines or _ending(lines[-1]):
        return record + b"".join(line + newline for line in missing)
    return record + b"".join(newline + line for line in missing)


def _without(record: bytes, paths: Iterable[str]) -> bytes:
    """RECORD without our lines; when ours ended it without a line ending, so does the result."""
    ours = {p.encode() for p in paths}
    lines = record.splitlines(keepends=True)
    kept = [line for line in lines if line.split(b",", 1)[0].rstrip(b"\r\n") not in ours]
    if kept and lines and not _ending(lines[-1]) and kept[-1] is not lines[-1]:
        kept[-1] = kept[-1][: len(kept[-1]) - len(_ending(kept[-1]))]
    return b"".join(kept)


def _ending(line: bytes) -> bytes:
    for ending in (b"\r\n", b"\n", b"\r"):
        if line.endswith(ending):
            return ending
    return b""
