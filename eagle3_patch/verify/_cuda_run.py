"""The cuda level of ``eagle3-patch verify``, run by the interpreter that has SGLang.

Copied with tiny_checkpoints.py into a temporary folder and started as
``python _cuda_run.py probe`` or ``python _cuda_run.py run REQUEST.json``; it
imports nothing from eagle3_patch. It prints one line starting with RESULT_TAG
followed by JSON; everything else on stdout/stderr is SGLang's own logging.

probe: can this interpreter import torch, see a CUDA device, and import sglang?
run:   write the tiny checkpoints (unless the user gave their own), then run
       sglang.Engine on the same prompts, greedy: by default without and with
       EAGLE-3, or the runs the request lists. An EAGLE-3 run records capture
       evidence inside SGLang's scheduler (capture_evidence.py, loaded there by
       the sitecustomize.py beside this script) and returns its verdict.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import traceback
from pathlib import Path
from typing import Any

RESULT_TAG = "EAGLE3-PATCH-RESULT "
PROMPTS = ("The capital of France is", "def fibonacci(n):")


#: A traceback's closing line: ``Name: message``, the name ending in Error, Exception or Exit.
_EXCEPTION_LINE = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?[A-Z]\w*(?:Error|Exception|Exit)(?::.*)?$")


def last_exception(log: str) -> str:
    """The last exception line in a log, else its last non-empty line.

    When SGLang's scheduler fails during start-up it sends SIGQUIT to the process
    that started the Engine, whose handler kills that process: the child can
    then print no result, and the reason is only in the log.
    """
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    found = [line for line in lines if _EXCEPTION_LINE.match(line)]
    return (found or lines or ["no output"])[-1]


def emit(payload: dict[str, Any]) -> None:
    sys.stdout.write(RESULT_TAG + json.dumps(payload) + "\n")
    sys.stdout.flush()


def read_result(stdout: str) -> dict[str, Any] | None:
    """The parent's side of ``emit``: the child's last answer, None if it gave none."""
    answers = [line[len(RESULT_TAG) :] for line in stdout.splitlines() if line.startswith(RESULT_TAG)]
    if not answers:
        return None
    answer: dict[str, Any] = json.loads(answers[-1])
    return answer


def last_line(exc: BaseException) -> str:
    lines = traceback.format_exception_only(type(exc), exc)
    return lines[-1].strip() if lines else type(exc).__name__


def probe() -> dict[str, Any]:
    answer: dict[str, Any] = {"python": sys.executable}
    try:
        import torch
    except Exception as exc:  # noqa: BLE001 - any import failure means "no torch"
        answer["torch_error"] = last_line(exc)
        return answer
    answer["torch"] = torch.__version__
    answer["cuda"] = bool(torch.cuda.is_available())
    if answer["cuda"]:
        answer["device"] = torch.cuda.get_device_name(0)
    try:
        import sglang
    except Exception as exc:  # noqa: BLE001 - the last line is the reason we report
        answer["sglang_error"] = last_line(exc)
        return answer
    answer["sglang"] = getattr(sglang, "__version__", "unknown")
    answer["sglang_dir"] = str(Path(sglang.__file__).resolve().parent)
    return answer


def generate(kwargs: dict[str, Any], max_new_tokens: int, prompts: dict[str, Any], warmup: bool) -> dict[str, Any]:
    """One Engine: start it, optionally warm it up, time a greedy batch, shut it down."""
    import sglang

    sampling = {"temperature": 0.0, "max_new_tokens": max_new_tokens, "ignore_eos": True}
    engine = sglang.Engine(**kwargs)
    try:
        if warmup:
            engine.generate(**prompts, sampling_params={**sampling, "max_new_tokens": 2})
        start = time.perf_counter()
        outputs = engine.generate(**prompts, sampling_params=sampling)
        elapsed = time.perf_counter() - start
    finally:
        engine.shutdown()
    tokens = [list(out["output_ids"]) for out in outputs]
    accept = []
    for out in outputs:
        meta = out.get("meta_info", {})
        if meta.get("spec_accept_length") is not None:
            accept.append(float(meta["spec_accept_length"]))
        elif meta.get("spec_verify_ct"):
            accept.append(meta["completion_tokens"] / meta["spec_verify_ct"])
    return {
        "tokens": tokens,
        "seconds": elapsed,
        "tokens_per_second": sum(len(t) for t in tokens) / elapsed if elapsed > 0 else None,
        "accept_length": sum(accept) / len(accept) if accept else None,
    }


def draft_layer_ids(draft: Path) -> list[int] | None:
    """The draft config's ``eagle_aux_hidden_state_layer_ids`` (None: SGLang's default layers)."""
    config = json.loads((draft / "config.json").read_text(encoding="utf-8"))
    ids = config.get("eagle_config", {}).get("eagle_aux_hidden_state_layer_ids")
    return None if ids is None else [int(i) for i in ids]


def run(request: dict[str, Any]) -> dict[str, Any]:
    """Each requested run in turn; an EAGLE-3 run also returns the capture evidence."""
    import capture_evidence
    import tiny_checkpoints

    target = Path(request["target"])
    draft = Path(request["draft"])
    if request.get("write_checkpoints"):
        config = tiny_checkpoints.write_target(target, request["architecture"])
        tiny_checkpoints.write_drafter(draft, config)
    runs = request.get("runs") or [
        {"name": "plain", "kwargs": request["plain_kwargs"]},
        {"name": "eagle3", "kwargs": request["eagle3_kwargs"], "evidence": True},
    ]
    prompts = {"input_ids": request["prompt_ids"]} if request.get("prompt_ids") else {"prompt": list(PROMPTS)}
    draft_ids = draft_layer_ids(draft)
    evidence_dir = Path(request["evidence_dir"])
    result: dict[str, Any] = {"draft_ids": draft_ids}
    for spec in runs:
        name = spec["name"]
        evidence = evidence_dir / f"{name}.evidence.jsonl" if spec.get("evidence") else None
        if evidence is not None:
            evidence.unlink(missing_ok=True)
            os.environ[capture_evidence.ENV_FILE] = str(evidence)
            os.environ[capture_evidence.ENV_DRAFT_IDS] = json.dumps(draft_ids)
        try:
            result[name] = generate(spec["kwargs"], request["max_new_tokens"], prompts, request.get("warmup", True))
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which names the run
            result[name] = {"error": last_line(exc), "traceback": traceback.format_exc()[-4000:]}
        finally:
            os.environ.pop(capture_evidence.ENV_FILE, None)
            os.environ.pop(capture_evidence.ENV_DRAFT_IDS, None)
        if evidence is not None:
            result[name]["evidence"] = capture_evidence.summarize(capture_evidence.read(evidence))
        if "error" in result[name] and request.get("stop_on_error", True):
            break
    return result


def main(argv: list[str]) -> int:
    if argv[:1] == ["probe"]:
        emit(probe())
        return 0
    if argv[:1] == ["run"] and len(argv) == 2:
        request = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
        os.environ.update(request.get("env", {}))
        emit(run(request))
        return 0
    sys.stderr.write("usage: _cuda_run.py probe | run REQUEST.json\n")
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
