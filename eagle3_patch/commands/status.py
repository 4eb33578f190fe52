"""``eagle3-patch status``: locate -> classify; per file and class, what eagle3-patch sees."""

from __future__ import annotations

from eagle3_patch.classify import classify_install
from eagle3_patch.commands.check import STATE_EXIT, ReportResult, with_overlay
from eagle3_patch.errors import EXIT_OK
from eagle3_patch.locate import locate
from eagle3_patch.spec import load_spec
from eagle3_patch.states import NATIVE, PATCHED, UNPATCHED


def status(*, sglang_root: str | None, python: str | None, overlay: str | None = None) -> ReportResult:
    """An unpatched install is not an error here; unsupported and drifted ones are."""
    install = locate(sglang_root=sglang_root, python=python)
    report = classify_install(install, load_spec())
    code = EXIT_OK if report.state in (PATCHED, NATIVE, UNPATCHED) else STATE_EXIT[report.state]
    return with_overlay(ReportResult("status", install, report.state, code, report), overlay)
