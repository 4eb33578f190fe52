"""``eagle3-patch revert``: locate -> classify -> plan -> write under the lock -> re-read.

Every file carrying our blocks gets the original bytes classify vouched for.
As in ``apply``, a first look without the lock settles "nothing to revert";
everything else is decided again under the lock.
"""

from __future__ import annotations

from eagle3_patch.classify import classify_install
from eagle3_patch.commands._install import (
    ChangeResult,
    orphans_left,
    target_folders,
    write_and_reread,
    written_result,
)
from eagle3_patch.locate import locate
from eagle3_patch.plan import plan_revert
from eagle3_patch.spec import load_spec
from eagle3_patch.states import NATIVE, UNPATCHED, UNSUPPORTED
from eagle3_patch.write import install_lock, sweep_orphans

_NOTHING_OF_OURS = (UNPATCHED, NATIVE, UNSUPPORTED)


def revert(*, sglang_root: str | None, python: str | None, force: bool, lock_timeout: float) -> ChangeResult:
    """Restore the original bytes of every file eagle3-patch changed (``force``: even if edited since)."""
    install = locate(sglang_root=sglang_root, python=python)
    spec = load_spec()
    first = classify_install(install, spec)
    if first.state in _NOTHING_OF_OURS:
        tidy = plan_revert(first, spec, force=force)  # at most our leftovers: a redundant backup, the ledger
        if tidy.write is None and not orphans_left(install, spec):
            return ChangeResult("revert", first, first, ())
    with install_lock(install.package_dir, timeout=lock_timeout):
        sweep_orphans(target_folders(install, spec))
        report = classify_install(install, spec, earlier=first)
        plan = plan_revert(report, spec, force=force)
        after = write_and_reread(plan, spec, verb="revert", expect=_NOTHING_OF_OURS)
    return written_result("revert", report, after, plan)
