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
    tp = ("--tp", str(case["tp"])) if "tp" in case else ()
    code, payload = doctor(sites[case.get("release", "0.5.21")], target, draft, *tp)
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


# --- Advice that converges: follow every fix doctor prints, as a user would ---------------------------------


def _follow(problem: dict[str, Any], target: Path, draft: Path, options: dict[str, str]) -> bool:
    """Carry out one printed fix: its config edit, its option, or its `run:` command. False when it names none."""
    edit = problem["edit"]
    if edit is not None:
        if edit["where"] == "option":
            options[edit["key"]] = str(edit["value"])
            return True
        path = (draft if edit["where"] == "draft" else target) / "config.json"
        path.write_text(json.dumps(_edit(json.loads(path.read_text()), {edit["key"]: edit["value"]})))
        return True
    if problem["fix"].startswith("run: "):
        from tests.test_hints import shell

        assert shell(problem["fix"].removeprefix("run: ")).returncode == EXIT_OK, problem["fix"]
        return True
    return False


FOLLOWED = [c for c in CASES if c["rule"]] + [{"name": "unpatched install", "rule": "target-capture", "fresh": True}]


@pytest.mark.parametrize("case", FOLLOWED, ids=[c["name"] for c in FOLLOWED])
def test_following_every_printed_fix_ends_ready_or_at_a_cause_named_from_the_start(
    tmp_path: Path, sites: dict[str, Path], release_site: Any, case: dict[str, Any]
) -> None:
    """Never the same advice twice, and no fix that only moves the error: the weights' verdict comes first."""
    site = release_site(case.get("release", "0.5.21")) if case.get("fresh") else sites[case.get("release", "0.5.21")]
    target, draft = make_pair(tmp_path, case)
    options = {"--tp": str(case["tp"])} if "tp" in case else {}
    seen: set[tuple[str, str]] = set()
    first: set[str] | None = None
    for _ in range(6):
        code, payload = doctor(site, target, draft, *[part for item in options.items() for part in item])
        advice = {(p["rule"], p["fix"]) for p in payload["problems"]}
        assert not advice & seen, f"the same advice after following it: {advice & seen}"
        first = {p["rule"] for p in payload["problems"]} if first is None else first
        seen |= advice
        followed = [_follow(p, target, draft, options) for p in payload["problems"]]
        if not any(followed):
            break
    else:
        pytest.fail(f"still advising after 6 runs: {payload['problems']}")
    assert code == EXIT_OK or {p["rule"] for p in payload["problems"]} <= first, payload["problems"]
    assert case["rule"] in first


QUANTIZATION_CONFIGS = {  # the shapes AutoRound W4A16, AWQ and llm-compressor write into config.json
    "auto-round": {"quant_method": "auto-round", "bits": 4, "group_size": 128, "sym": True},
    "awq": {"quant_method": "awq", "bits": 4, "group_size": 128, "zero_point": True, "version": "gemm"},
    "compressed-tensors": {"quant_method": "compressed-tensors", "format": "pack-quantized", "config_groups": {}},
}


@pytest.mark.parametrize("method", sorted(QUANTIZATION_CONFIGS))
def test_the_unquantized_drafter_of_a_quantized_target_is_launched_unquant(
    tmp_path: Path, sites: dict[str, Path], method: str
) -> None:
    autoround = QUANTIZATION_CONFIGS[method]
    target, draft = make_pair(tmp_path, {"target": {"quantization_config": autoround}})
    for version in ("0.5.12", "0.5.21"):
        code, payload = doctor(sites[version], target, draft)
        argv = payload["launch"]["argv"]
        assert code == EXIT_OK and argv[argv.index("--speculative-draft-model-quantization") + 1] == "unquant"
        fields = read_server_args(locate_root(sites[version], found_by="test")).fields
        assert "speculative_draft_model_quantization" in fields
    # A drafter quantized itself keeps SGLang's default (it reads its own quantization_config).
    quantized_draft = tmp_path / "quantized"
    make_pair(quantized_draft.mkdir() or quantized_draft, {"draft": {"quantization_config": autoround}})
    _, payload = doctor(sites["0.5.21"], target, quantized_draft / "draft")
    assert "--speculative-draft-model-quantization" not in payload["launch"]["argv"]


def test_a_release_without_the_draft_quantization_flag_gets_a_warning_not_the_flag() -> None:
    from eagle3_patch.doctor.launch import launch_recipe
    from eagle3_patch.doctor.release import Release

    fields = frozenset({"model_path", "speculative_algorithm", "speculative_draft_model_path"})
    release = Release("0.0.1", fields, frozenset(), frozenset(), False)
    launch = launch_recipe(release, target="t", draft="d", tp=None, unquantized_draft=True)
    assert "--speculative-draft-model-quantization" not in launch.argv
    assert any("inherits the quantized target" in w for w in launch.warnings)


# --- The launch names what SGLang can load ------------------------------------------------------------------


