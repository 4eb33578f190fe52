"""The verified table (anchors/verified.toml): every release eagle3-patch has run end to end.

Kept apart from ``spec`` so that the pre-commit hook (``pins``) and ``--version``
load only this small table, not the targets and templates.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import cache

from eagle3_patch.anchors import data

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib


@dataclass(frozen=True)
class VerifiedFile:
    name: str
    pristine_sha256: str
    #: sha256 of our output; None where nothing is patched (native releases).
    patched_sha256: str | None


@dataclass(frozen=True)
class VerifiedRelease:
    """One row of the verified table: what a known release looks like, before and after."""

    version: str
    #: "patch", "native" or "unsupported".
    verdict: str
    files: tuple[VerifiedFile, ...]
    reason: str = ""


@cache
def load_verified() -> tuple[VerifiedRelease, ...]:
    """Every release we have run the full round trip on, oldest first."""
    return verified_from_toml(_read("verified.toml"))


@cache
def anchors_version() -> str:
    """The data version of the verified table (``data_version`` in verified.toml)."""
    return str(tomllib.loads(_read("verified.toml")).get("data_version", "unknown"))


def verified_from_toml(text: str) -> tuple[VerifiedRelease, ...]:
    data = tomllib.loads(text)
    return tuple(
        VerifiedRelease(
            version=entry["version"],
            verdict=entry["verdict"],
            files=tuple(
                VerifiedFile(name=name, pristine_sha256=row["pristine"], patched_sha256=row.get("patched"))
                for name, row in entry.get("files", {}).items()
            ),
            reason=entry.get("reason", ""),
        )
        for entry in data.get("release", [])
    )


def _read(name: str) -> str:
    return str(data(name).decode("utf-8"))
