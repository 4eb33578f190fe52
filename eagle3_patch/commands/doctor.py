"""``eagle3-patch doctor``: locate -> read both checkpoints and the release -> classify -> rules -> recipe.

Reads only: no lock, nothing written. The install's capture state comes from
the same classifier as ``status`` (the ledger settles a patched install by
hashes), and for a patched or native install ``verify``'s static chain is
followed too (hook, flag, forward), which parses the three Qwen files with
``ast``: about 0.3 s in all on a patched 0.5.21.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from eagle3_patch.classify import classify_install
from eagle3_patch.doctor.checkpoint import Checkpoint, model_folder, read_checkpoint
from eagle3_patch.doctor.launch import Launch, launch_recipe
from eagle3_patch.doctor.release import Release, read_release
from eagle3_patch.doctor.rules import Finding, Pair, diagnose, quantized
from eagle3_patch.errors import EXIT_OK, EXIT_UNPATCHED
from eagle3_patch.locate import Install, locate
from eagle3_patch.source import SourceIndex
from eagle3_patch.spec import load_spec
from eagle3_patch.states import NATIVE, PATCHED
from eagle3_patch.verify.levels import FAILED
from eagle3_patch.verify.static import static_level


@dataclass(frozen=True)
class DoctorResult:
    install: Install
    target: Checkpoint
    draft: Checkpoint
    release: Release
    capture_state: str
    problems: tuple[Finding, ...]
    warnings: tuple[str, ...]
    launch: Launch

    @property
    def notes(self) -> tuple[str, ...]:
        """Why the launch names other paths than those given (a cache root, a config.json)."""
        return tuple(note for note in (self.target.note, self.draft.note) if note is not None)

    @property
    def exit_code(self) -> int:
        return EXIT_UNPATCHED if self.problems else EXIT_OK


def doctor(*, target: str, draft: str, sglang_root: str | None, python: str | None, tp: int | None) -> DoctorResult:
    """Every mistake in the pair that would crash SGLang or waste the drafter, and the launch command."""
    install = locate(sglang_root=sglang_root, python=python)
    target_checkpoint = read_checkpoint(Path(target), option="--target")
    draft_checkpoint = read_checkpoint(Path(draft), option="--draft")
    release = read_release(install)
    spec = load_spec()
    report = classify_install(install, spec)
    broken = None
    if report.state in (PATCHED, NATIVE):  # verify's static chain: hook -> flag -> forward, link by link
        static = static_level(report, spec, SourceIndex.for_spec(install.models_dir, spec))
        broken = static.detail if static.status == FAILED else None
    pair = Pair(target_checkpoint, draft_checkpoint, release, report.state, install.command, broken, tp)
    problems, warnings = diagnose(pair)
    launch = launch_recipe(
        release,
        target=str(target_checkpoint.folder),
        draft=str(draft_checkpoint.folder),
        tp=tp,
        unquantized_draft=bool(quantized(target_checkpoint.config)) and not quantized(draft_checkpoint.config),
    )
    return DoctorResult(
        install,
        target_checkpoint,
        draft_checkpoint,
        release,
        report.state,
        problems,
        warnings + launch.warnings,
        launch,
    )


def launch_only(*, target: str, draft: str, sglang_root: str | None, python: str | None, tp: int | None) -> Launch:
    """Only the launch command the installed release accepts, for paths that need not exist yet.

    A Dockerfile writes its CMD with this at build time, when the checkpoints are
    not in the image: the flags and variables follow the release installed there.
    """
    install = locate(sglang_root=sglang_root, python=python)
    return launch_recipe(read_release(install), target=model_folder(target), draft=model_folder(draft), tp=tp)
