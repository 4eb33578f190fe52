"""The real SGLang, run on this CPU: unpatched EAGLE-3 fails, patched captures, revert restores.

These tests run ``scripts/runtime_proof.py``, which builds (once, then reuses) a
venv with a real SGLang release and its dependencies under
``~/.cache/eagle3-patch/runtime`` (about 6 GB; minutes the first time). They run
where ``EAGLE3_PATCH_RUNTIME=1`` is set, as CI does; elsewhere they skip.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from eagle3_patch.verify.cuda import copy_child_scripts
from tests.conftest import REPO

pytestmark = [
    pytest.mark.runtime,
    pytest.mark.skipif(
        os.environ.get("EAGLE3_PATCH_RUNTIME") != "1",
        reason="set EAGLE3_PATCH_RUNTIME=1 to run real SGLang on this CPU (builds a 6 GB venv once)",
    ),
]

RELEASE = "0.5.21"
TEXT = "Qwen3_5ForCausalLM"
DENSE = "Qwen3_5ForConditionalGeneration"
MOE = "Qwen3_5MoeForConditionalGeneration"


def proof(*args: str) -> tuple[int, dict[str, Any]]:
    completed = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "runtime_proof.py"), "--json", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=3600,
    )
    sys.stderr.write(completed.stderr[-6000:])
    lines = completed.stdout.strip().splitlines()
    assert lines, f"no JSON on stdout (exit {completed.returncode}): {completed.stderr[-2000:]}"
    return completed.returncode, json.loads(lines[-1])


@pytest.fixture(scope="module")
def proven() -> tuple[int, dict[str, Any]]:
    return proof("--sglang", RELEASE)


def by_architecture(payload: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["architecture"]: t for t in payload["targets"]}


def test_header_and_revert(proven: tuple[int, dict[str, Any]]) -> None:
    _, payload = proven
    assert payload["sglang"] == RELEASE and payload["device"] == "cpu" and payload["mode"] == "patch"
    assert payload["revert_byte_identical"] is True
    assert payload["workarounds"] and all(w["name"] and w["reason"] for w in payload["workarounds"])


#: How each target fails unpatched: the text wrapper has no hook at all; the VL wrappers inherit
#: Qwen3-VL's, which flags nothing in the Qwen3.5 decoder, so their forward cannot unpack a tuple.
UNPATCHED_ERRORS = {
    TEXT: "has no attribute 'set_eagle3_layers_to_capture'",
    DENSE: "too many values to unpack",
    MOE: "too many values to unpack",
}


@pytest.mark.parametrize("architecture", [TEXT, DENSE, MOE])
def test_unpatched_fails_and_patched_captures(proven: tuple[int, dict[str, Any]], architecture: str) -> None:
    _, payload = proven
    target = by_architecture(payload)[architecture]
    assert target["unpatched"]["status"] == "failed"
    assert UNPATCHED_ERRORS[architecture] in target["unpatched"]["error"]
    patched = target["patched"]
    assert patched["capture"] == "passed", patched["detail"]
    # The drafter asks for ids [1, 3, 5]: SGLang's +1 makes them decoder layers 2, 4 and 6.
    assert patched["flagged_layers"] == [2, 4, 6] == patched["expected_layers"]
    assert patched["aux_equals_layer_outputs"] is True
    assert patched["draft_consumed"] is True


@pytest.mark.parametrize("architecture", [TEXT, DENSE, MOE])
def test_speculative_decode_is_token_identical(proven: tuple[int, dict[str, Any]], architecture: str) -> None:
    patched = by_architecture(proven[1])[architecture]["patched"]
    assert patched["decode"] == "token-identical", patched["detail"]
    assert patched["accept_length"] is not None and patched["accept_length"] >= 1.0


@pytest.mark.parametrize(
    ("sabotage", "broken"),
    [("shift0", "aux_equals_layer_outputs"), ("drop-one", "draft_consumed")],
)
def test_a_wrong_hook_fails_the_proof(sabotage: str, broken: str) -> None:
    """Our hook broken on purpose after apply: the evidence must say so."""
    code, payload = proof(
        "--sglang", RELEASE, "--targets", TEXT, "--no-decode", "--max-new-tokens", "2", "--sabotage", sabotage
    )
    patched = by_architecture(payload)[TEXT]["patched"]
    assert code == 1
    assert patched["capture"] == "failed"
    assert patched[broken] is False
    assert payload["revert_byte_identical"] is True


def test_a_release_with_only_the_vl_wrappers() -> None:
    """0.5.16 (0.5.11-0.5.16 have no qwen3_5_text.py): the dense wrapper fails unpatched and captures patched."""
    code, payload = proof("--sglang", "0.5.16", "--targets", DENSE, "--no-decode", "--max-new-tokens", "2")
    target = by_architecture(payload)[DENSE]
    assert target["unpatched"]["status"] == "failed"
    assert UNPATCHED_ERRORS[DENSE] in target["unpatched"]["error"]
    assert target["patched"]["capture"] == "passed", target["patched"]["detail"]
    assert target["patched"]["aux_equals_layer_outputs"] and target["patched"]["draft_consumed"]
    assert payload["revert_byte_identical"] is True and code == 0


def test_a_native_release_captures_as_shipped() -> None:
    """The control: 0.5.23 has upstream's fix, so `apply` changes nothing and capture passes."""
    code, payload = proof("--sglang", "0.5.23", "--targets", TEXT, "--no-decode", "--max-new-tokens", "2")
    assert payload["mode"] == "native"
    target = by_architecture(payload)[TEXT]
    assert target["unpatched"]["status"] == "not-run"
    assert target["patched"]["capture"] == "passed", target["patched"]["detail"]
    assert target["patched"]["flagged_layers"] == [2, 4, 6]
    assert payload["revert_byte_identical"] is True and code == 0


