"""``pins --fetch``: classify a pin missing from the verified table from its wheel (uses the network).

Kept apart so that the hook's usual path never imports the patching pipeline.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

from eagle3_patch.classify import classify_install
from eagle3_patch.errors import Eagle3PatchError, FetchError
from eagle3_patch.fetch import extract_release, fetch_wheel
from eagle3_patch.locate import locate_root
from eagle3_patch.pins.verdicts import ADVICE, NATIVE, PATCH, UNKNOWN, UNSUPPORTED, Finding
from eagle3_patch.plan import plan_apply
from eagle3_patch.spec import load_spec
from eagle3_patch.states import NATIVE as NATIVE_STATE
from eagle3_patch.states import UNPATCHED


def judge_from_code(finding: Finding) -> Finding:
    """For an unknown pin: download the wheel, classify it and dry-run the patch (network)."""
    version = finding.pin.version
    if finding.verdict != UNKNOWN or version is None:
        return finding
    try:
        with tempfile.TemporaryDirectory(prefix="eagle3-patch-pins-") as site:
            extract_release(fetch_wheel(version), Path(site))
            report = classify_install(locate_root(Path(site), found_by="pins --fetch"), load_spec())
            if report.state == UNPATCHED:
                plan_apply(report, load_spec())  # transform and validate in memory; writes nothing
    except FetchError as exc:
        return replace(finding, advice=f"{exc}; pin a release from the verified table")
    except Eagle3PatchError as exc:
        return Finding(finding.pin, UNSUPPORTED, f"its code cannot be patched: {exc}", from_code=True)
    if report.state == UNPATCHED:
        advice = "classified from its code and dry-run patched (not in the verified table); run eagle3-patch apply"
        return Finding(finding.pin, PATCH, advice, from_code=True)
    if report.state == NATIVE_STATE:
        return Finding(finding.pin, NATIVE, "classified from its code: " + ADVICE[NATIVE], from_code=True)
    return Finding(finding.pin, UNSUPPORTED, f"classified from its code: {report.reason}", from_code=True)
