"""What the installed SGLang knows about EAGLE-3, read from its source without importing it.

- the architectures it registers (classes named in a model file's ``EntryClass``);
- which drafter config keys its ``llama_eagle3.py`` reads (``norm_before_fc``
  and ``fc_norm`` arrived in different releases, and an unread key is silently
  ignored: the drafter then runs without the norm it was trained with);
- whether it reads ``SGLANG_ENABLE_SPEC_V2`` (0.5.11 to 0.5.20 do; 0.5.21 on do not);
- its ``ServerArgs`` fields (``verify.engine_args``), so no flag it lacks is printed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from eagle3_patch.locate import Install
from eagle3_patch.reading import read_regular_bytes
from eagle3_patch.verify.engine_args import read_server_args

#: Drafter config keys that change the drafter's layers when set.
DRAFT_FEATURES = ("norm_before_fc", "fc_norm")
SPEC_V2_ENV = "SGLANG_ENABLE_SPEC_V2"

_ENTRY = re.compile(rb"^EntryClass\s*=\s*(\[[^\]]*\]|[A-Za-z_][\w, ]*)", re.M)
_NAME = re.compile(rb"[A-Za-z_]\w*")


@dataclass(frozen=True)
class Release:
    version: str
    #: Every ``ServerArgs`` field: a flag ``--a-b`` exists when ``a_b`` is one.
    fields: frozenset[str]
    #: The class names model files list in ``EntryClass``: what SGLang serves.
    architectures: frozenset[str]
    draft_features: frozenset[str]
    reads_spec_v2: bool


def read_release(install: Install) -> Release:
    models = install.models_dir
    architectures: set[str] = set()
    for path in sorted(models.glob("*.py")):
        source = _read(path)
        start = source.find(b"\nEntryClass")  # jump to it: a regex over 9 MB of models costs 80 ms
        while start != -1:
            entry = _ENTRY.match(source, start + 1)
            if entry is not None:
                architectures.update(name.decode() for name in _NAME.findall(entry.group(1)))
            start = source.find(b"\nEntryClass", start + 1)
    eagle3 = _read(models / "llama_eagle3.py")
    return Release(
        version=install.version,
        fields=read_server_args(install).fields,
        architectures=frozenset(architectures),
        draft_features=frozenset(f for f in DRAFT_FEATURES if f.encode() in eagle3),
        reads_spec_v2=any(SPEC_V2_ENV.encode() in _read(p) for p in _spec_v2_readers(install.package_dir)),
    )


def _spec_v2_readers(package: Path) -> list[Path]:
    """Where releases read the variable: ``srt/environ.py``, ``srt/server_args.py``, ``srt/arg_groups/``."""
    srt = package / "srt"
    return [srt / "environ.py", srt / "server_args.py", *sorted((srt / "arg_groups").glob("*.py"))]


def _read(path: Path) -> bytes:
    """A source file's bytes; b"" when it is missing, unreadable or not a regular file (a FIFO is never read)."""
    try:
        return read_regular_bytes(path)
    except OSError:
        return b""
