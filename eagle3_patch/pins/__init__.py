"""Find the SGLang versions a deployment repository pins, and judge them (the pre-commit hook).

pin.py        ``Pin``: one sglang requirement found in a file
readers.py    one reader per kind of file, registered in a table (requirements, pyproject, lock files)
dockerfile.py   Dockerfiles: base images, pip installs and checkouts, per build stage
setup_files.py  setup.py (with ast) and setup.cfg
requirement.py  a PEP 508 requirement or git URL on sglang, and its pinned version
verdicts.py   the verified table's verdict on each pin (no network)
from_code.py  ``--fetch``: classify an unknown pin from its wheel (network; imports the pipeline)
"""

from eagle3_patch.pins.pin import Pin
from eagle3_patch.pins.readers import UnreadableFile, file_kind, find_pins
from eagle3_patch.pins.requirement import canonical_name, parse_requirement
from eagle3_patch.pins.verdicts import (
    FAILING,
    HOOK_FILES,
    NATIVE,
    PATCH,
    REPLACED,
    UNKNOWN,
    UNPINNED,
    UNSUPPORTED,
    Finding,
    discover,
    judge,
    scan,
)

__all__ = [
    "FAILING",
    "HOOK_FILES",
    "NATIVE",
    "PATCH",
    "REPLACED",
    "UNKNOWN",
    "UNPINNED",
    "UNSUPPORTED",
    "Finding",
    "Pin",
    "UnreadableFile",
    "canonical_name",
    "discover",
    "file_kind",
    "find_pins",
    "judge",
    "parse_requirement",
    "scan",
]
