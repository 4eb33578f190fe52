"""``eagle3-patch verify``: locate -> classify -> the static, behaviour and cuda levels."""

from __future__ import annotations

import sys
from pathlib import Path

from eagle3_patch.classify import classify_install
from eagle3_patch.errors import UsageError
from eagle3_patch.locate import locate
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
) -> VerifyReport:
    """Prove capture works; the cuda level runs SGLang in ``python`` (default: this interpreter)."""
    if (target is None) != (draft is None):
        raise UsageError("give --target and --draft together")
    spec = load_spec()
    report = classify_install(locate(sglang_root=sglang_root, python=python), spec)
    request = CudaRequest(
        python=python or sys.executable,
        required=cuda_required,
        target=Path(target) if target else None,
        draft=Path(draft) if draft else None,
        max_new_tokens=max_new_tokens,
    )
    return run_levels(report, spec, request)
