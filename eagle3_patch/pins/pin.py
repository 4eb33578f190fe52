"""``Pin``: one sglang requirement found in a file, as every reader reports it."""

from __future__ import annotations

from dataclasses import dataclass

from eagle3_patch.pins.requirement import git_reference, parse_requirement


@dataclass(frozen=True)
class Pin:
    """One sglang requirement found in a file."""

    #: As given or found (a string: the hook never needs pathlib, a tenth of its start-up).
    path: str
    #: The line where the requirement (or the tag, for a checkout) is written.
    line: int
    #: The requirement as written (variables substituted), e.g. ``sglang[all]==0.5.21``.
    text: str
    #: The exact version pinned, or None (a range, no version, a branch, a moving image tag).
    version: str | None
    #: requirements, pyproject, setup.py, setup.cfg, dockerfile, uv.lock or poetry.lock.
    source: str
    note: str = ""
    #: For a base image's sglang: the line of a later install in the same stage that replaces it (0: none).
    replaced_by: int = 0


def requirement_pin(path: str, line: int, text: str, source: str) -> Pin | None:
    """The pin one requirement string makes: a git URL of sglang's repository, or a PEP 508 requirement on it."""
    git = git_reference(text)
    if git is not None:
        return Pin(path, line, text, git.version, source, git.note)
    requirement = parse_requirement(text)
    return None if requirement is None else Pin(path, line, text, requirement.version, source)
