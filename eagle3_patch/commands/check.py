"""``eagle3-patch check``: locate -> the ledger vouches, or classify -> the exit code of the state.

Docker builds and deployment hooks run it every time, so it asks the ledger
first (``ledger.vouches_for_patched``): when every file is exactly what this
eagle3-patch wrote under these targets, classify would parse nothing and could
only say "patched", so the verdict is the same without loading the classifier.
Otherwise, and always with ``--json`` (whose object lists every class), it
classifies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from eagle3_patch import __version__
from eagle3_patch.errors import EXIT_DRIFT, EXIT_OK, EXIT_UNPATCHED, EXIT_UNSUPPORTED
from eagle3_patch.ledger import targets_sha256, vouches_for_patched
from eagle3_patch.locate import Install, locate
from eagle3_patch.states import DRIFTED, NATIVE, PATCHED, UNPATCHED, UNSUPPORTED

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


STATE_EXIT = {
    PATCHED: EXIT_OK,
    NATIVE: EXIT_OK,
    UNPATCHED: EXIT_UNPATCHED,
    UNSUPPORTED: EXIT_UNSUPPORTED,
    DRIFTED: EXIT_DRIFT,
}


def check(*, sglang_root: str | None, python: str | None, details: bool) -> ReportResult:
    """Exit 0 when EAGLE-3 capture is in place, else the code of what is wrong (``details``: classify always)."""
    install = locate(sglang_root=sglang_root, python=python)
    if not details and vouches_for_patched(
        install.models_dir, targets_digest=targets_sha256(), tool_version=__version__
    ):
        return ReportResult("check", install, PATCHED, EXIT_OK, None)
    from eagle3_patch.classify import classify_install  # the full rules: dispatched only when the ledger cannot vouch
    from eagle3_patch.spec import load_spec

    report = classify_install(install, load_spec())
    return ReportResult("check", install, report.state, STATE_EXIT[report.state], report)
