"""packaging's readers, for the requirement shapes and versions the fast path in ``requirement`` leaves over.

Imported by ``requirement`` only when needed: packaging's PEP 508 parser alone
costs 77 ms, a third of the pre-commit hook's start-up.
"""

from __future__ import annotations

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version


def exact_version(text: str, package: str) -> tuple[str | None] | None:
    """None unless ``text`` is a valid requirement on ``package``; else (the single release it allows, or None,)."""
    try:
        requirement = Requirement(text)
    except InvalidRequirement:
        return None
    if canonicalize_name(requirement.name) != package:
        return None
    for spec in requirement.specifier:
        if spec.operator in ("==", "===") and "*" not in spec.version:
            return (spec.version,)
    if requirement.url and requirement.url.endswith(".whl"):
        return (wheel_version(requirement.url.rsplit("/", 1)[-1], package),)
    return (None,)


def parsed_version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def wheel_version(file_name: str, package: str) -> str | None:
    try:
        name, version, _, _ = parse_wheel_filename(file_name)
    except InvalidWheelFilename:
        return None
    return str(version) if name == package else None
