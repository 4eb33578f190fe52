"""doctor on checkpoints it cannot use: every bad config.json or safetensors header is a usage error
(exit 2) naming the file, never an internal error (70); nothing that is not a regular file is read,
so a FIFO or a socket in a checkpoint folder cannot hang it.

A fake install (fixture shapes plus a two-line ``ServerArgs``) stands in for a release: these
inputs are refused before the release matters, and the rest only need doctor to run to the end.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from eagle3_patch.errors import EXIT_OK, EXIT_UNPATCHED, EXIT_UNSUPPORTED, EXIT_USAGE
from tests.conftest import FIXTURES, MakeInstall, run_cli, run_json

DOCTOR = FIXTURES / "doctor"
#: Seconds a doctor run on a FIFO may take before the test calls it hung (a run takes about one).
HANG_S = 10
GOOD_WEIGHTS = {"fc.weight": [5120, 15360], "d2t": [32000], "lm_head.weight": [32000, 5120]}


@pytest.fixture
def site(make_install: MakeInstall) -> Path:
    """An unpatched install doctor can read to the end: the fixture model files, a drafter class, ServerArgs."""
    root = make_install("capture_no_hook", version="0.5.11")
    srt = root / "sglang" / "srt"
    (srt / "server_args.py").write_text(
        "from dataclasses import dataclass\n\n\n@dataclass\nclass ServerArgs:\n"
        "    model_path: str\n    tp_size: int = 1\n"
    )
    (srt / "models" / "llama_eagle3.py").write_text(
        "class LlamaForCausalLMEagle3:\n    pass\n\n\nEntryClass = [LlamaForCausalLMEagle3]\n"
    )
    return root


def config(side: str, **changes: Any) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((DOCTOR / side / "config.json").read_text())
    for key, value in changes.items():
        node = loaded
        *parents, last = key.split("__")
        for parent in parents:
            node = node[parent]
        node[last] = value
    return loaded


def header_bytes(header: object) -> bytes:
    data = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(data)) + data


def shapes_header(shapes: dict[str, list[Any]]) -> dict[str, Any]:
    return {name: {"dtype": "BF16", "shape": shape, "data_offsets": [0, 0]} for name, shape in shapes.items()}


def pair(
    tmp_path: Path,
    *,
    target: dict[str, Any] | str | None = None,
    draft: dict[str, Any] | str | None = None,
    weights: bytes | None = None,
) -> tuple[Path, Path]:
    """A target and a drafter folder; a str is written as config.json's exact text."""
    folders = tmp_path / "target", tmp_path / "draft"
    for folder, side, given in zip(folders, ("target", "draft"), (target, draft), strict=True):
        folder.mkdir(parents=True)
        text = given if isinstance(given, str) else json.dumps(config(side) if given is None else given)
        (folder / "config.json").write_text(text)
    if weights is not None:
        (folders[1] / "model.safetensors").write_bytes(weights)
    return folders


def doctor(site: Path, target: Path, draft: Path) -> tuple[int, dict[str, Any]]:
    return run_json(CliRunner(), "doctor", "--sglang-root", str(site), "--target", str(target), "--draft", str(draft))


def assert_refused(code: int, payload: dict[str, Any], path: Path, *says: str) -> None:
    assert code == EXIT_USAGE, payload
    error = payload["error"]
    assert error.startswith(f"{path}: ") and "\n" not in error, error
    for words in says:
        assert words in error, error


# --- safetensors headers -----------------------------------------------------------------

