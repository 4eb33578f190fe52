"""A patched file's original bytes, and who vouches for them (used by classify only).

A file carrying our blocks has two candidates for its original: our backup
beside it, and the file with our blocks removed. A candidate is accepted when
its sha256 matches a witness: the ledger's record; without a ledger, pip's
RECORD or the verified table; without any of these, the two candidates agreeing.

The questions that need libcst (removing our blocks, re-rendering them) are
asked here and only when the backup alone does not settle them, so ``check``
on a patched install never loads libcst (0.2 s): ``transform`` is imported on
first use, the one deferred import outside the command dispatch.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from types import ModuleType

from eagle3_patch.ledger import LedgerEntry, backup_path_for, sha256_hex
from eagle3_patch.locate import UNKNOWN_VERSION, Install
from eagle3_patch.reading import read_backup, read_witness
from eagle3_patch.spec import ClassSpec, FileSpec, PatchSpec
from eagle3_patch.verified import load_verified

BACKUP = "backup"
BLOCKS_REMOVED = "our blocks removed"


@dataclass(frozen=True)
class Original:
    """A file's original bytes as eagle3-patch can prove them."""

    content: bytes
    #: BACKUP or BLOCKS_REMOVED.
    source: str
    #: What vouches for them: "ledger", "pip RECORD", "verified table", or "backup".
    witness: str


def record_sha256(install: Install, file_name: str) -> str | None:
    """The sha256 pip recorded for ``srt/models/<file_name>``: a witness of the original."""
    if install.dist_info is None:
        return None
    try:
        relative = install.models_dir.relative_to(install.package_dir.parent).as_posix()
    except ValueError:
        return None
    record = read_witness(install.dist_info / "RECORD")
    if record is None:
        return None
    prefix = f"{relative}/{file_name},sha256="
    for line in record.decode("utf-8", errors="replace").splitlines():
        if line.startswith(prefix):
            digest = line[len(prefix) :].split(",", 1)[0]
            try:
                return base64.urlsafe_b64decode(digest + "=" * (-len(digest) % 4)).hex()
            except ValueError:
                return None
    return None


def find_original(
    install: Install, file_spec: FileSpec, content: bytes, entry: LedgerEntry | None, spec: PatchSpec
) -> Original | None:
    """The original bytes of ``content`` (a file carrying our blocks), or None when nothing vouches for them.

    The backup is tried first, so libcst is loaded only when it does not match.
    A backup whose sha256 the ledger recorded is the original until proven
    otherwise: an edited file, a hotfixed original, blocks of an older
    template, none of these disprove it. Only a file still exactly as we wrote
    it can: when removing our blocks from it gives other bytes, and pip's RECORD
    vouches for those (someone swapped the backup and edited the ledger to match).
    """
    file_name, hook = file_spec.name, spec.hook
    backup = read_backup(backup_path_for(install.models_dir / file_name))
    witnesses = _witnesses(install, file_name, entry)
    stripped: list[bytes | None] = []

    def blocks_removed() -> bytes | None:
        if not stripped:
            stripped.append(without_our_blocks(content, hook))
        return stripped[0]

    if backup is not None and sha256_hex(backup) in witnesses:
        witness, recorded = witnesses[sha256_hex(backup)], record_sha256(install, file_name)
        if (
            witness != "ledger"
            or recorded in (None, sha256_hex(backup))
            or entry is None
            or sha256_hex(content) != entry.patched_sha256
            or not _disproved(blocks_removed(), backup, recorded)
        ):
            return Original(backup, BACKUP, witness)
    original = blocks_removed()
    if original is None:
        return None
    if sha256_hex(original) in witnesses:
        return Original(original, BLOCKS_REMOVED, witnesses[sha256_hex(original)])
    if entry is None and original == backup:
        return Original(original, BLOCKS_REMOVED, BACKUP)
    return None


def reinstalled_hashes(install: Install, file_name: str) -> frozenset[str]:
    """sha256 of the pristine release files this file may be: pip's RECORD and the verified table.

    A file with one of these bytes came from an installer, not from an edit,
    and bytes with one of these hashes can always be had again from a wheel.
    """
    found = {f.pristine_sha256 for r in load_verified() for f in r.files if f.name == file_name}
    recorded = record_sha256(install, file_name)
    return frozenset(found | {recorded} if recorded else found)


def found_nowhere_else(install: Install, file_name: str, data: bytes, content: bytes | None) -> bool:
    """``data`` is neither the file's ``content`` nor a release file: deleting it would lose it (keep it instead)."""
    return data != content and sha256_hex(data) not in reinstalled_hashes(install, file_name)


def _disproved(stripped: bytes | None, backup: bytes, recorded: str | None) -> bool:
    """The file as we wrote it, without our blocks, is a release file other than the backup."""
    return stripped is not None and stripped != backup and sha256_hex(stripped) == recorded


def without_our_blocks(content: bytes, hook: str) -> bytes | None:
    """``content`` with our blocks removed; None when libcst cannot parse it."""
    transform = _transform()
    result = transform.strip_source(content, hook=hook)
    return result.code if isinstance(result, transform.TransformSuccess) else None


def our_patch_of(original: bytes, classes: tuple[ClassSpec, ...], spec: PatchSpec) -> bytes | None:
    """What this eagle3-patch writes for ``classes`` of ``original``; None when it cannot patch it."""
    transform = _transform()
    insertions = tuple(transform.Insertion(c.name, spec.template(c.template), c.anchors) for c in classes)
    result = transform.patch_source(original, insertions, hook=spec.hook)
    return result.code if isinstance(result, transform.TransformSuccess) else None


def _witnesses(install: Install, file_name: str, entry: LedgerEntry | None) -> dict[str, str]:
    """sha256 -> what vouches for it: the ledger alone when there is one."""
    if entry is not None:
        return {entry.pristine_sha256: "ledger"}
    # Only this release's row: another release's file (a backup the one-shot script left before a pip
    # downgrade, say) is a true release file, but not this file's original.
    rows = [r for r in load_verified() if r.version == install.version] or (
        load_verified() if install.version == UNKNOWN_VERSION else []
    )
    found = {f.pristine_sha256: "verified table" for r in rows for f in r.files if f.name == file_name}
    recorded = record_sha256(install, file_name)
    if recorded:
        found[recorded] = "pip RECORD"
    return found


def _transform() -> ModuleType:
    from eagle3_patch import transform  # libcst: see the module docstring

    return transform
