"""The cuda level: serve a tiny Qwen3.5 target with and without EAGLE-3 through ``sglang.Engine``.

It runs in a child process of the interpreter that has SGLang (``_cuda_run.py``
and its helpers are copied beside it; they import nothing from eagle3_patch),
and passes only when capture is proven (``capture_evidence``) and the tokens
with and without EAGLE-3 are equal. Here, without a GPU, it reports skipped;
``scripts/runtime_proof.py`` runs the same child on CPU.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eagle3_patch.classify import InstallReport
from eagle3_patch.errors import EngineArgsError
from eagle3_patch.verify import tiny_checkpoints
from eagle3_patch.verify._cuda_run import last_exception, read_result
from eagle3_patch.verify.engine_args import SPEC_ENV, common_options, eagle3_options, engine_kwargs, read_server_args
from eagle3_patch.verify.levels import FAILED, PASSED, SKIPPED, Level

_CHILD_TIMEOUT_S = 1800


@dataclass(frozen=True)
class CudaRequest:
    """What the cuda level needs: which interpreter runs SGLang, and which checkpoints."""

    python: str
    required: bool = False
    target: Path | None = None
    draft: Path | None = None
    max_new_tokens: int = 16
    #: Variables that load an overlay package in SGLang's processes (``eagle3-patch overlay``).
    env: tuple[tuple[str, str], ...] = ()


def run_cuda_level(report: InstallReport, cuda: CudaRequest) -> Level:
    """Serve a Qwen3.5 target with and without EAGLE-3 through sglang.Engine, in a child process."""
    folder = Path(tempfile.mkdtemp(prefix="eagle3-patch-verify-"))
    try:
        scripts = folder / "scripts"
        scripts.mkdir()
        copy_child_scripts(scripts)
        probe = _child(cuda.python, [str(scripts / "_cuda_run.py"), "probe"], timeout=300)
        reason = _cannot_run(probe, report)
        if reason:
            return Level("cuda", SKIPPED, reason)
        text_only = (report.install.models_dir / "qwen3_5_text.py").exists()
        architecture = tiny_checkpoints.TEXT_ARCHITECTURE if text_only else tiny_checkpoints.MULTIMODAL_ARCHITECTURE
        target = cuda.target or folder / "target"
        draft = cuda.draft or folder / "draft"
        try:
            server_args = read_server_args(report.install)
            common = common_options(model_path=str(target), mem_fraction=0.3, multimodal=not text_only)
            plain = engine_kwargs(server_args, common)
            eagle3 = engine_kwargs(server_args, common + eagle3_options(draft_path=str(draft)))
        except EngineArgsError as exc:
            return Level("cuda", FAILED, str(exc))
        request = {
            "architecture": architecture,
            "target": str(target),
            "draft": str(draft),
            "write_checkpoints": cuda.target is None,
            "plain_kwargs": plain,
            "eagle3_kwargs": eagle3,
            "max_new_tokens": cuda.max_new_tokens,
            "evidence_dir": str(folder),
            "env": SPEC_ENV,
        }
        (folder / "request.json").write_text(json.dumps(request), encoding="utf-8")
        result = _child(
            cuda.python,
            [str(scripts / "_cuda_run.py"), "run", str(folder / "request.json")],
            timeout=_CHILD_TIMEOUT_S,
            env=_child_env(scripts, dict(cuda.env)),
        )
        return judge_runs(result, architecture if cuda.target is None else str(target))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


#: What the child needs beside it; it imports nothing from eagle3_patch.
CHILD_FILES = {
    "_cuda_run.py": "_cuda_run.py",
    "tiny_checkpoints.py": "tiny_checkpoints.py",
    "tiny_tensors.py": "tiny_tensors.py",
    "capture_evidence.py": "capture_evidence.py",
    # Loads the evidence recorder into the scheduler processes SGLang spawns.
    "_sitecustomize.py": "sitecustomize.py",
}


def copy_child_scripts(folder: Path) -> None:
    """Lay out the child script and its helpers in ``folder`` (also used by scripts/runtime_proof.py)."""
    for source, name in CHILD_FILES.items():
        shutil.copyfile(Path(__file__).with_name(source), folder / name)


def _child_env(scripts: Path, overlay: dict[str, str]) -> dict[str, str]:
    """The spec-v2 switch, the child scripts first on the path, then an overlay's folder and package."""
    path = os.pathsep.join(p for p in (str(scripts), overlay.get("PYTHONPATH")) if p)
    return {**SPEC_ENV, **overlay, "PYTHONPATH": _with_path(path)}


