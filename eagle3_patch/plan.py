"""Decide what apply and revert would write, from a classified install.

Turns an InstallReport into a WritePlan: runs the transformer on the files that
need it, validates each result, and works out backups and ledger entries. Takes
the report as given (states, bytes, originals and their witnesses are decided
by classify); reads nothing but backups (to avoid rewriting an identical one)
and pip's RECORD (which lists our files, so ``pip uninstall`` removes them),
writes nothing.
"""

from __future__ import annotations

import difflib
import os
import shlex
from dataclasses import dataclass
from pathlib import Path

from eagle3_patch import __version__
from eagle3_patch.classify import FileReport, InstallReport
from eagle3_patch.errors import DriftError, UnsupportedError
from eagle3_patch.ledger import (
    EDITED_SUFFIX,
    KEPT_SUFFIX,
    Ledger,
    LedgerEntry,
    render_ledger,
    sha256_hex,
    targets_sha256,
)
from eagle3_patch.marker import MARKER
from eagle3_patch.provenance import found_nowhere_else
from eagle3_patch.reading import read_backup, read_witness
from eagle3_patch.record import listing_ours, not_listing_ours
from eagle3_patch.source import class_spans, decode_source, detect_encoding
from eagle3_patch.spec import PatchSpec
from eagle3_patch.states import DRIFTED, NATIVE, PATCHED, PATCHED_OLD, UNPATCHED, UNSUPPORTED
from eagle3_patch.transform import InsertedMethod, Insertion, TransformFailure, patch_classes, patch_source
from eagle3_patch.validate import validate_patch
from eagle3_patch.write import FileChange, WritePlan

_NEEDS_PATCH = (UNPATCHED, PATCHED_OLD)
_CARRIES_OURS = (PATCHED, PATCHED_OLD, DRIFTED)


@dataclass(frozen=True)
class FilePlan:
    """One file's part of a plan: its bytes now and after, and what was inserted."""

    report: FileReport
    new_content: bytes
    inserted: tuple[InsertedMethod, ...] = ()

    @property
    def diff(self) -> str:
        return unified_diff(self)


@dataclass(frozen=True)
class Plan:
    report: InstallReport
    files: tuple[FilePlan, ...]
    #: None when there is nothing to write.
    write: WritePlan | None


def plan_apply(report: InstallReport, spec: PatchSpec) -> Plan:
    """What apply writes: every unpatched or older block patched, validated, backed up."""
    refuse_unsupported(report)
    if report.state == DRIFTED:
        raise DriftError(f"{report.reason}; nothing was changed. {drift_next_step(report)}")
    files = []
    changes = []
    kept: list[tuple[Path, Path]] = []
    entries = {e.name: e for e in report.ledger.entries} if report.ledger else {}
    for file in report.files:
        if file.content is None:
            entries.pop(file.spec.name, None)
            continue
        if not any(c.state in _CARRIES_OURS for c in file.classes):
            entries.pop(file.spec.name, None)  # a stale record of an older install
        if file.state not in _NEEDS_PATCH:
            continue
        targets = tuple(c for c in file.spec.classes if _class_state(file, c.name) in _NEEDS_PATCH)
        insertions = tuple(Insertion(c.name, spec.template(c.template), c.anchors) for c in targets)
        if file.tree is None:
            result = patch_source(file.content, insertions, hook=spec.hook)
        else:
            spans = class_spans(file.tree)
            encoding = detect_encoding(file.content)
            result = patch_classes(file.content, insertions, hook=spec.hook, spans=spans, encoding=encoding)
        if isinstance(result, TransformFailure):
            raise UnsupportedError(f"{result.reason}; nothing was changed", path=file.path)
        validate_patch(
            file.content,
            result.code,
            path=file.path,
            classes=tuple(c.name for c in targets),
            hook=spec.hook,
            original_tree=file.tree,
        )
        pristine = _original_for_apply(report, file)
        existing = _backup_bytes(file)
        backup = None if existing == pristine else pristine
        if existing is not None and backup is not None and _unique(report, file, existing):
            kept.append((file.backup_path, _kept_path(file)))  # a file under our backup's name: never lost
        link = _link_of(file.path) or _recorded_link(report, file.spec.name)
        entries[file.spec.name] = LedgerEntry(
            name=file.spec.name,
            pristine_sha256=sha256_hex(pristine),
            patched_sha256=sha256_hex(result.code),
            classes=tuple(
                (
                    c.name,
                    spec.template(c.template).ident
                    if c in targets or _class_state(file, c.name) == PATCHED
                    else _class_state(file, c.name),
                )
                for c in file.spec.classes
            ),  # fmt: skip
            link=link,
        )
        files.append(FilePlan(file, result.code, result.inserted))
        changes.append(
            FileChange(
                path=file.path,
                expected_sha256=sha256_hex(file.content),
                new_content=result.code,
                backup=backup,
                backup_path=file.backup_path,
                keep_as=_edited_path(file) if _replaces_foreign_blocks(report, file) else None,
            )
        )
    # Backups beside files that carry nothing of ours (a reinstall, an upgrade) are no longer needed.
    stale_files = [f for f in report.files if f.stale_backup and f.state not in _NEEDS_PATCH]
    stale = tuple(f.backup_path for f in stale_files)
    kept += [(f.backup_path, _kept_path(f)) for f in stale_files if f.backup_unique]
    if not changes:
        # Nothing to patch: only our leftovers go, and RECORD lists our files again if a killed revert
        # had already taken them out (else pip uninstall leaves them); the ledger stays as it is.
        # A ledger that no longer records a file carrying our blocks (a revert killed before it removed
        # the ledger) goes too, with our RECORD lines, as revert would have finished.
        stale_ledger = report.ledger is not None and not entries
        relist = listing_ours(report.install, spec) if report.state == PATCHED else None
        unlist = not_listing_ours(report.install, spec) if stale_ledger else None
        if stale or relist or stale_ledger:
            ledger_now = None if stale_ledger else read_witness(report.ledger_path)
            records = tuple(r for r in (relist or unlist,) if r)
            tidy = WritePlan((), report.ledger_path, ledger_now, remove=stale, kept=tuple(kept), records=records)
            return Plan(report, (), tidy)
        return Plan(report, (), None)
    untouched = tuple(
        (f.spec.name, f.sha256) for f in report.files if f.spec.name not in entries
    )  # absent files record None: a later appearance (an upgrade) is noticed
    ledger = Ledger(__version__, report.install.version, tuple(entries.values()), targets_sha256(), untouched)
    listed = listing_ours(report.install, spec)
    write = WritePlan(
        tuple(changes),
        report.ledger_path,
        render_ledger(ledger),
        remove=stale,
        records=(listed,) if listed else (),
        kept=tuple(kept),
        pycache_prefix=report.install.pycache_prefix,
    )
    return Plan(report, tuple(files), write)