def _release_loads_from_a_local_folder(version: str) -> None:
    """The release's own rule, read from its loader: a model path is local when ``os.path.isdir`` says so.

    ``DefaultModelLoader._prepare_weights`` sets ``is_local = os.path.isdir(model_name_or_path)`` and downloads
    from the hub otherwise; its config comes from transformers' ``from_pretrained`` on the same path.
    """
    import ast
    import zipfile

    from eagle3_patch.fetch import fetch_wheel

    with zipfile.ZipFile(fetch_wheel(version)) as wheel:
        tree = ast.parse(wheel.read("sglang/srt/model_loader/loader.py"))
    prepare = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "_prepare_weights")
    assert "is_local = os.path.isdir(model_name_or_path)" in ast.unparse(prepare)


def _sglang_can_load(path: str, *, weights: bool) -> bool:
    """What that rule and transformers (offline) make of ``path``: a folder with a config, and its weights."""
    from transformers import PretrainedConfig

    if not Path(path).is_dir():
        return False  # not local: SGLang would look for a hub repository of that name
    try:
        PretrainedConfig.get_config_dict(path, local_files_only=True)
    except OSError:
        return False
    return not weights or bool(list(Path(path).glob("*.safetensors")))


def _hub_cache(tmp_path: Path, folder: Path, name: str) -> Path:
    hub = tmp_path / f"models--org--{name}"
    snapshot_dir = hub / "snapshots" / "0123abcd"
    snapshot_dir.mkdir(parents=True)
    for file in folder.iterdir():
        (snapshot_dir / file.name).write_bytes(file.read_bytes())
    (hub / "refs").mkdir()
    (hub / "refs" / "main").write_text("0123abcd")
    return hub


@pytest.mark.parametrize("version", ["0.5.12", "0.5.21"])
@pytest.mark.parametrize("given", ["folder", "config.json", "hub cache"])
def test_the_printed_paths_are_folders_sglang_loads(
    tmp_path: Path, sites: dict[str, Path], version: str, given: str
) -> None:
    pytest.importorskip("transformers")
    _release_loads_from_a_local_folder(version)
    target, draft = make_pair(tmp_path, {"weights": {"fc.weight": [5120, 15360]}})
    paths = {
        "folder": (target, draft),
        "config.json": (target / "config.json", draft / "config.json"),
        "hub cache": (_hub_cache(tmp_path, target, "target"), _hub_cache(tmp_path, draft, "draft")),
    }[given]
    code, payload = doctor(sites[version], *paths)
    assert code == EXIT_OK, payload["problems"]
    argv = payload["launch"]["argv"]
    printed = argv[argv.index("--model-path") + 1], argv[argv.index("--speculative-draft-model-path") + 1]
    assert _sglang_can_load(printed[0], weights=False) and _sglang_can_load(printed[1], weights=True), printed
    if given != "folder":
        # What the old doctor printed (the path as given) is what SGLang cannot load: the check can fail.
        assert not _sglang_can_load(str(paths[1]), weights=True)
        assert len(payload["notes"]) == 2 and all("the launch names" in n for n in payload["notes"])
    if given == "hub cache":
        assert "the hub id org/draft" in payload["notes"][1]


def test_doctor_never_imports_sglang(tmp_path: Path, sites: dict[str, Path]) -> None:
    """The release is read as source: ``-X importtime`` lists every module doctor's process imported."""
    import subprocess

    target, draft = make_pair(tmp_path, {})
    site = sites["0.5.21"]
    command = [sys.executable, "-X", "importtime", "-m", "eagle3_patch", "doctor", "--sglang-root", str(site)]
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}  # importable, so an import would succeed and show
    done = subprocess.run(
        [*command, "--target", str(target), "--draft", str(draft)], capture_output=True, text=True, env=env
    )
    assert done.returncode == EXIT_OK, done.stderr[-2000:]
    imported = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")]
    assert "json" in imported and not [name for name in imported if name.split(".")[0] == "sglang"]


def test_launch_only_names_the_loadable_folder_when_the_checkpoint_is_there(
    tmp_path: Path, sites: dict[str, Path]
) -> None:
    target, draft = make_pair(tmp_path, {})
    hub = _hub_cache(tmp_path, draft, "draft")
    args = ("doctor", "--launch-only", "--sglang-root", str(sites["0.5.21"]))
    _, payload = run_json(CliRunner(), *args, "--target", str(target / "config.json"), "--draft", str(hub))
    argv = payload["launch"]["argv"]
    assert argv[argv.index("--model-path") + 1] == str(target)
    assert argv[argv.index("--speculative-draft-model-path") + 1] == str(hub / "snapshots" / "0123abcd")
    # At image build time the checkpoints are not there yet: the paths stay as given.
    _, payload = run_json(CliRunner(), *args, "--target", "/models/target", "--draft", "/models/draft")
    assert payload["launch"]["argv"][payload["launch"]["argv"].index("--model-path") + 1] == "/models/target"
