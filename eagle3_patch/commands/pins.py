"""``eagle3-patch pins`` (the pre-commit hook): read the files -> find sglang pins -> judge each.

Never imports the patching pipeline unless ``--fetch`` asks to classify an
unknown pin from its wheel.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from eagle3_patch.errors import EXIT_OK, EXIT_UNPATCHED, UsageError
from eagle3_patch.pins import FAILING, UNPINNED, Finding, UnreadableFile, discover, judge, scan


@dataclass(frozen=True)
class PinsResult:
    paths: tuple[str, ...]
    findings: tuple[Finding, ...]
    exit_code: int


def pins(*, files: tuple[str, ...], allow_unpinned: bool, fetch: bool) -> PinsResult:
    """Judge the sglang versions pinned in ``files`` (default: the ones found under this folder)."""
    paths = list(files) or discover(".")
    for path in paths:
        if not os.path.exists(path):  # one that is there but no regular file (a FIFO, a folder) is refused by find_pins
            raise UsageError(
                "no such file; pass requirements files, pyproject.toml, setup.py, setup.cfg, Dockerfiles or lock files",
                path=path,
            )
    try:
        findings = [judge(pin) for pin in scan(paths)]
    except UnreadableFile as exc:
        raise UsageError(exc.reason, path=exc.path) from exc
    if fetch:
        from eagle3_patch.pins.from_code import judge_from_code  # network and the pipeline: only on request

        findings = [judge_from_code(finding) for finding in findings]
    failing = [f for f in findings if f.verdict in FAILING and not (allow_unpinned and f.verdict == UNPINNED)]
    return PinsResult(tuple(paths), tuple(findings), EXIT_UNPATCHED if failing else EXIT_OK)