def test_the_overlay_captures_without_changing_a_file() -> None:
    """--mode overlay: the same evidence through SGLANG_EXTERNAL_MODEL_PACKAGE, every model file as the wheel's."""
    code, payload = proof(
        "--sglang", RELEASE, "--mode", "overlay", "--targets", TEXT, DENSE, "--no-decode", "--max-new-tokens", "2"
    )
    assert payload["delivery"] == "overlay" and payload["install_untouched"] is True
    assert "revert_byte_identical" not in payload
    for architecture in (TEXT, DENSE):
        target = by_architecture(payload)[architecture]
        assert UNPATCHED_ERRORS[architecture] in target["unpatched"]["error"]
        patched = target["patched"]
        assert patched["capture"] == "passed", patched["detail"]
        assert patched["flagged_layers"] == [2, 4, 6] == patched["expected_layers"]
        assert patched["aux_equals_layer_outputs"] is True and patched["draft_consumed"] is True
    assert code == 0


REGISTRY_PROBE = """
import json
from sglang.srt.models.registry import ModelRegistry
found = {}
for arch in ARCHS:
    cls = ModelRegistry.resolve_model_cls([arch])[0]
    found[arch] = getattr(cls, "set_eagle3_layers_to_capture").__module__
print(json.dumps(found))
"""


def test_every_affected_architecture_resolves_to_the_overlays_hook(tmp_path: Path) -> None:
    """SGLang's own registry, with the overlay: the Qwen3.5 classes and the InternS2 subclasses get its hook."""
    root = Path(os.environ.get("EAGLE3_PATCH_RUNTIME_CACHE", Path.home() / ".cache" / "eagle3-patch" / "runtime"))
    python = root / RELEASE / "venv" / "bin" / "python"
    if not python.exists():
        proof("--sglang", RELEASE, "--targets", TEXT, "--no-decode", "--max-new-tokens", "2")  # builds it
    made = subprocess.run(
        [str(python), "-m", "eagle3_patch", "overlay", "--python", str(python), "--out", str(tmp_path), "--json"],
        capture_output=True, text=True, check=False, cwd=python.parent,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    child = tmp_path / "child"  # the child scripts: their sitecustomize applies SGLang's CPU workarounds
    child.mkdir()
    copy_child_scripts(child)
    archs = [TEXT, "Qwen3_5MoeForCausalLM", DENSE, MOE, *INTERNS2]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(child)]),
        "SGLANG_EXTERNAL_MODEL_PACKAGE": "eagle3_overlay",
        "EAGLE3_PATCH_CPU_WORKAROUNDS": str(REPO / "scripts"),
        "TRITON_INTERPRET": "1",
        "SGLANG_USE_CPU_ENGINE": "0",
        "CUDA_VISIBLE_DEVICES": "",
    }
    probe = f"ARCHS = {archs!r}\n{REGISTRY_PROBE}"
    done = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, env=env, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == dict.fromkeys(archs, "eagle3_overlay")


INTERNS2 = ["InternS2PreviewForConditionalGeneration", "InternS2MobiusForConditionalGeneration"]
