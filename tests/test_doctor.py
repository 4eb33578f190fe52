"""doctor on real release files (0.5.12, 0.5.21, 0.5.23): every rule fires on its case, the good pair passes,
and the launch command uses only flags the release has."""

from __future__ import annotations

import copy
import hashlib
import json
import struct
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from eagle3_patch.doctor.launch import flag_field
from eagle3_patch.errors import EXIT_OK, EXIT_UNPATCHED, EXIT_USAGE
from eagle3_patch.ledger import LEDGER_NAME
from eagle3_patch.locate import locate_root
from eagle3_patch.verify.engine_args import read_server_args
from eagle3_patch.write import LOCK_NAME
from tests.conftest import FIXTURES, run_cli, run_json, snapshot

DOCTOR = FIXTURES / "doctor"
CASES = tomllib.loads((DOCTOR / "cases.toml").read_text())["case"]


def _edit(config: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    edited = copy.deepcopy(config)
    for dotted, value in changes.items():
        *parents, key = dotted.split(".")
        node = edited
        for parent in parents:
            node = node.setdefault(parent, {})
        if value == "DELETE":
            node.pop(key, None)
        else:
            node[key] = value
    return edited


def write_safetensors_header(path: Path, shapes: dict[str, list[int]]) -> None:
    """A header-only safetensors file: doctor reads headers, never tensors."""
    header, offset = {}, 0
    for name, shape in shapes.items():
        size = 2
        for dim in shape:
            size *= dim
        header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    data = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(data)) + data)


