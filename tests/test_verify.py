"""verify on fixture installs: the static chain, the behaviour checks, the cuda level's decisions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from eagle3_patch.classify import InstallReport
from eagle3_patch.errors import EXIT_CUDA_UNAVAILABLE, EXIT_OK, EXIT_UNPATCHED, EXIT_UNSUPPORTED, EXIT_USAGE
from eagle3_patch.spec import load_spec
from eagle3_patch.verify import FAILED, PASSED, SKIPPED, CudaRequest, Level, VerifyReport, run_levels
from eagle3_patch.verify import cuda as verify_module
from tests.conftest import MakeInstall, classify_site, patch_site, run_cli, run_json

NO_CUDA = CudaRequest(python=sys.executable)


def run_verify(report: InstallReport, cuda: CudaRequest = NO_CUDA) -> VerifyReport:
    return run_levels(report, load_spec(), cuda)


def broken(level: Level) -> list[str]:
    return [f"{c.subject}: {c.detail}" for c in level.checks if not c.ok and c.required]


def models(site: Path) -> Path:
    return site / "sglang" / "srt" / "models"


def test_unpatched_fails_static_naming_each_broken_link(make_install: MakeInstall) -> None:
    result = run_verify(classify_site(make_install("capture_no_hook", "text_wrapper")))
    static = result.level("static")
    assert static.status == FAILED
    assert broken(static) == [
        "Qwen3_5ForCausalLM.set_eagle3_layers_to_capture: Qwen3_5ForCausalLM (qwen3_5.py) has no "
        "set_eagle3_layers_to_capture: nothing flags layers",
        "Qwen3_5ForConditionalGeneration.set_eagle3_layers_to_capture (inherited from "
        "Qwen3VLForConditionalGeneration in qwen3_vl.py): never calls self.model.set_eagle3_layers_to_capture; "
        "it writes self.model.layers_to_capture, which Qwen3_5ForCausalLM.forward never reads",
        "Qwen3_5MoeForConditionalGeneration.set_eagle3_layers_to_capture (inherited from "
        "Qwen3VLForConditionalGeneration in qwen3_vl.py): never calls self.model.set_eagle3_layers_to_capture; "
        "it writes self.model.layers_to_capture, which Qwen3_5ForCausalLM.forward never reads",
        "Qwen3_5ForCausalLM.set_eagle3_layers_to_capture: Qwen3_5ForCausalLM (qwen3_5_text.py) has no "
        "set_eagle3_layers_to_capture, own or inherited",
    ]
    assert [result.level(n).status for n in ("behaviour", "cuda")] == [SKIPPED, SKIPPED]
    assert result.exit_code == EXIT_UNPATCHED


def test_patched_passes_static_and_behaviour(make_install: MakeInstall) -> None:
    result = run_verify(patch_site(make_install("capture_no_hook", "text_wrapper")))
    assert result.level("static").status == PASSED
    behaviour = result.level("behaviour")
    assert behaviour.status == PASSED, broken(behaviour)
    assert all(c.ok and c.required for c in behaviour.checks), "our hooks are held to every check"
    subjects = {c.subject for c in behaviour.checks}
    assert (
        "Qwen3_5ForConditionalGeneration.set_eagle3_layers_to_capture "
        "maps draft id i to layer i + 1 and turns capture on" in subjects
    )
    assert len(behaviour.checks) == 3 + 3 * 4
    assert result.level("cuda").status == SKIPPED


def test_native_passes_and_reports_what_upstream_lacks(make_install: MakeInstall) -> None:
    result = run_verify(classify_site(make_install("native")))
    behaviour = result.level("behaviour")
    assert result.level("static").status == PASSED
    assert behaviour.status == PASSED
    unoffered = [c.subject for c in behaviour.checks if not c.ok]
    assert "Qwen3_5ForCausalLM.set_eagle3_layers_to_capture rejects a layer it does not have" in unoffered
    assert all(not c.required for c in behaviour.checks if not c.ok)
    assert "not offered by upstream" in behaviour.detail


def test_wrong_shift_fails_behaviour(make_install: MakeInstall) -> None:
    site = make_install("capture_no_hook")
    patch_site(site)
    target = models(site) / "qwen3_5.py"
    target.write_text(target.read_text().replace("layer_id + 1 for layer_id", "layer_id + 2 for layer_id", 1))
    behaviour = run_verify(classify_site(site)).level("behaviour")
    assert behaviour.status == FAILED
    assert any("maps draft id i to layer i + 1" in line and "not [2, 33, 62]" in line for line in broken(behaviour))


def test_decoder_hook_that_sets_no_flag_fails_static(make_install: MakeInstall) -> None:
    site = make_install("capture_no_hook")
    patch_site(site)
    target = models(site) / "qwen3_5.py"
    target.write_text(target.read_text().replace("self.layers[layer_id]._is_layer_to_capture = True", "pass"))
    static = run_verify(classify_site(site)).level("static")
    assert static.status == FAILED
    assert broken(static) == [
        "Qwen3_5ForCausalLM.set_eagle3_layers_to_capture: never sets _is_layer_to_capture, "
        "the attribute Qwen3_5ForCausalLM.forward reads"
    ]


def test_wrapper_forward_that_ignores_the_tuple_fails_static(make_install: MakeInstall) -> None:
    site = make_install("capture_no_hook")
    patch_site(site)
    base = models(site) / "qwen3_vl.py"
    base.write_text(base.read_text().replace("if self.capture_aux_hidden_states:", "if False:"))
    static = run_verify(classify_site(site)).level("static")
    assert static.status == FAILED
    assert any(
        "forward (inherited from Qwen3VLForConditionalGeneration in qwen3_vl.py): reads neither" in line
        for line in broken(static)
    )


def test_cli_verify_before_and_after_apply(runner: CliRunner, make_install: MakeInstall) -> None:
    site = make_install("capture_no_hook")
    root = ["--sglang-root", str(site)]
    before = run_cli(runner, "verify", *root)
    assert before.exit_code == EXIT_UNPATCHED
    assert "failed: static" in before.stdout and "which Qwen3_5ForCausalLM.forward never reads" in before.stdout
    run_cli(runner, "apply", *root)
    code, payload = run_json(runner, "verify", *root)
    assert code == EXIT_OK
    assert set(payload["levels"]) == {"static", "behaviour", "cuda"}
    assert payload["levels"]["static"]["status"] == PASSED
    assert payload["levels"]["cuda"]["status"] == SKIPPED and payload["levels"]["cuda"]["detail"]
    assert all({"subject", "ok", "required", "detail"} <= set(c) for c in payload["levels"]["behaviour"]["checks"])
    assert run_cli(runner, "verify", "--cuda", *root).exit_code == EXIT_CUDA_UNAVAILABLE


def test_cli_verify_refuses_unsupported_and_half_checkpoints(runner: CliRunner, make_install: MakeInstall) -> None:
    assert run_cli(runner, "verify", "--sglang-root", str(make_install("pre_capture"))).exit_code == EXIT_UNSUPPORTED
    site = make_install("capture_no_hook")
    result = run_cli(runner, "verify", "--sglang-root", str(site), "--target", str(site))
    assert result.exit_code == EXIT_USAGE and "--target and --draft together" in result.stderr


@pytest.mark.parametrize(
    ("probe", "reason"),
    [
        ({"python": "py", "torch_error": "ModuleNotFoundError: No module named 'torch'"}, "no torch for py"),
        ({"python": "py", "torch": "2.13.0+cpu", "cuda": False}, "no CUDA device visible to torch 2.13.0+cpu"),
        (
            {"python": "py", "torch": "2.13", "cuda": True, "sglang_error": "ImportError: libcuda.so.1"},
            "sglang does not import in py: ImportError: libcuda.so.1",
        ),
        (
            {"python": "py", "torch": "2.13", "cuda": True, "sglang": "0.5.21", "sglang_dir": "/elsewhere"},
            "imports sglang from",
        ),
        ({"child_error": "exit status 139"}, "the probe failed: exit status 139"),
    ],
)
def test_reasons_the_cuda_level_cannot_run(make_install: MakeInstall, probe: dict, reason: str) -> None:
    report = classify_site(make_install("capture_no_hook"))
    assert reason in verify_module._cannot_run(probe, report)


_CAPTURED = {"capture": "passed", "flagged_layers": [2, 4, 6], "problems": []}


def _run(tokens: list[list[int]], accept: float | None = None, evidence: dict | None = None) -> dict:
    run = {"tokens": tokens, "seconds": 0.5, "tokens_per_second": 64.0, "accept_length": accept}
    return {**run, "evidence": evidence or _CAPTURED}


@pytest.mark.parametrize(
    ("result", "status", "detail"),
    [
        ({"plain": _run([[1, 2], [3, 4]]), "eagle3": _run([[1, 2], [3, 4]], 2.5)}, PASSED, "mean accept length 2.50"),
        (
            {"plain": _run([[1, 2], [3, 4]]), "eagle3": _run([[1, 2], [3, 9]], 2.5)},
            FAILED,
            "prompt 1: EAGLE-3 tokens differ from greedy from position 1",
        ),
        ({"plain": _run([[1]]), "eagle3": _run([[1]], None)}, FAILED, "no mean accept length"),
        (
            {"plain": _run([[1]]), "eagle3": {"error": "ValueError: too many values to unpack"}},
            FAILED,
            "with EAGLE-3 failed: ValueError: too many values to unpack",
        ),
        ({"child_error": "gave no answer within 1800 s"}, FAILED, "gave no answer"),
        (
            {
                "plain": _run([[1]]),
                "eagle3": _run([[1]], 1.0, {"capture": "failed", "problems": ["flagged layers [1, 3, 5]"]}),
            },
            FAILED,
            "capture evidence failed: flagged layers [1, 3, 5]",
        ),
        ({"plain": _run([[1, 2], [3, 4]]), "eagle3": _run([[1, 2]], 2.0)}, FAILED, "1 EAGLE-3 outputs for 2"),
        ({"plain": _run([]), "eagle3": _run([], 2.0)}, FAILED, "0 EAGLE-3 outputs for 0"),
        ({"plain": _run([[]]), "eagle3": _run([[]], 2.0)}, FAILED, "prompt 0: EAGLE-3 tokens differ"),
    ],
)
def test_judging_the_two_runs(result: dict, status: str, detail: str) -> None:
    level = verify_module.judge_runs(result, "tiny target")
    assert level.status == status
    assert detail in level.detail


def test_child_probe_runs_in_a_real_interpreter(tmp_path: Path) -> None:
    """The copied child script answers the probe in a fresh process (here: no CUDA)."""
    script = Path(verify_module.__file__).with_name("_cuda_run.py")
    answer = verify_module._child(sys.executable, [str(script), "probe"], timeout=120)
    assert answer["python"] == sys.executable
    assert "torch" in answer or "torch_error" in answer
    if "torch" in answer:
        import torch

        assert answer["cuda"] == torch.cuda.is_available()
    usage = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=False)
    assert usage.returncode == 2


def test_child_run_writes_checkpoints_and_reports_a_failed_engine(tmp_path: Path) -> None:
    """The `run` half of the child on this machine: checkpoints are written, the Engine failure is named."""
    from tests.conftest import needs

    needs("torch")
    needs("tokenizers")
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    verify_module.copy_child_scripts(scripts)
    request = {
        "architecture": "Qwen3_5ForCausalLM",
        "target": str(tmp_path / "target"),
        "draft": str(tmp_path / "draft"),
        "write_checkpoints": True,
        "plain_kwargs": {"model_path": str(tmp_path / "target")},
        "eagle3_kwargs": {"model_path": str(tmp_path / "target")},
        "max_new_tokens": 4,
        "evidence_dir": str(tmp_path),
        "env": {"SGLANG_ENABLE_SPEC_V2": "1"},
    }
    (tmp_path / "request.json").write_text(json.dumps(request))
    result = verify_module._child(
        sys.executable, [str(scripts / "_cuda_run.py"), "run", str(tmp_path / "request.json")], timeout=300
    )
    for folder in ("target", "draft"):
        assert {"config.json", "model.safetensors"} <= {p.name for p in (tmp_path / folder).iterdir()}
    assert (tmp_path / "target" / "tokenizer.json").exists()
    try:
        import sglang  # noqa: F401
    except ImportError:
        assert "sglang" in result["plain"]["error"] and "eagle3" not in result
        level = verify_module.judge_runs(result, "tiny target")
        assert level.status == FAILED and "without speculative decoding failed" in level.detail


@pytest.mark.parametrize(
    ("log", "reason"),
    [
        (
            'Traceback (most recent call last):\n  File "x.py", line 1\n    raise AttributeError(\n'
            "AttributeError: 'Qwen3_5ForCausalLM' object has no attribute 'set_eagle3_layers_to_capture'\n"
            "[2026-11-27 08:48:34] Received sigquit from a child process. It usually means the child failed.\n",
            "AttributeError: 'Qwen3_5ForCausalLM' object has no attribute 'set_eagle3_layers_to_capture'",
        ),
        ("ValueError: too many values to unpack (expected 2)\n", "ValueError: too many values to unpack (expected 2)"),
        ("torch.OutOfMemoryError: CUDA out of memory\n", "torch.OutOfMemoryError: CUDA out of memory"),
        ("just a log line\n\n", "just a log line"),
        ("", "no output"),
    ],
)
def test_a_killed_child_is_explained_by_the_last_exception_in_its_log(log: str, reason: str) -> None:
    """SGLang kills the process that started a failing Engine: the reason is only in the log."""
    from eagle3_patch.verify._cuda_run import last_exception

    assert last_exception(log) == reason


def test_the_cuda_child_loads_an_overlay_after_its_own_scripts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", "/user")
    plain = verify_module._child_env(Path("/scripts"), {})
    assert plain["PYTHONPATH"] == "/scripts" + os.pathsep + "/user" and "SGLANG_EXTERNAL_MODEL_PACKAGE" not in plain
    overlaid = verify_module._child_env(
        Path("/scripts"), {"PYTHONPATH": "/opt/eagle3", "SGLANG_EXTERNAL_MODEL_PACKAGE": "eagle3_overlay"}
    )
    assert overlaid["PYTHONPATH"].split(os.pathsep) == ["/scripts", "/opt/eagle3", "/user"]
    assert overlaid["SGLANG_EXTERNAL_MODEL_PACKAGE"] == "eagle3_overlay"
    assert overlaid["SGLANG_ENABLE_SPEC_V2"] == "1"
