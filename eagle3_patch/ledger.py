"""The record of what eagle3-patch wrote: per file, the sha256 before and after.

Later runs decide a file's state from these hashes and the bytes on disk, never
from timestamps. The ledger sits beside the files it describes
(``srt/models/.eagle3-patch.json``); only the writer writes it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from eagle3_patch.anchors import data
from eagle3_patch.errors import LedgerError
from eagle3_patch.reading import read_bytes_or_none, read_witness

LEDGER_NAME = ".eagle3-patch.json"
BACKUP_SUFFIX = ".eagle3-bak"
EDITED_SUFFIX = ".eagle3-edited"
#: A backup whose bytes exist nowhere else, moved aside instead of deleted (README, "Reliability").
KEPT_SUFFIX = ".eagle3-kept"
LEDGER_FORMAT = 1


@dataclass(frozen=True)
class LedgerEntry:
    """One patched file: its original and patched sha256, and every class's state as written.

    ``classes`` maps a class to "<template ident>" for a block we wrote (e.g.
    "decoder-v1") or to its state when we left it alone ("native"), so a file
    whose bytes still hash to ``patched_sha256`` is classified without parsing.
    """

    name: str
    pristine_sha256: str
    patched_sha256: str
    classes: tuple[tuple[str, str], ...] = ()
    #: What the file was before apply replaced it with a private copy: a symlink's text
    #: (into a package cache, say), so that revert puts the very link back. None: a file.
    link: str | None = None


@dataclass(frozen=True)
class Ledger:
    tool_version: str
    sglang_version: str
    entries: tuple[LedgerEntry, ...]
    #: sha256 of the targets.toml this was written under (empty: unknown).
    targets_sha256: str = ""
    #: The other target files as eagle3-patch left them: name and sha256, None when absent.
    untouched: tuple[tuple[str, str | None], ...] = ()

    def get(self, name: str) -> LedgerEntry | None:
        for entry in self.entries:
            if entry.name == name:
                return entry
        return None


def targets_sha256() -> str:
    """The sha256 of the shipped targets.toml, recorded in the ledger (which targets it was written under)."""
    return sha256_hex(data("targets.toml"))


def vouches_for_patched(models_dir: Path, *, targets_digest: str, tool_version: str) -> bool:
    """True only when classify, run now, would find the install patched with nothing to note.

    classify settles a file whose bytes hash to what the ledger says we wrote
    from the ledger alone (``classify._as_recorded``). When that holds for every
    file we patched, no other target file is present (absent then and now), and
    the ledger was written by this very eagle3-patch under these very targets,
    classify parses nothing and its verdict is "patched", without notes: its
    rules are applied here without importing it. ``check`` asks this first, so a
    Docker build or a pre-commit run reads and hashes a few files. Any doubt
    returns False, and the caller classifies.
    """
    data = read_witness(models_dir / LEDGER_NAME)
    if data is None:
        return False
    try:
        ledger = parse_ledger(data)
    except LedgerError:
        return False
    if not ledger.entries or (ledger.targets_sha256, ledger.tool_version) != (targets_digest, tool_version):
        return False
    for entry in ledger.entries:
        content = read_witness(models_dir / entry.name)
        if content is None or sha256_hex(content) != entry.patched_sha256:
            return False
    return all(digest is None and not (models_dir / name).exists() for name, digest in ledger.untouched)


def read_ledger(path: Path) -> tuple[Ledger | None, str]:
    """The ledger at ``path`` (None when absent), or None and why it is ignored when it cannot be read."""
    ignored = "ignored, states decided from backups and RECORD instead"
    try:
        data = read_bytes_or_none(path)
    except OSError as exc:
        return None, f"{path}: cannot be read ({exc.strerror}); {ignored}"
    if data is None:
        return None, ""
    try:
        return parse_ledger(data), ""
    except LedgerError as exc:
        return None, f"{path}: {exc}; {ignored}"


def backup_path_for(path: Path) -> Path:
    """Where the original of ``path`` is kept: beside it in the models folder, even when it is a symlink."""
    return path.with_name(path.name + BACKUP_SUFFIX)


try:  # CPython's built-in SHA-256: hashlib would load OpenSSL first, a tenth of check's budget
    from _sha2 import sha256 as _sha256  # Python 3.12+
except ImportError:  # pragma: no cover - depends on the Python version
    try:
        from _sha256 import sha256 as _sha256  # Python 3.10, 3.11
    except ImportError:
        from hashlib import sha256 as _sha256


def sha256_hex(data: bytes) -> str:
    digest: str = _sha256(data).hexdigest()
    return digest


def parse_ledger(data: bytes) -> Ledger:
    try:
        raw = json.loads(data.decode("utf-8"))
        if raw.get("format") != LEDGER_FORMAT:
            raise LedgerError(f"unknown ledger format {raw.get('format')!r}")
        entries = tuple(
            LedgerEntry(
                name=name,
                pristine_sha256=_sha(row["pristine_sha256"]),
                patched_sha256=_sha(row["patched_sha256"]),
                classes=tuple((str(k), str(v)) for k, v in row.get("classes", {}).items()),
                link=_link(row.get("link")),
            )
            for name, row in sorted(raw["files"].items())
        )
        untouched = tuple(
            (str(name), _sha(digest) if digest is not None else None)
            for name, digest in raw.get("untouched", {}).items()
        )
        return Ledger(
            tool_version=str(raw.get("tool_version", "")),
            sglang_version=str(raw.get("sglang_version", "")),
            entries=entries,
            targets_sha256=_sha(raw["targets_sha256"]) if raw.get("targets_sha256") else "",
            untouched=untouched,
        )
    except LedgerError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise LedgerError(f"unreadable ledger ({type(exc).__name__}: {exc})") from exc


def render_ledger(ledger: Ledger) -> bytes:
    raw = {
        "format": LEDGER_FORMAT,
        "tool_version": ledger.tool_version,
        "sglang_version": ledger.sglang_version,
        "targets_sha256": ledger.targets_sha256,
        "untouched": dict(ledger.untouched),
        "files": {
            entry.name: {
                "pristine_sha256": entry.pristine_sha256,
                "patched_sha256": entry.patched_sha256,
                "classes": dict(entry.classes),
                **({"link": entry.link} if entry.link is not None else {}),
            }
            for entry in sorted(ledger.entries, key=lambda e: e.name)
        },
    }
    return (json.dumps(raw, indent=2) + "\n").encode("utf-8")


def _link(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or "\0" in value:
        raise LedgerError(f"not a link: {value!r}")
    return value


def _sha(value: object) -> str:
    if not isinstance(value, str) or len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise LedgerError(f"not a sha256: {value!r}")
    return value