HEADERS: dict[str, tuple[bytes, str]] = {
    "a list": (header_bytes([1, 2]), "a JSON array"),
    "null": (header_bytes(None), "JSON null"),
    "a string": (header_bytes("header"), "a JSON string"),
    "100000 nested arrays": (header_bytes(b"[" * 100_000 + b"]" * 100_000), "not valid JSON"),
    "not UTF-8": (header_bytes(b'{"\xff": 1}'), "not valid JSON"),
    "an entry that is a list": (header_bytes({"d2t": [1]}), "d2t"),
    "an entry without a shape": (header_bytes({"d2t": {"dtype": "I64"}}), "d2t"),
    "a shape that is a string": (header_bytes({"d2t": {"shape": "12"}}), "d2t"),
    "a 1e400 dimension": (header_bytes(b'{"d2t": {"dtype": "I64", "shape": [1e400], "data_offsets": [0, 8]}}'), "d2t"),
    "a negative dimension": (header_bytes(shapes_header({"d2t": [-5]})), "d2t"),
    "a float dimension": (header_bytes(shapes_header({"d2t": [3.5]})), "d2t"),
    "a bool dimension": (header_bytes(shapes_header({"d2t": [True]})), "d2t"),
    "a dimension past int64": (header_bytes(shapes_header({"d2t": [2**64]})), "d2t"),
    "a 5000-digit dimension": (header_bytes(b'{"d2t": {"shape": [' + b"9" * 5000 + b"]}}"), "not valid JSON"),
    "a length past the end": (struct.pack("<Q", 1000) + b'{"a": 1}', "past the end of the file"),
    "a length of 2**63": (struct.pack("<Q", 2**63) + b"{}", "over the format's"),
    "fewer than 8 bytes": (b"abc", "8-byte"),
    "nothing": (b"", "8-byte"),
}


@pytest.mark.parametrize("name", sorted(HEADERS))
def test_a_bad_safetensors_header_is_a_usage_error_naming_the_shard(tmp_path: Path, site: Path, name: str) -> None:
    data, says = HEADERS[name]
    target, draft = pair(tmp_path, weights=data)
    code, payload = doctor(site, target, draft)
    assert_refused(code, payload, draft / "model.safetensors", says, "remove it or fix the download")


def test_a_scalar_d2t_is_a_draft_vocab_problem(tmp_path: Path, site: Path) -> None:
    """A 0-d tensor is valid safetensors; as d2t it has no rows, and doctor says so."""
    weights = header_bytes(shapes_header({**GOOD_WEIGHTS, "d2t": []}))
    target, draft = pair(tmp_path, weights=weights)
    code, payload = doctor(site, target, draft)
    assert code == EXIT_UNPATCHED
    [problem] = [p for p in payload["problems"] if p["rule"] == "draft-vocab"]
    assert "d2t" in problem["detail"] and "0-d" in problem["detail"], problem


def test_good_weights_still_pass_the_weight_rules(tmp_path: Path, site: Path) -> None:
    target, draft = pair(tmp_path, weights=header_bytes(shapes_header(GOOD_WEIGHTS)))
    code, payload = doctor(site, target, draft)
    assert code in (EXIT_OK, EXIT_UNPATCHED) and payload["draft"]["weights"] is True
    assert not {p["rule"] for p in payload["problems"]} & {"fc-width", "draft-vocab"}, payload["problems"]


# --- config.json ----------------------------------------------------------------------------

BAD_NUMBERS: dict[str, Any] = {
    "a string": "3",
    "a 5000-digit string": "9" * 5000,
    "10**100": 10**100,
    "a list": [3],
    "a bool": True,
    "a float": 2.5,
    "zero": 0,
    "negative": -3,
    "an object": {"n": 3},
}


@pytest.mark.parametrize("value", list(BAD_NUMBERS.values()), ids=list(BAD_NUMBERS))
@pytest.mark.parametrize(
    ("side", "field"),
    [
        ("draft", "num_aux_hidden_states"),
        ("draft", "target_hidden_size"),
        ("draft", "draft_vocab_size"),
        ("draft", "vocab_size"),
        ("draft", "hidden_size"),
        ("target", "text_config__num_hidden_layers"),
        ("target", "text_config__hidden_size"),
        ("target", "text_config__vocab_size"),
    ],
)
def test_a_number_doctor_reads_that_is_not_a_positive_integer_is_a_usage_error(
    tmp_path: Path, site: Path, side: str, field: str, value: Any
) -> None:
    edited = config(side, **{field: value})
    target, draft = pair(tmp_path, weights=header_bytes(shapes_header(GOOD_WEIGHTS)), **{side: edited})
    code, payload = doctor(site, target, draft)
    shown = field.replace("__", ".")
    assert_refused(code, payload, (target if side == "target" else draft) / "config.json", shown, f"--{side}")


