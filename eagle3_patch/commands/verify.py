"""``eagle3-patch verify``: locate -> classify -> the static, behaviour and cuda levels."""

from __future__ import annotations

import sys
from pathlib import Path

from eagle3_patch.classify import InstallReport, classify_install
from eagle3_patch.errors import UsageError
from eagle3_patch.locate import locate
from eagle3_patch.overlay import OverlayRecord, consult_overlay, overlay_env
from eagle3_patch.spec import load_spec
from eagle3_patch.verify import CudaRequest, VerifyReport, run_levels


def verify(
    *,
    sglang_root: str | None,
    python: str | None,
    cuda_required: bool,
    target: str | None,
    draft: str | None,
    max_new_tokens: int,
    overlay: str | None = None,
) -> VerifyReport:
    """Prove capture works; the cuda level runs SGLang in ``python`` (default: this interpreter)."""
    if (target is None) != (draft is None):
        raise UsageError("give --target and --draft together")
    spec = load_spec()
    report = classify_install(locate(sglang_root=sglang_root, python=python), spec)
    record = _covering_overlay(report, overlay)
    request = CudaRequest(
        python=python or sys.executable,
        required=cuda_required,
        target=Path(target) if target else None,
        draft=Path(draft) if draft else None,
        max_new_tokens=max_new_tokens,
        env=tuple(overlay_env(record).items()) if record is not None else (),
    )
    return run_levels(report, spec, request, overlay=record)


def _covering_overlay(report: InstallReport, folder: str | None) -> OverlayRecord | None:
    """The overlay to verify through: one that covers this unpatched install (as ``check`` decides)."""
    found = consult_overlay(report, folder)
    if found is None:
        return None
    record, gap = found
    if gap is not None:
        if folder is not None:
            raise UsageError(f"does not enable capture on this install: {gap}", path=record.package)
        return None
    return record