def _with_path(folder: str) -> str:
    existing = os.environ.get("PYTHONPATH")
    return folder if not existing else folder + os.pathsep + existing


def _child(python: str, args: list[str], *, timeout: int, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run the child script; its answer is the last RESULT line, else the reason it has none."""
    try:
        completed = subprocess.run(
            [python, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={**os.environ, **(env or {})},
        )
    except subprocess.TimeoutExpired:
        return {"child_error": f"gave no answer within {timeout} s"}
    except OSError as exc:
        return {"child_error": f"cannot run {python} ({exc.strerror})"}
    answer = read_result(completed.stdout)
    if answer is None:
        reason = last_exception(completed.stderr) if completed.stderr.strip() else "no output"
        return {"child_error": f"exit status {completed.returncode}: {reason}"}
    return answer


def _cannot_run(probe: dict[str, Any], report: InstallReport) -> str:
    """Why the cuda level cannot run here, or "" when it can."""
    python = probe.get("python", "the interpreter")
    if "child_error" in probe:
        return f"the probe failed: {probe['child_error']}"
    if "torch" not in probe:
        return f"no torch for {python} ({probe.get('torch_error', 'not importable')})"
    if not probe.get("cuda"):
        return f"no CUDA device visible to torch {probe['torch']} ({python})"
    if "sglang" not in probe:
        return f"sglang does not import in {python}: {probe.get('sglang_error', 'unknown error')}"
    installed = Path(probe.get("sglang_dir", "")).resolve()
    if installed != report.install.package_dir.resolve():
        return f"{python} imports sglang from {installed}, not the install being verified"
    return ""


def token_mismatch(plain: list[list[int]], eagle3: list[list[int]]) -> str:
    """Why the speculative outputs are not the greedy ones ("" when every prompt's tokens are equal)."""
    if not plain or len(plain) != len(eagle3):
        return f"{len(eagle3)} EAGLE-3 outputs for {len(plain)} prompts served plainly"
    for index, (expected, got) in enumerate(zip(plain, eagle3, strict=True)):
        if not expected or expected != got:
            position = next((i for i, (a, b) in enumerate(zip(expected, got, strict=False)) if a != b), len(expected))
            return f"prompt {index}: EAGLE-3 tokens differ from greedy from position {position}"
    return ""


def judge_runs(result: dict[str, Any], what: str) -> Level:
    """The cuda level's verdict on the child's runs (also applied by scripts/runtime_proof.py on CPU)."""
    if "child_error" in result:
        return Level("cuda", FAILED, f"the run gave no result: {result['child_error']}")
    for name, label in (("plain", "without speculative decoding"), ("eagle3", "with EAGLE-3")):
        run = result.get(name)
        if run is None or "error" in run:
            reason = run["error"] if run else "did not run"
            return Level("cuda", FAILED, f"serving {what} {label} failed: {reason}")
    plain, eagle3 = result["plain"], result["eagle3"]
    evidence = eagle3.get("evidence", {})
    if evidence.get("capture") != "passed":
        problems = "; ".join(evidence.get("problems", ["no capture evidence was recorded"]))
        return Level("cuda", FAILED, f"capture evidence failed: {problems}")
    if eagle3.get("accept_length") is None:
        return Level("cuda", FAILED, "the EAGLE-3 run reported no mean accept length")
    mismatch = token_mismatch(plain["tokens"], eagle3["tokens"])
    if mismatch:
        return Level("cuda", FAILED, mismatch)
    return Level(
        "cuda",
        PASSED,
        f"{what}: layers {evidence['flagged_layers']} captured bit for bit and fed to the drafter; "
        f"tokens equal with and without EAGLE-3; mean accept length {eagle3['accept_length']:.2f}; "
        f"decode {plain['tokens_per_second']:.1f} tok/s plain, {eagle3['tokens_per_second']:.1f} tok/s EAGLE-3",
    )
