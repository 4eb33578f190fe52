"""Stage 8: prove that aux hidden-state capture works, not just that our methods are there.

Three levels, run in order; a level runs only when the ones before it passed.

static     (static.py) follows, in the installed source, the chain from each
           wrapper's hook to the decoder's forward; a broken link is named
           (class, method, attribute).
behaviour  (behaviour.py) compiles the hooks found in the files (ours or
           upstream's) and runs them on stand-in objects shaped like the real
           classes. No sglang, no torch.
cuda       (cuda.py) with torch, a CUDA device and an importable sglang: a tiny
           random Qwen3.5 target and EAGLE-3 drafter served by ``sglang.Engine``
           with and without speculative decoding; capture must be proven and
           the tokens equal.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from eagle3_patch.classify import InstallReport
from eagle3_patch.errors import EXIT_CUDA_UNAVAILABLE, EXIT_OK, EXIT_UNPATCHED, UnsupportedError
from eagle3_patch.source import SourceIndex
from eagle3_patch.spec import PatchSpec
from eagle3_patch.states import UNSUPPORTED
from eagle3_patch.verify.behaviour import behaviour_level
from eagle3_patch.verify.cuda import CudaRequest, run_cuda_level
from eagle3_patch.verify.levels import FAILED, PASSED, SKIPPED, Check, Level
from eagle3_patch.verify.static import static_level

if TYPE_CHECKING:
    from eagle3_patch.overlay import OverlayRecord

__all__ = ["FAILED", "PASSED", "SKIPPED", "Check", "CudaRequest", "Level", "VerifyReport", "run_levels"]


@dataclass(frozen=True)
class VerifyReport:
    report: InstallReport
    levels: tuple[Level, ...]
    cuda_required: bool
    #: The overlay package whose hooks the levels ran on, if any.
    overlay: Path | None = None

    def level(self, name: str) -> Level:
        return next(level for level in self.levels if level.name == name)

    @property
    def exit_code(self) -> int:
        if any(level.status == FAILED for level in self.levels):
            return EXIT_UNPATCHED
        if self.cuda_required and self.level("cuda").status != PASSED:
            return EXIT_CUDA_UNAVAILABLE
        return EXIT_OK


def run_levels(
    report: InstallReport, spec: PatchSpec, cuda: CudaRequest, overlay: OverlayRecord | None = None
) -> VerifyReport:
    """Run the levels on a classified install; an unsupported one is refused (exit 3).

    With an ``overlay`` the static and behaviour levels see the installed classes as
    the overlay leaves them at run time: its hook functions, parsed from the package,
    are grafted onto the classes it names (the files are never changed).
    """
    if report.state == UNSUPPORTED:
        raise UnsupportedError(f"unsupported SGLang {report.install.version}: {report.reason}")
    index = SourceIndex.for_spec(report.install.models_dir, spec)
    if overlay is not None:
        _graft(index, overlay, spec)
    static = static_level(report, spec, index)
    behaviour = _after(static, lambda: behaviour_level(report, spec, index))
    cuda_level = _after(behaviour, lambda: run_cuda_level(report, cuda))
    package = overlay.package if overlay is not None else None
    return VerifyReport(report, (static, behaviour, cuda_level), cuda.required, package)


def _graft(index: SourceIndex, overlay: OverlayRecord, spec: PatchSpec) -> None:
    for module, class_name, template in overlay.hooks:
        function = overlay.function(template)
        node = index.classes(f"{module}.py").get(class_name)
        if function is None or node is None:
            continue  # nothing grafted: the static level then names the missing hook
        method = copy.deepcopy(function)
        method.name = spec.hook
        node.body.append(method)


def _after(previous: Level, run: Callable[[], Level]) -> Level:
    name = "behaviour" if previous.name == "static" else "cuda"
    if previous.status == FAILED:
        return Level(name, SKIPPED, f"the {previous.name} level failed")
    if previous.status == SKIPPED:
        return Level(name, SKIPPED, previous.detail)
    return run()
