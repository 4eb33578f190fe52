"""A checkpoint's ``config.json`` and tensor shapes, from a folder, a Hugging Face cache entry or the file.

Shapes come from the safetensors headers (8 bytes of length, then JSON): the
tensors themselves are never read, so a 50 GB checkpoint costs a few reads.
Only regular files are opened (``reading.open_regular``): a FIFO or a socket
in a checkpoint folder is refused at once rather than read. What doctor cannot
use (a file it cannot read, JSON it cannot take, a size that is not a positive
integer) is a usage error naming the file; nothing that comes out of here is
left for the rules to trip on.
"""

from __future__ import annotations

import json
import os
import stat
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from eagle3_patch.errors import UsageError
from eagle3_patch.reading import NotRegularFileError, file_kind, open_regular, read_regular_bytes

#: A safetensors header larger than this is not a header (the format caps it at 100 MB).
_MAX_HEADER = 100 * 1024 * 1024
#: A config.json is a few kB; one larger than this is not a model config (and is not read whole).
_MAX_CONFIG = 16 * 1024 * 1024
#: A Hugging Face ``refs/main`` holds one commit hash.
_MAX_REF = 4096
#: The integer settings the rules read, at the top level and in ``text_config``.
INTEGER_FIELDS = (
    "num_hidden_layers",
    "hidden_size",
    "vocab_size",
    "target_hidden_size",
    "draft_vocab_size",
    "num_aux_hidden_states",
)
#: Their bound: every real model's sizes are far below it, and arithmetic on them stays small.
MAX_SIZE = 2**31 - 1
#: A tensor dimension is at most what safetensors and torch hold (a signed 64-bit count).
_MAX_DIMENSION = 2**63 - 1


@dataclass(frozen=True)
class Checkpoint:
    #: The path the user gave, and the config.json it resolved to.
    given: Path
    config_path: Path
    config: Mapping[str, Any]
    #: Tensor name -> shape from the safetensors headers; None when the folder has no weights.
    shapes: Mapping[str, tuple[int, ...]] | None

    @property
    def folder(self) -> Path:
        """What SGLang can load: the folder holding config.json (it takes a folder, never a file or a cache root)."""
        return self.config_path.parent

    @property
    def note(self) -> str | None:
        """Why the launch names another path than the one given, or None when it names the one given."""
        if self.folder == self.given:
            return None
        if self.given == self.config_path:
            return f"{self.given} is a file; SGLang loads a folder, so the launch names {self.folder}"
        hub_id = hub_id_of(self.given)
        return (
            f"{self.given} is a Hugging Face cache folder, which SGLang cannot load; the launch names its snapshot "
            f"{self.folder} (the hub id {hub_id} loads it too where HF_HUB_CACHE is {self.given.parent})"
        )


def hub_id_of(cache_folder: Path) -> str:
    """``models--Qwen--Qwen3.6-27B`` -> ``Qwen/Qwen3.6-27B`` (how huggingface_hub names its cache folders)."""
    return cache_folder.name.removeprefix("models--").replace("--", "/", 1)


def model_folder(path: str) -> str:
    """The folder to launch with for ``path``; ``path`` itself when it is not a checkpoint (yet).

    ``doctor --launch-only`` runs at image build time, when the checkpoints are
    usually not there: then the path is kept as given.
    """
    try:
        return str(_config_path(Path(path), "--launch-only").parent)
    except UsageError:
        return path


def read_checkpoint(path: Path, *, option: str) -> Checkpoint:
    """Read ``path`` (``option`` names the flag, for the message); a usage error names the file on failure."""
    config_path = _config_path(path, option)
    try:
        config = json.loads(read_regular_bytes(config_path, limit=_MAX_CONFIG))
    except NotRegularFileError as exc:
        raise UsageError(f"is {exc.kind}, not a regular file; check {option}", path=config_path) from exc
    except OSError as exc:
        raise UsageError(f"cannot read it ({exc.strerror}); check {option}", path=config_path) from exc
    except (ValueError, RecursionError) as exc:
        raise UsageError(f"is not valid JSON ({_short(exc)}); check {option}", path=config_path) from exc
    if not isinstance(config, dict):
        raise UsageError(f"is not a model config (a JSON object); check {option}", path=config_path)
    _check_integers(config, config_path, option)
    # The folder SGLang loads, whichever path led to its config.json: its weights are what the rules check.
    shards = sorted(config_path.parent.glob("*.safetensors"))
    shapes: dict[str, tuple[int, ...]] = {}
    for shard in shards:
        shapes.update(_header_shapes(shard, option))
    return Checkpoint(path, config_path, config, shapes if shards else None)