def plan_revert(report: InstallReport, spec: PatchSpec, *, force: bool = False) -> Plan:
    """What revert writes: each file carrying our blocks gets its verified original back."""
    unlisted = not_listing_ours(report.install, spec)
    records = (unlisted,) if unlisted else ()
    carrying = [f for f in report.files if f.content is not None and _carries_blocks(f)]
    # Our leftovers: backups identical to their (original) file after an interrupted revert,
    # backups beside reinstalled or upgraded files, and the ledger.
    redundant = tuple(
        f.backup_path
        for f in report.files
        if f.content is not None and not _carries_blocks(f) and (f.stale_backup or _backup_bytes(f) == f.content)
    )
    kept = [(f.backup_path, _kept_path(f)) for f in report.files if f.stale_backup and f.backup_unique]
    if not carrying:  # nothing of ours, whatever the layout: nothing to revert (exit 0)
        if redundant or report.ledger is not None or records:
            write = WritePlan((), report.ledger_path, None, remove=redundant, records=records, kept=tuple(kept))
            return Plan(report, (), write)
        return Plan(report, (), None)
    drifted = [f for f in carrying if f.state == DRIFTED]
    if drifted and not force:
        force_revert = report.install.command("revert", "--force")
        raise DriftError(
            f"changed since eagle3-patch patched it; nothing was changed. Run `{force_revert}` to restore "
            f"the original and keep your version as {drifted[0].path.name}{EDITED_SUFFIX}",
            path=drifted[0].path,
        )
    files = []
    changes = []
    for file in carrying:
        assert file.content is not None
        if file.original is None:
            raise DriftError(
                "no intact copy of the original (backup missing or damaged, and removing our "
                f"blocks does not give the recorded bytes); nothing was changed. Reinstall: {reinstall_hint(report)}",
                path=file.path,
            )
        files.append(FilePlan(file, file.original.content))
        existing = _backup_bytes(file)
        if existing is not None and existing != file.original.content and _unique(report, file, existing):
            kept.append((file.backup_path, _kept_path(file)))  # not the original: kept, not deleted
        changes.append(
            FileChange(
                path=file.path,
                expected_sha256=sha256_hex(file.content),
                new_content=file.original.content,
                backup_path=file.backup_path,
                remove_backup=not file.backup_path.is_symlink(),  # a link there is not ours to delete
                restore_link=_recorded_link(report, file.spec.name),
                keep_as=_edited_path(file) if file.state == DRIFTED or _replaces_foreign_blocks(report, file) else None,
            )
        )
    # Every file carrying our blocks is restored, so no record is left to keep.
    write = WritePlan(
        tuple(changes),
        report.ledger_path,
        None,
        remove=redundant,
        records=records,
        kept=tuple(kept),
        pycache_prefix=report.install.pycache_prefix,
    )
    return Plan(report, tuple(files), write)


