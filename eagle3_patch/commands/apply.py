"""``eagle3-patch apply``: locate -> classify -> plan -> write under the lock -> re-read.

A first look without the lock settles the common cases: nothing to write (and
no temp file left by a killed run) means no lock and no file touched, and an
unsupported layout is refused. Anything else, a refusal for drift included, is
decided again under the lock (reusing the parse of files whose bytes did not
change): files read without the lock may catch another run half-way, so that
look decides nothing it could get wrong, and runs that lose the race never
parse with libcst.
"""

from __future__ import annotations

from eagle3_patch.classify import classify_install
from eagle3_patch.commands._install import (
    ChangeResult,
    offer_overlay,
    orphans_left,
    target_folders,
    write_and_reread,
    written_result,
)
from eagle3_patch.errors import WriteError
from eagle3_patch.locate import locate
from eagle3_patch.plan import plan_apply, refuse_unsupported
from eagle3_patch.record import listing_ours
from eagle3_patch.spec import load_spec
from eagle3_patch.states import NATIVE, PATCHED
from eagle3_patch.write import install_lock, sweep_orphans


def apply(*, sglang_root: str | None, python: str | None, dry_run: bool, lock_timeout: float) -> ChangeResult:
    """Insert the hook where it is missing: backed up, validated, atomic, recorded in the ledger."""
    install = locate(sglang_root=sglang_root, python=python)
    spec = load_spec()
    first = classify_install(install, spec)
    if dry_run:
        plan = plan_apply(first, spec)  # transformed and validated in memory; nothing is written
        return ChangeResult("apply", first, first, plan.files, dry_run=True)
    refuse_unsupported(first)
    leftovers = (
        orphans_left(install, spec)
        or any(f.stale_backup for f in first.files)
        or (first.state == PATCHED and listing_ours(install, spec) is not None)  # a killed revert unlisted ours
        or (first.state == NATIVE and first.ledger is not None)  # a killed revert left its ledger
    )
    if first.state in (PATCHED, NATIVE) and not leftovers:
        return ChangeResult("apply", first, first, ())
    try:
        with install_lock(install.package_dir, timeout=lock_timeout):
            sweep_orphans(target_folders(install, spec))
            report = classify_install(install, spec, earlier=first)
            plan = plan_apply(report, spec)
            after = write_and_reread(plan, spec, verb="apply", expect=(PATCHED, NATIVE))
    except WriteError as exc:
        raise offer_overlay(install, exc) from exc
    return written_result("apply", report, after, plan)