def _kind(path: Path, option: str) -> str | None:
    """ "file", "folder", another kind of file ("a FIFO (named pipe)"...), or None when nothing is there."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:  # a loop of links, a name too long, a NUL byte
        raise UsageError(f"cannot be read ({_short(exc)}); check {option}", path=path) from exc
    if stat.S_ISREG(mode):
        return "file"
    return "folder" if stat.S_ISDIR(mode) else file_kind(mode)


def _config_path(path: Path, option: str) -> Path:
    kind = _kind(path, option)
    if kind == "file":
        return path
    if kind is None:
        raise UsageError(f"does not exist; {option} takes a checkpoint folder or its config.json", path=path)
    if kind != "folder":
        raise UsageError(
            f"is {kind}, not a regular file; {option} takes a checkpoint folder or its config.json", path=path
        )
    for folder in (path, _hub_snapshot(path, option)):
        if folder is None:
            continue
        inside = _kind(folder / "config.json", option)
        if inside == "file":
            return folder / "config.json"
        if inside is not None:
            raise UsageError(f"is {inside}, not a regular file; check {option}", path=folder / "config.json")
    raise UsageError(
        f"has no config.json; {option} takes a checkpoint folder, a Hugging Face cache folder "
        "(models--org--name) or a config.json",
        path=path,
    )


def _hub_snapshot(path: Path, option: str) -> Path | None:
    """``models--org--name``: the snapshot ``refs/main`` names, else the only one."""
    snapshots = path / "snapshots"
    if _kind(snapshots, option) != "folder":
        return None
    named = _ref_name(path / "refs" / "main")
    if named is not None and _kind(snapshots / named, option) == "folder":
        return snapshots / named
    try:
        found = [p for p in snapshots.iterdir() if p.is_dir()]
    except OSError as exc:
        raise UsageError(f"cannot read it ({exc.strerror}); check {option}", path=snapshots) from exc
    return found[0] if len(found) == 1 else None


def _ref_name(ref: Path) -> str | None:
    """The snapshot name in ``refs/main``; None when it is missing, not a regular file or not a plain name."""
    try:
        name = read_regular_bytes(ref, limit=_MAX_REF).decode("utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    plain = name not in ("", ".", "..") and "/" not in name and "\0" not in name
    return name if plain else None


def _check_integers(config: Mapping[str, Any], config_path: Path, option: str) -> None:
    """Each size the rules read is a positive integer (null counts as unset, as transformers writes it)."""
    nested = config.get("text_config")
    for prefix, settings in (("", config), ("text_config.", nested if isinstance(nested, dict) else {})):
        for field in INTEGER_FIELDS:
            value = settings.get(field)
            if value is None or (isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_SIZE):
                continue
            raise UsageError(
                f"{prefix}{field} is {_describe(value)}; it must be a whole number from 1 to {MAX_SIZE}: "
                f"fix the config, or check {option}",
                path=config_path,
            )


def _header_shapes(shard: Path, option: str) -> dict[str, tuple[int, ...]]:
    def refuse(why: str) -> NoReturn:
        raise UsageError(f"is not a safetensors file ({why}); remove it or fix the download", path=shard)

    try:
        with open_regular(shard) as handle:
            size = os.fstat(handle.fileno()).st_size
            prefix = handle.read(8)
            if len(prefix) < 8:
                refuse(f"{len(prefix)} bytes, shorter than the 8-byte header length")
            (length,) = struct.unpack("<Q", prefix)
            if length > _MAX_HEADER:
                refuse(f"its header length is {length} bytes, over the format's {_MAX_HEADER}")
            if 8 + length > size:
                refuse(f"its header length, {length} bytes, runs past the end of the file ({size} bytes)")
            raw = handle.read(length)
    except NotRegularFileError as exc:
        raise UsageError(f"is {exc.kind}, not a regular file; remove it, or check {option}", path=shard) from exc
    except OSError as exc:
        raise UsageError(f"cannot read it ({exc.strerror}); check {option}", path=shard) from exc
    try:
        header = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        refuse(f"its header is not valid JSON: {_short(exc)}")
    if not isinstance(header, dict):
        refuse(f"its header is {_describe(header)}, not a JSON object")
    shapes = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        shape = entry.get("shape") if isinstance(entry, dict) else None
        if not isinstance(shape, list) or not all(_is_dimension(d) for d in shape):
            refuse(f"the shape of tensor {_short(name)} is not a list of whole numbers from 0 to 2**63 - 1")
        shapes[name] = tuple(shape)
    return shapes


def _is_dimension(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_DIMENSION


_JSON_KINDS = {type(None): "JSON null", bool: "a JSON boolean", str: "a JSON string", list: "a JSON array"}


def _describe(value: object) -> str:
    """A value from JSON, for a message: its kind, and the value itself when short."""
    if isinstance(value, (dict, list)):
        return "a JSON object" if isinstance(value, dict) else "a JSON array"
    kind = _JSON_KINDS.get(type(value), "a number")
    try:
        shown = json.dumps(value)
    except ValueError:  # 5000 digits
        shown = ""
    return f"{kind} {_short(shown)}".rstrip() if kind != "JSON null" else kind


def _short(value: object, limit: int = 80) -> str:
    """One line, at most ``limit`` characters: a value or an exception quoted in a message."""
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
