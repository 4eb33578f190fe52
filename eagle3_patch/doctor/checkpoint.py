"""A checkpoint's ``config.json`` and tensor shapes, from a folder, a Hugging Face cache entry or the file.

Shapes come from the safetensors headers (8 bytes of length, then JSON): the
tensors themselves are never read, so a 50 GB checkpoint costs a few reads.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eagle3_patch.errors import UsageError

#: A safetensors header larger than this is not a header (the format caps it at 100 MB).
_MAX_HEADER = 100 * 1024 * 1024


@dataclass(frozen=True)
class Checkpoint:
    #: The path the user gave, and the config.json it resolved to.
    given: Path
    config_path: Path
    config: Mapping[str, Any]
    #: Tensor name -> shape from the safetensors headers; None when the folder has no weights.
    shapes: Mapping[str, tuple[int, ...]] | None


def read_checkpoint(path: Path, *, option: str) -> Checkpoint:
    """Read ``path`` (``option`` names the flag, for the message); a usage error names the file on failure."""
    config_path = _config_path(path, option)
    try:
        config = json.loads(config_path.read_bytes())
    except OSError as exc:
        raise UsageError(f"cannot read it ({exc.strerror}); check {option}", path=config_path) from exc
    except (ValueError, RecursionError) as exc:
        raise UsageError(f"is not valid JSON ({exc}); check {option}", path=config_path) from exc
    if not isinstance(config, dict):
        raise UsageError(f"is not a model config (a JSON object); check {option}", path=config_path)
    folder = config_path.parent
    shards = sorted(folder.glob("*.safetensors")) if path.is_dir() else []
    shapes: dict[str, tuple[int, ...]] = {}
    for shard in shards:
        shapes.update(_header_shapes(shard))
    return Checkpoint(path, config_path, config, shapes if shards else None)


def _config_path(path: Path, option: str) -> Path:
    if path.is_file():
        return path
    if not path.is_dir():
        raise UsageError(f"does not exist; {option} takes a checkpoint folder or its config.json", path=path)
    if (path / "config.json").is_file():
        return path / "config.json"
    snapshot = _hub_snapshot(path)
    if snapshot is not None and (snapshot / "config.json").is_file():
        return snapshot / "config.json"
    raise UsageError(
        f"has no config.json; {option} takes a checkpoint folder, a Hugging Face cache folder "
        "(models--org--name) or a config.json",
        path=path,
    )


def _hub_snapshot(path: Path) -> Path | None:
    """``models--org--name``: the snapshot ``refs/main`` names, else the only one."""
    snapshots = path / "snapshots"
    if not snapshots.is_dir():
        return None
    ref = path / "refs" / "main"
    if ref.is_file():
        named = snapshots / ref.read_text().strip()
        if named.is_dir():
            return named
    found = [p for p in snapshots.iterdir() if p.is_dir()]
    return found[0] if len(found) == 1 else None


def _header_shapes(shard: Path) -> dict[str, tuple[int, ...]]:
    try:
        with shard.open("rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            if length > _MAX_HEADER:
                raise ValueError(f"header of {length} bytes")
            header = json.loads(handle.read(length))
        return {name: tuple(int(d) for d in entry["shape"]) for name, entry in header.items() if name != "__metadata__"}
    except OSError as exc:
        raise UsageError(f"cannot read it ({exc.strerror})", path=shard) from exc
    except (ValueError, KeyError, TypeError, struct.error) as exc:
        raise UsageError(f"is not a safetensors file ({exc}); remove it or fix the download", path=shard) from exc