def unified_diff(file_plan: FilePlan) -> str:
    """The change as a unified diff (as libcst's codemod CLI prints it); empty when none."""
    old = file_plan.report.content or b""
    name = _diff_name(file_plan.report.path)
    return "".join(
        difflib.unified_diff(
            decode_source(old).splitlines(keepends=True),
            decode_source(file_plan.new_content).splitlines(keepends=True),
            fromfile=f"a{name}" if name.startswith("/") else f"a/{name}",
            tofile=f"b{name}" if name.startswith("/") else f"b/{name}",
        )
    )


def _diff_name(path: Path) -> str:
    """The file as the diff names it: relative to the current folder when inside it (``patch -p1``,
    ``git apply``, run from there, then find it), else absolute."""
    here = Path.cwd()
    return str(path.relative_to(here)) if path.is_relative_to(here) else str(path)


def drift_next_step(report: InstallReport) -> str:
    """What to run on a drifted install, as apply, check and status say it."""
    return (
        f"Run `{report.install.command('revert', '--force')}` to restore the original (your version is kept "
        f"as *{EDITED_SUFFIX}), or reinstall: {reinstall_hint(report)}"
    )


def reinstall_hint(report: InstallReport) -> str:
    """The command that gives this very install its release's files back (a checkout: git's copy)."""
    install = report.install
    if install.layout in ("checkout", "editable"):
        clone = install.package_dir.parent.parent
        files = [
            str(f.path.relative_to(clone))
            for f in report.files
            if f.content is not None and f.path.is_relative_to(clone)
        ]
        return shlex.join(("git", "-C", str(clone), "checkout", "--", *files))
    pin = f"sglang=={install.version}" if install.version != "unknown" else "sglang==<your version>"
    return install.pip_install("--force-reinstall", "--no-deps", pin)


def refuse_unsupported(report: InstallReport) -> None:
    """Raise the refusal for an install eagle3-patch cannot patch (exit 3); nothing is changed."""
    if report.state == UNSUPPORTED:
        raise UnsupportedError(
            f"unsupported SGLang {report.install.version}: {report.reason}. Nothing was changed; "
            "sglang 0.5.11-0.5.21 can be patched, 0.5.22 and newer have the hook natively"
        )


def _class_state(file: FileReport, name: str) -> str:
    for report in file.classes:
        if report.name == name:
            return report.state
    return NATIVE


def _original_for_apply(report: InstallReport, file: FileReport) -> bytes:
    """The original bytes to back up: the file itself unless it already carries our blocks."""
    assert file.content is not None
    if not file.carries_ours:
        return file.content
    if file.original is None:
        raise DriftError(
            f"carries older {MARKER} blocks but no intact original; reinstall: {reinstall_hint(report)}",
            path=file.path,
        )
    return file.original.content


def _link_of(path: Path) -> str | None:
    """A symlinked target's text: apply replaces the link by a private copy, revert puts it back."""
    try:
        return os.readlink(path)
    except OSError:
        return None


def _recorded_link(report: InstallReport, name: str) -> str | None:
    entry = report.ledger.get(name) if report.ledger is not None else None
    return entry.link if entry is not None else None


def _unused_path(path: Path) -> Path:
    """``path``, or ``path.1``, ``path.2``...: an earlier kept copy is never overwritten."""
    candidate, number = path, 0
    while candidate.exists() or candidate.is_symlink():
        number += 1
        candidate = path.with_name(f"{path.name}.{number}")
    return candidate


def _replaces_foreign_blocks(report: InstallReport, file: FileReport) -> bool:
    """apply or revert replaces blocks it did not write as the ledger records (the one-shot script's, an
    edited older block): the file's bytes as they are exist nowhere else, so they are kept first."""
    if not file.carries_ours or file.content is None:
        return False
    entry = report.ledger.get(file.spec.name) if report.ledger is not None else None
    return entry is None or entry.patched_sha256 != sha256_hex(file.content)


def _carries_blocks(file: FileReport) -> bool:
    """Ours to revert: drifted, patched, or carrying blocks of another writer (the one-shot script) beside
    unpatched classes, which makes the file read as unpatched although it is not its original."""
    return file.state in _CARRIES_OURS or (file.carries_ours and file.state in (UNPATCHED, NATIVE))


def _edited_path(file: FileReport) -> Path:
    """Where the file's own bytes go before they are replaced while they exist nowhere else: your version."""
    return _unused_path(file.backup_path.with_name(file.path.name + EDITED_SUFFIX))


def _kept_path(file: FileReport) -> Path:
    """Where a backup whose bytes exist nowhere else goes instead of being deleted (README, "Reliability")."""
    return _unused_path(file.backup_path.with_name(file.path.name + KEPT_SUFFIX))


def _unique(report: InstallReport, file: FileReport, data: bytes) -> bool:
    """Bytes found nowhere the next run trusts: not the file, not a release file (pip's RECORD, verified table)."""
    return found_nowhere_else(report.install, file.spec.name, data, file.content)


def _backup_bytes(file: FileReport) -> bytes | None:
    return read_backup(file.backup_path)
