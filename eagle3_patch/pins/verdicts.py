"""Judge sglang pins against the verified table: the pre-commit hook's decision.

A pin bump to a release eagle3-patch has not been proven on must fail the
commit, before a Docker build fails or a server silently captures nothing.
No network here: ``from_code`` classifies unknown pins from their wheel.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from eagle3_patch.pins.pin import Pin
from eagle3_patch.pins.readers import find_pins
from eagle3_patch.pins.requirement import parsed_version
from eagle3_patch.verified import VerifiedRelease, load_verified

PATCH, NATIVE, UNSUPPORTED, UNKNOWN, UNPINNED = "patch", "native", "unsupported", "unknown", "unpinned"
#: A base image's sglang that a later install in the same stage replaces: reported, never failing.
REPLACED = "replaced"
#: Verdicts that fail the hook (UNPINNED unless --allow-unpinned).
FAILING = (UNSUPPORTED, UNKNOWN, UNPINNED)

#: The files the pre-commit hook is given (the same pattern as ``files`` in .pre-commit-hooks.yaml).
HOOK_FILES = re.compile(
    r"(?i)(^|/)((requirements|constraints)[^/]*\.txt|[^/]*\.in|pyproject\.toml|setup\.(py|cfg)"
    r"|(Dockerfile|Containerfile)[^/]*|[^/]*\.(Dockerfile|Containerfile)|uv\.lock|poetry\.lock)$"
)
_SKIPPED_FOLDERS = frozenset({"node_modules", "site-packages", "__pycache__", "venv", "build", "dist"})


@dataclass(frozen=True)
class Finding:
    pin: Pin
    verdict: str
    advice: str
    #: True when the verdict comes from classifying the downloaded wheel (--fetch).
    from_code: bool = False

    def line(self) -> str:
        """``path:line: requirement: verdict — what to do`` (the hook's output)."""
        shown = f"sglang=={self.pin.version}" if self.pin.version else self.pin.text
        note = f" ({self.pin.note})" if self.pin.note else ""
        return f"{self.pin.path}:{self.pin.line}: {shown}{note}: {self.verdict} — {self.advice}"


def discover(root: str | os.PathLike[str]) -> list[str]:
    """The files under ``root`` the hook would be given, never entering hidden or environment folders."""
    top = os.fspath(root)
    found = []
    for folder, folders, files in os.walk(top):
        folders[:] = [f for f in folders if not f.startswith(".") and f not in _SKIPPED_FOLDERS]
        relative = os.path.relpath(folder, top).replace(os.sep, "/")
        for name in files:
            posix = name if relative == "." else f"{relative}/{name}"
            path = os.path.join(folder, name)
            if HOOK_FILES.search(posix) and os.path.exists(path):  # a FIFO or socket too: reading refuses it
                found.append(os.path.normpath(path))
    return sorted(found, key=lambda path: path.split(os.sep))


def scan(paths: list[str] | list[os.PathLike[str]]) -> list[Pin]:
    """Every sglang requirement in ``paths``, each reported once (a file may also be included by another)."""
    pins: dict[tuple[str, int, str], Pin] = {}
    for path in paths:
        for pin in find_pins(path):
            pins.setdefault((os.path.realpath(pin.path), pin.line, pin.text), pin)
    return list(pins.values())


def judge(pin: Pin, verified: tuple[VerifiedRelease, ...] | None = None) -> Finding:
    """The verdict of the verified table on ``pin``."""
    if pin.replaced_by:
        return Finding(
            pin,
            REPLACED,
            f"line {pin.replaced_by} installs sglang over the image's in the same stage; that install is judged",
        )
    if pin.version is None:
        return Finding(
            pin,
            UNPINNED,
            "pin an exact release (e.g. sglang==0.5.21) so the patch is proven on it, or --allow-unpinned",
        )
    table = verified if verified is not None else load_verified()
    release = _verified(pin.version, table)
    if release is None and _predates(pin.version, table):
        return Finding(
            pin,
            UNSUPPORTED,
            "older than every release eagle3-patch knows, so older than Qwen3.5 in SGLang (first in 0.5.9; "
            "EAGLE-3 capture to hook into from 0.5.11): pin 0.5.11-0.5.21 (with eagle3-patch apply) or 0.5.22+",
        )
    if release is None:
        newest = max((r.version for r in load_verified()), key=_sort_key, default="none")
        return Finding(
            pin,
            UNKNOWN,
            f"not in eagle3-patch's verified table (newest verified: {newest}); run `eagle3-patch pins --fetch` "
            "to classify it from its code, or upgrade eagle3-patch",
        )
    return Finding(pin, release.verdict, ADVICE[release.verdict])


ADVICE = {
    PATCH: "verified; run `eagle3-patch apply && eagle3-patch check` after installing it",
    NATIVE: "ships the EAGLE-3 hook itself; eagle3-patch changes nothing",
    UNSUPPORTED: "cannot serve EAGLE-3 on Qwen3.5; pin 0.5.11-0.5.21 (with eagle3-patch apply) or 0.5.22 or newer",
}


def _verified(version: str, table: tuple[VerifiedRelease, ...]) -> VerifiedRelease | None:
    """The row for ``version``; spelt as the table spells it, no version parsing is needed."""
    exact = next((r for r in table if r.version == version), None)
    if exact is not None:
        return exact
    wanted = parsed_version(version)
    if wanted is None:
        return None
    return next((r for r in table if parsed_version(r.version) == wanted), None)


def _predates(version: str, table: tuple[VerifiedRelease, ...]) -> bool:
    """True when ``version`` is older than the table's oldest row (the table starts before Qwen3.5)."""
    wanted = parsed_version(version)
    known = [v for v in (parsed_version(r.version) for r in table) if v is not None]
    return wanted is not None and bool(known) and wanted < min(known)


def _sort_key(version: str) -> tuple[int, object]:
    parsed = parsed_version(version)
    return (1, parsed) if parsed is not None else (0, version)