@pytest.mark.parametrize(
    "changes",
    [
        # 10**100 x "3" (OverflowError), 10**12 x "3" and 10**12 x [3] (MemoryError) in the fc-width rule
        {"target_hidden_size": 10**100, "num_aux_hidden_states": "3"},
        {"target_hidden_size": 10**12, "num_aux_hidden_states": "3"},
        {"target_hidden_size": 10**12, "num_aux_hidden_states": [3]},
    ],
    ids=["overflow", "memory-string", "memory-list"],
)
def test_numbers_that_crashed_the_fc_width_rule_are_usage_errors(
    tmp_path: Path, site: Path, changes: dict[str, Any]
) -> None:
    target, draft = pair(tmp_path, draft=config("draft", **changes), weights=header_bytes(shapes_header(GOOD_WEIGHTS)))
    code, payload = doctor(site, target, draft)
    assert_refused(code, payload, draft / "config.json", "--draft")


def test_infinity_and_nan_in_config_json_are_usage_errors(tmp_path: Path, site: Path) -> None:
    """Python's json reads 1e400 as inf and takes NaN; neither is a size."""
    for number in ("1e400", "NaN", "-Infinity"):
        text = json.dumps(config("draft")).replace('"draft_vocab_size": 32000', f'"draft_vocab_size": {number}')
        target, draft = pair(tmp_path / number, draft=text)
        code, payload = doctor(site, target, draft)
        assert_refused(code, payload, draft / "config.json", "draft_vocab_size")


def test_null_means_unset_as_in_transformers(tmp_path: Path, site: Path) -> None:
    """transformers writes an unset setting as null: that is not an error, the rule's default applies."""
    target, draft = pair(tmp_path, draft=config("draft", num_aux_hidden_states=None, draft_vocab_size=None))
    code, payload = doctor(site, target, draft)
    assert code in (EXIT_OK, EXIT_UNPATCHED), payload


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000 + "]" * 100_000,
        '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}",
        '{"vocab_size": ' + "9" * 5000 + "}",
    ],
    ids=["nested-arrays", "nested-in-an-object", "5000-digit-number"],
)
def test_config_json_that_json_cannot_take_is_a_usage_error(tmp_path: Path, site: Path, text: str) -> None:
    target, draft = pair(tmp_path, draft=text)
    code, payload = doctor(site, target, draft)
    assert_refused(code, payload, draft / "config.json", "--draft")


def test_a_config_json_far_larger_than_a_config_is_not_read_whole(tmp_path: Path, site: Path) -> None:
    text = json.dumps({**config("draft"), "padding": "x" * (17 * 1024 * 1024)})
    target, draft = pair(tmp_path, draft=text)
    code, payload = doctor(site, target, draft)
    assert_refused(code, payload, draft / "config.json", "larger than", "--draft")


@pytest.mark.parametrize("top", [[1], None, "config", 3], ids=["list", "null", "string", "number"])
def test_config_json_that_is_not_an_object_is_a_usage_error(tmp_path: Path, site: Path, top: Any) -> None:
    target, draft = pair(tmp_path, draft=json.dumps(top))
    code, payload = doctor(site, target, draft)
    assert_refused(code, payload, draft / "config.json", "not a model config")


def test_a_hugging_face_ref_that_is_not_text_falls_back_to_the_only_snapshot(tmp_path: Path, site: Path) -> None:
    target, draft = pair(tmp_path)
    hub = tmp_path / "models--org--drafter"
    (hub / "snapshots" / "abc123").mkdir(parents=True)
    (hub / "snapshots" / "abc123" / "config.json").write_bytes((draft / "config.json").read_bytes())
    (hub / "refs").mkdir()
    (hub / "refs" / "main").write_bytes(b"\xff\xfe\x00garbage")
    code, payload = doctor(site, target, hub)
    assert code in (EXIT_OK, EXIT_UNPATCHED), payload
    assert payload["draft"]["config"] == str(hub / "snapshots" / "abc123" / "config.json")


