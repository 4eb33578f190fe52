"""What apply and revert share around the write: where killed runs leave temp files, and the re-read."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from eagle3_patch.classify import InstallReport, classify_install
from eagle3_patch.errors import DriftError, Eagle3PatchError, PartialWriteError, WriteError
from eagle3_patch.locate import Install
from eagle3_patch.plan import FilePlan, Plan, drift_next_step
from eagle3_patch.spec import PatchSpec
from eagle3_patch.states import DRIFTED
from eagle3_patch.write import execute, find_orphans


@dataclass(frozen=True)
class ChangeResult:
    """``apply`` and ``revert``: what was decided, what was (or would be) written, and the re-read."""

    command: str
    #: The install as decided before writing (under the lock when something was written).
    report: InstallReport
    #: The install as re-read after writing (``report`` itself when nothing was written).
    after: InstallReport
    #: The files changed, or that would change with --dry-run.
    files: tuple[FilePlan, ...]
    dry_run: bool = False
    #: Our leftovers deleted (backups no longer needed).
    removed: tuple[Path, ...] = ()
    #: Copies made so that no byte is lost: (file, copy), a backup whose bytes exist nowhere
    #: else (``*.eagle3-kept``) or the user's edited version (``revert --force``: ``*.eagle3-edited``).
    kept: tuple[tuple[Path, Path], ...] = ()


def written_result(command: str, report: InstallReport, after: InstallReport, plan: Plan) -> ChangeResult:
    """The result of a plan carried out: what was changed, removed and kept."""
    write = plan.write
    if write is None:
        return ChangeResult(command, report, after, plan.files)
    edited = tuple((c.path, c.keep_as) for c in write.changes if c.keep_as is not None)
    return ChangeResult(command, report, after, plan.files, removed=write.remove, kept=write.kept + edited)


def target_folders(install: Install, spec: PatchSpec) -> list[Path]:
    """Where the writer makes temp files, so where a killed run may leave them: the models folder
    (a symlinked target is replaced, never followed) and the dist-info folder (RECORD)."""
    return [install.models_dir, *([install.dist_info] if install.dist_info is not None else [])]


def refuse_linked_folder(install: Install) -> None:
    """Writing through a linked models folder would write into whatever it links to (a package cache)."""
    real = Path(os.path.realpath(install.models_dir))
    if real != Path(os.path.realpath(install.package_dir)) / "srt" / "models":
        raise WriteError(
            f"is a link to {real}, outside the install (a package cache?); eagle3-patch writes only inside "
            "the install, so nothing was changed. Reinstall sglang with copied files (uv: --link-mode=copy)",
            path=install.models_dir,
        )


def orphans_left(install: Install, spec: PatchSpec) -> bool:
    """A killed run left a temp file: take the lock and sweep it even when nothing else is to do."""
    return next(find_orphans(target_folders(install, spec)), None) is not None


def write_and_reread(plan: Plan, spec: PatchSpec, *, verb: str, expect: tuple[str, ...]) -> InstallReport:
    """Carry out the plan, then classify again: the install must read back as ``expect``."""
    if plan.write is None:
        return plan.report
    install = plan.report.install
    refuse_linked_folder(install)
    try:
        execute(plan.write)
    except PartialWriteError as exc:  # the writer says what is where; this adds the exact command to finish
        raise PartialWriteError(f"{exc.message}: `{install.command(verb)}`", path=exc.path) from exc
    after = classify_install(plan.report.install, spec)
    if after.state == DRIFTED:  # edited by another process the moment after this run wrote it
        raise DriftError(
            f"{after.reason}; another process changed it right after eagle3-patch wrote it, and its edit "
            f"was left in place. {drift_next_step(after)}"
        )
    if after.state not in expect:
        raise Eagle3PatchError(
            f"after writing, the install reads as {after.state} ({after.reason}); please report this",
            path=plan.report.install.models_dir,
        )
    return after


def offer_overlay(install: Install, exc: WriteError) -> WriteError:
    """apply could not write for want of permission or on a read-only file system: the case overlay is for."""
    if exc.cause not in ("read-only", "permission"):
        return exc
    overlay = install.command("overlay", "--out", "DIR")
    return WriteError(
        f"{exc.message}; or leave the install as it is: `{overlay}` (DIR: a writable folder outside it) "
        "writes a package that enables the same hooks at import time",
        path=exc.path,
        cause=exc.cause,
    )
