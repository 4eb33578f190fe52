"""What every verify level reports: checks, a level's verdict, and the targets present."""

from __future__ import annotations

from dataclasses import dataclass

from eagle3_patch.classify import InstallReport
from eagle3_patch.spec import ClassSpec
from eagle3_patch.states import ABSENT

PASSED = "passed"
FAILED = "failed"
SKIPPED = "skipped"

#: What a wrapper's hook turns on so that its forward unpacks the aux states.
CAPTURE_ATTRIBUTE = "capture_aux_hidden_states"


@dataclass(frozen=True)
class Check:
    """One link or behaviour, as observed."""

    subject: str
    ok: bool
    detail: str
    #: False where upstream's code does not offer this: reported, never a failure.
    required: bool = True


@dataclass(frozen=True)
class Level:
    name: str
    status: str
    detail: str
    checks: tuple[Check, ...] = ()


def level_from_checks(name: str, checks: list[Check], *, passed: str) -> Level:
    """Failed when a required check failed; checks upstream does not offer are only reported."""
    broken = [c for c in checks if not c.ok and c.required]
    unsupported = [c for c in checks if not c.ok and not c.required]
    if broken:
        return Level(name, FAILED, "; ".join(f"{c.subject}: {c.detail}" for c in broken), tuple(checks))
    note = f" ({len(unsupported)} not offered by upstream's code, reported)" if unsupported else ""
    return Level(name, PASSED, passed + note, tuple(checks))


def present_targets(report: InstallReport) -> list[tuple[str, ClassSpec]]:
    """(file, class) of every target class this release has."""
    return [
        (f.spec.name, class_spec)
        for f in report.files
        for class_spec, class_report in zip(f.spec.classes, f.classes, strict=True)
        if class_report.state != ABSENT
    ]


def decoder_spec(report: InstallReport) -> tuple[str, ClassSpec]:
    return next((name, c) for name, c in present_targets(report) if c.role == "decoder")
