"""``eagle3-patch check``: locate -> the ledger vouches, or classify -> the exit code of the state.

Docker builds and deployment hooks run it every time, so it asks the ledger
first (``ledger.vouches_for_patched``): when every file is exactly what this
eagle3-patch wrote under these targets, classify would parse nothing and could
only say "patched", so the verdict is the same without loading the classifier.
Otherwise, and always with ``--json`` (whose object lists every class), it
classifies.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from eagle3_patch import __version__
from eagle3_patch.errors import EXIT_DRIFT, EXIT_OK, EXIT_UNPATCHED, EXIT_UNSUPPORTED
from eagle3_patch.ledger import targets_sha256, vouches_for_patched
from eagle3_patch.locate import Install, locate
from eagle3_patch.states import DRIFTED, NATIVE, OVERLAID, PATCHED, UNPATCHED, UNSUPPORTED

if TYPE_CHECKING:
    from eagle3_patch.classify import InstallReport


@dataclass(frozen=True)
class ReportResult:
    """``check`` and ``status``: the install's verdict, and the exit code the command gives it."""

    command: str
    install: Install
    state: str
    exit_code: int
    #: The full classification; None when the ledger vouched for a patched install.
    report: InstallReport | None
    #: The overlay package consulted for an unpatched install, and why it falls short ("" when it covers it).
    overlay: Path | None = None
    overlay_gap: str = ""


STATE_EXIT = {
    PATCHED: EXIT_OK,
    NATIVE: EXIT_OK,
    UNPATCHED: EXIT_UNPATCHED,
    UNSUPPORTED: EXIT_UNSUPPORTED,
    DRIFTED: EXIT_DRIFT,
    OVERLAID: EXIT_OK,
}


def check(*, sglang_root: str | None, python: str | None, details: bool, overlay: str | None = None) -> ReportResult:
    """Exit 0 when EAGLE-3 capture is in place, else the code of what is wrong (``details``: classify always).

    An unpatched install counts as in place when an overlay covers it (``--overlay``, or the
    environment variables SGLang reads).
    """
    install = locate(sglang_root=sglang_root, python=python)
    if not details and vouches_for_patched(
        install.models_dir, targets_digest=targets_sha256(), tool_version=__version__
    ):
        return ReportResult("check", install, PATCHED, EXIT_OK, None)
    from eagle3_patch.classify import classify_install  # the full rules: dispatched only when the ledger cannot vouch
    from eagle3_patch.spec import load_spec

    report = classify_install(install, load_spec())
    return with_overlay(ReportResult("check", install, report.state, STATE_EXIT[report.state], report), overlay)


def with_overlay(result: ReportResult, folder: str | None) -> ReportResult:
    """An unpatched install with an overlay that would enable capture reads ``overlaid`` (exit 0)."""
    if result.report is None:
        return result
    from eagle3_patch.overlay import consult_overlay

    found = consult_overlay(result.report, folder)
    if found is None:
        return result
    record, gap = found
    if gap is not None:
        return replace(result, overlay=record.package, overlay_gap=gap)
    return replace(result, state=OVERLAID, exit_code=EXIT_OK, overlay=record.package)