def test_an_unreadable_snapshots_folder_is_a_usage_error(
    tmp_path: Path, site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Root reads any folder, so the permission error is simulated where doctor lists snapshots/."""
    target, _ = pair(tmp_path)
    snapshots = tmp_path / "models--org--drafter" / "snapshots"
    (snapshots / "abc123").mkdir(parents=True)
    listing = Path.iterdir

    def refuse(self: Path) -> Iterator[Path]:
        if self == snapshots:
            raise PermissionError(13, "Permission denied", str(self))
        return listing(self)

    monkeypatch.setattr(Path, "iterdir", refuse)
    code, payload = doctor(site, target, snapshots.parent)
    assert_refused(code, payload, snapshots, "Permission denied", "--draft")


# --- only regular files are read --------------------------------------------------------------


@pytest.fixture
def unix_socket() -> Iterator[Callable[[Path], None]]:
    made: list[socket.socket] = []

    def bind(path: Path) -> None:
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(path))
        made.append(sock)

    yield bind
    for sock in made:
        sock.close()


def doctor_process(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """doctor in its own process, with a deadline: a read that blocks fails the test instead of hanging it."""
    return subprocess.run(
        [sys.executable, "-m", "eagle3_patch", "doctor", "--sglang-root", str(site), *args],
        capture_output=True,
        text=True,
        timeout=HANG_S,
        check=False,
        env={**os.environ, "NO_COLOR": "1"},
    )


NOT_REGULAR = [
    (kind, where)
    for kind in ("fifo", "socket", "folder")
    for where in ("model.safetensors", "config.json", "config.json given")
    # A folder given as --draft is a checkpoint folder (test_doctor.py: "has no config.json").
    if (kind, where) != ("folder", "config.json given")
]


@pytest.mark.parametrize(("kind", "where"), NOT_REGULAR)
def test_what_is_not_a_regular_file_is_refused_at_once(
    tmp_path: Path, site: Path, unix_socket: Callable[[Path], None], kind: str, where: str
) -> None:
    target, draft = pair(tmp_path)
    bad = draft / where.removesuffix(" given")
    bad.unlink(missing_ok=True)
    {"fifo": os.mkfifo, "socket": unix_socket, "folder": Path.mkdir}[kind](bad)
    given = bad if where.endswith("given") else draft
    done = doctor_process(site, "--target", str(target), "--draft", str(given))
    assert done.returncode == EXIT_USAGE, done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith(f"eagle3-patch: error: {bad}: ") and "not a regular file" in line, line


def test_a_long_id_list_is_checked_in_linear_time(tmp_path: Path, site: Path) -> None:
    """200,000 ids in range (700 kB of config): counting each id's repeats with list.count took hours."""
    ids = [i % 63 for i in range(200_000)]
    target, draft = pair(tmp_path, draft=config("draft", eagle_config__eagle_aux_hidden_state_layer_ids=ids))
    done = doctor_process(site, "--target", str(target), "--draft", str(draft), "--json")
    assert done.returncode == EXIT_UNPATCHED, done.stderr
    [duplicate] = [p for p in json.loads(done.stdout)["problems"] if p["rule"] == "aux-ids-duplicate"]
    assert duplicate["detail"].startswith(f"ids {list(range(63))} repeat"), duplicate


def test_a_fifo_among_the_release_files_is_skipped_not_read(tmp_path: Path, site: Path) -> None:
    """doctor reads every models/*.py for EntryClass: a FIFO there is not a model file."""
    os.mkfifo(site / "sglang" / "srt" / "models" / "zz_pipe.py")
    target, draft = pair(tmp_path)
    done = doctor_process(site, "--target", str(target), "--draft", str(draft), "--launch-only")
    assert done.returncode == EXIT_OK, done.stderr
    assert "sglang.launch_server" in done.stdout


def test_a_fifo_as_server_args_is_refused_as_unreadable(tmp_path: Path, site: Path) -> None:
    server_args = site / "sglang" / "srt" / "server_args.py"
    server_args.unlink()
    os.mkfifo(server_args)
    target, draft = pair(tmp_path)
    done = doctor_process(site, "--target", str(target), "--draft", str(draft), "--launch-only")
    assert done.returncode == EXIT_UNSUPPORTED, done.stderr
    assert str(server_args) in done.stderr and "not a regular file" in done.stderr


def test_plain_output_is_one_line(tmp_path: Path, site: Path) -> None:
    target, draft = pair(tmp_path, weights=header_bytes([1]))
    result = run_cli(CliRunner(), "doctor", "--sglang-root", str(site), "--target", str(target), "--draft", str(draft))
    assert result.exit_code == EXIT_USAGE
    [line] = result.stderr.splitlines()
    assert str(draft / "model.safetensors") in line