def make_pair(tmp_path: Path, case: dict[str, Any]) -> tuple[Path, Path]:
    target, draft = tmp_path / "target", tmp_path / "draft"
    for folder, side in ((target, "target"), (draft, "draft")):
        folder.mkdir()
        config = json.loads((DOCTOR / side / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps(_edit(config, case.get(side, {}))))
    if "weights" in case:
        write_safetensors_header(draft / "model.safetensors", case["weights"])
    return target, draft


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """0.5.12 and 0.5.21 patched, 0.5.23 native: unpacked once for the module."""
    from eagle3_patch.fetch import extract_release, fetch_wheel

    found = {}
    for version in ("0.5.12", "0.5.21", "0.5.23"):
        site = tmp_path_factory.mktemp(f"site-{version}")
        extract_release(fetch_wheel(version), site)
        if version != "0.5.23":
            assert run_cli(CliRunner(), "apply", "--sglang-root", str(site)).exit_code == EXIT_OK
        found[version] = site
    return found


def doctor(site: Path, target: Path, draft: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    args = ("doctor", "--sglang-root", str(site), "--target", str(target), "--draft", str(draft), *extra)
    return run_json(CliRunner(), *args)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_each_rule_fires_on_its_case_and_only_there(tmp_path: Path, sites: dict[str, Path], case: dict) -> None:
    target, draft = make_pair(tmp_path, case)
    code, payload = doctor(sites[case.get("release", "0.5.21")], target, draft)
    rules = sorted({p["rule"] for p in payload["problems"]})
    assert rules == ([case["rule"]] if case["rule"] else []), payload["problems"]
    assert code == (EXIT_UNPATCHED if case["rule"] else EXIT_OK)
    for problem in payload["problems"]:
        assert problem["detail"] and problem["fix"]


def test_weights_rules_say_not_checked_without_weights(tmp_path: Path, sites: dict[str, Path]) -> None:
    target, draft = make_pair(tmp_path, {})
    code, payload = doctor(sites["0.5.21"], target, draft)
    assert code == EXIT_OK and payload["draft"]["weights"] is False
    assert any("not checked: no weights" in w for w in payload["warnings"])


def test_an_unpatched_install_is_a_problem_with_the_apply_command(
    tmp_path: Path, release_site: Any, sites: dict[str, Path]
) -> None:
    site = release_site("0.5.21")
    target, draft = make_pair(tmp_path, {})
    code, payload = doctor(site, target, draft)
    assert code == EXIT_UNPATCHED
    [problem] = payload["problems"]
    assert problem["rule"] == "target-capture" and problem["fix"] == f"run: eagle3-patch apply --sglang-root {site}"
    assert payload["sglang"]["capture"] == "unpatched"


# What SGLANG_FACTS.md measured: the mamba flag's name and whether SGLANG_ENABLE_SPEC_V2 is read.
RECIPES = {
    "0.5.12": ("--mamba-scheduler-strategy", {"SGLANG_ENABLE_SPEC_V2": "1"}),
    "0.5.21": ("--mamba-radix-cache-strategy", {}),
    "0.5.23": ("--mamba-radix-cache-strategy", {}),
}


@pytest.mark.parametrize("version", sorted(RECIPES))
def test_the_launch_command_uses_only_flags_the_release_has(
    tmp_path: Path, sites: dict[str, Path], version: str
) -> None:
    target, draft = make_pair(tmp_path, {})
    code, payload = doctor(sites[version], target, draft, "--tp", "2")
    assert code == EXIT_OK, payload["problems"]
    launch = payload["launch"]
    mamba, env = RECIPES[version]
    assert launch["env"] == env
    argv = launch["argv"]
    assert argv[:3] == ["python", "-m", "sglang.launch_server"]
    assert argv[argv.index(mamba) + 1] == "extra_buffer"
    assert argv[argv.index("--tp-size") + 1] == "2" and "--trust-remote-code" in argv
    assert argv[argv.index("--model-path") + 1] == str(target)
    assert argv[argv.index("--speculative-draft-model-path") + 1] == str(draft)
    fields = read_server_args(locate_root(sites[version], found_by="test")).fields
    flags = [a for a in argv if a.startswith("--")]
    assert all(flag_field(f) in fields for f in flags), [f for f in flags if flag_field(f) not in fields]
    assert launch["command"].endswith(" ".join(argv[-1:])) and "launch_server" in launch["command"]


def test_doctor_takes_no_lock_and_writes_nothing(tmp_path: Path, sites: dict[str, Path]) -> None:
    site = sites["0.5.23"]
    target, draft = make_pair(tmp_path, {"weights": {"fc.weight": [5120, 15360]}})
    before, pair_before = snapshot(site), (snapshot(target), snapshot(draft))
    code, _ = doctor(site, target, draft)
    assert code == EXIT_OK
    assert snapshot(site) == before and (snapshot(target), snapshot(draft)) == pair_before
    assert not (site / LOCK_NAME).exists()


def test_a_config_file_and_a_hugging_face_cache_folder_are_read(tmp_path: Path, sites: dict[str, Path]) -> None:
    target, draft = make_pair(tmp_path, {})
    hub = tmp_path / "models--org--drafter"
    snapshot_dir = hub / "snapshots" / "abc123"
    snapshot_dir.mkdir(parents=True)
    (snapshot_dir / "config.json").write_bytes((draft / "config.json").read_bytes())
    (hub / "refs").mkdir()
    (hub / "refs" / "main").write_text("abc123\n")
    code, payload = doctor(sites["0.5.21"], target / "config.json", hub)
    assert code == EXIT_OK and payload["draft"]["config"] == str(snapshot_dir / "config.json")


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda d: None, "does not exist"),
        (lambda d: (d.mkdir(), (d / "config.json").write_text("{not json")), "is not valid JSON"),
        (lambda d: d.mkdir(), "has no config.json"),
    ],
    ids=["missing", "bad-json", "empty-folder"],
)
def test_bad_checkpoint_paths_are_usage_errors_naming_the_file(
    tmp_path: Path, sites: dict[str, Path], make: Any, says: str
) -> None:
    target, _ = make_pair(tmp_path, {})
    broken = tmp_path / "broken"
    make(broken)
    code, payload = doctor(sites["0.5.21"], target, broken)
    assert code == EXIT_USAGE and says in payload["error"] and str(broken) in payload["error"]


def test_a_broken_static_chain_is_a_problem_even_when_the_state_reads_patched(
    tmp_path: Path, sites: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """doctor follows verify's static chain; here its decoder link is cut in a copy of a patched 0.5.21."""
    import shutil

    site = tmp_path / "site"
    shutil.copytree(sites["0.5.21"], site, symlinks=True)
    decoder = site / "sglang" / "srt" / "models" / "qwen3_5.py"
    source = decoder.read_bytes()
    # The decoder's forward stops reading the per-layer flag: classify still sees our hook, the chain is cut.
    cut = source.replace(b"_is_layer_to_capture", b"_is_layer_to_skip")
    assert cut != source
    decoder.write_bytes(cut)
    # ...and the ledger is made to vouch for the cut bytes, so classify, deciding by hashes, says "patched".
    ledger_path = decoder.with_name(LEDGER_NAME)
    ledger = json.loads(ledger_path.read_text())
    ledger["files"]["qwen3_5.py"]["patched_sha256"] = hashlib.sha256(cut).hexdigest()
    ledger_path.write_text(json.dumps(ledger))
    target, draft = make_pair(tmp_path, {})
    code, payload = doctor(site, target, draft)
    assert code == EXIT_UNPATCHED and payload["sglang"]["capture"] == "patched"
    [problem] = payload["problems"]
    assert problem["rule"] == "target-capture" and "capture link is missing" in problem["detail"], problem
