"""``eagle3-patch doctor``: locate -> read both checkpoints and the release -> classify -> rules -> recipe.

Reads only: no lock, nothing written. The install's capture state comes from
the same classifier as ``status`` (the ledger settles a patched install by
hashes, so this stays well under a second).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from eagle3_patch.classify import classify_install
from eagle3_patch.doctor.checkpoint import Checkpoint, read_checkpoint
from eagle3_patch.doctor.launch import Launch, launch_recipe
from eagle3_patch.doctor.release import Release, read_release
from eagle3_patch.doctor.rules import Finding, Pair, diagnose
from eagle3_patch.errors import EXIT_OK, EXIT_UNPATCHED
from eagle3_patch.locate import Install, locate
from eagle3_patch.spec import load_spec


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
    def exit_code(self) -> int:
        return EXIT_UNPATCHED if self.problems else EXIT_OK


def doctor(*, target: str, draft: str, sglang_root: str | None, python: str | None, tp: int | None) -> DoctorResult:
    """Every mistake in the pair that would crash SGLang or waste the drafter, and the launch command."""
    install = locate(sglang_root=sglang_root, python=python)
    target_checkpoint = read_checkpoint(Path(target), option="--target")
    draft_checkpoint = read_checkpoint(Path(draft), option="--draft")
    release = read_release(install)
    state = classify_install(install, load_spec()).state
    pair = Pair(target_checkpoint, draft_checkpoint, release, state, install.command("apply"))
    problems, warnings = diagnose(pair)
    launch = launch_recipe(release, target=target, draft=draft, tp=tp)
    dropped = tuple(f"sglang {release.version} has no {flag}; left out of the command" for flag in launch.dropped)
    return DoctorResult(
        install, target_checkpoint, draft_checkpoint, release, state, problems, warnings + dropped, launch
    )
