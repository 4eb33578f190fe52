"""What makes a block ours: the marker line, the block's extent, and where a new block goes.

One rule, used by classify, transform, validate and revert alike:

- **Marker**: a comment holding the literal ``[EAGLE3-PATCH]``. Ours reads
  ``# [EAGLE3-PATCH] decoder-v2: added by eagle3-patch ...``; older spellings
  (``# [EAGLE3-PATCH decoder-v1]`` up to template version 1, and the bare
  ``# [EAGLE3-PATCH]`` that the model card's one-shot script writes) are still
  recognised, so such blocks read as older and ``apply`` refreshes them.
- **Block**: a method named after the hook whose leading lines (the blank and
  comment lines right above it, at its indentation) or body hold a marker.
  The block is the method together with those leading lines.
- **Anchor**: a new block goes after the last definition of the first anchor
  method the class has, or at the class end for the anchor ``end``.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from dataclasses import dataclass

from eagle3_patch.spec import Anchor

#: What every marker line holds, and what grep and the one-shot script look for.
MARKER = "[EAGLE3-PATCH]"
#: The prefix shared by every spelling we ever wrote (``[EAGLE3-PATCH decoder-v1]`` too).
MARKER_TAG = "[EAGLE3-PATCH"
_MARKER_RE = re.compile(
    r"\[EAGLE3-PATCH(?:\s+(?P<old_template>[A-Za-z0-9_]+)-v(?P<old_version>\d+))?\]"
    r"(?:[ \t]+(?P<template>[A-Za-z0-9_]+)-v(?P<version>\d+)\b)?"
)


@dataclass(frozen=True)
class Marker:
    """What a marker comment says; version 0 and no template when it names none."""

    template: str | None
    version: int

    @property
    def ident(self) -> str:
        return f"{self.template}-v{self.version}"


def marker_line(ident: str) -> str:
    """The comment line placed above a block rendered from template ``ident`` (e.g. decoder-v2)."""
    return (
        f"# {MARKER} {ident}: added by eagle3-patch for EAGLE-3 aux "
        "hidden-state capture; undo with: eagle3-patch revert"
    )


def has_marker(text: str) -> bool:
    """``text`` (a comment) carries our tag, in any spelling."""
    return MARKER_TAG in text


def parse_marker(text: str) -> Marker | None:
    """The first marker in ``text``; None when there is none."""
    match = _MARKER_RE.search(text)
    if match is None:
        return Marker(template=None, version=0) if has_marker(text) else None
    template = match.group("template") or match.group("old_template")
    version = match.group("version") or match.group("old_version")
    return Marker(template=template, version=int(version) if version else 0)


def block_lines(method: ast.FunctionDef, lines: list[str]) -> range:
    """The 0-based line numbers of ``method`` and its leading blank or comment lines at its indent."""
    start = min([method.lineno, *(d.lineno for d in method.decorator_list)]) - 1
    indent = lines[start][: len(lines[start]) - len(lines[start].lstrip())]
    above = start - 1
    while above >= 0 and (not lines[above].strip() or lines[above].startswith(indent + "#")):
        above -= 1
    return range(above + 1, method.end_lineno or method.lineno)


def marker_of(method: ast.FunctionDef, lines: list[str]) -> Marker | None:
    """The marker of the block ``method`` starts, or None when the method is not ours."""
    for number in block_lines(method, lines):
        if has_marker(lines[number]):
            return parse_marker(lines[number])
    return None


def choose_anchor(anchors: Iterable[Anchor], body: list[str]) -> tuple[Anchor, int] | None:
    """Where a new block goes in a class body, or None when no anchor matches.

    ``body`` names each statement of the class body in order (the method's name
    for a ``def``, "" for anything else). Returns the anchor and the body index
    to insert at: after the last definition of the first anchor method the
    class has, or the end for ``end``.
    """
    for anchor in anchors:
        if anchor.method is None:
            return anchor, len(body)
        found = [index for index, name in enumerate(body) if name == anchor.method]
        if found:
            return anchor, found[-1] + 1
    return None
