"""The cuda level of ``eagle3-patch verify``, run by the interpreter that has SGLang.

Copied with tiny_checkpoints.py into a temporary folder and started as
``python _cuda_run.py probe`` or ``python _cuda_run.py run REQUEST.json``; it
imports nothing from eagle3_patch. It prints one line starting with RESULT_TAG
followed by JSON; everything else on stdout/stderr is SGLang's own logging.

probe: can this interpreter import torch, see a CUDA device, and import sglang?
run:   write the tiny checkpoints (unless the user gave their own), then run
       sglang.Engine twice on the same prompts, greedy, without and with EAGLE-3.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

RESULT_TAG = "EAGLE3-PATCH-RESULT "
PROMPTS = ("The capital of France is", "def fibonacci(n):")


def emit(payload: dict[str, Any]) -> None:
    sys.stdout.write(RESULT_TAG + json.dumps(payload) + "\n")
    sys.stdout.flush()


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


def generate(kwargs: dict[str, Any], max_new_tokens: int) -> dict[str, Any]:
    """One Engine: start it, warm it up, time a greedy batch, shut it down."""
    import sglang

    sampling = {"temperature": 0.0, "max_new_tokens": max_new_tokens, "ignore_eos": True}
    engine = sglang.Engine(**kwargs)
    try:
        engine.generate(prompt=list(PROMPTS), sampling_params={**sampling, "max_new_tokens": 2})
        start = time.perf_counter()
        outputs = engine.generate(prompt=list(PROMPTS), sampling_params=sampling)
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


def run(request: dict[str, Any]) -> dict[str, Any]:
    import tiny_checkpoints

    target = Path(request["target"])
    draft = Path(request["draft"])
    if request.get("write_checkpoints"):
        config = tiny_checkpoints.write_target(target, request["architecture"])
        tiny_checkpoints.write_drafter(draft, config)
    result: dict[str, Any] = {}
    for name in ("plain", "eagle3"):
        try:
            result[name] = generate(request[f"{name}_kwargs"], request["max_new_tokens"])
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which names the run
            result[name] = {"error": last_line(exc), "traceback": traceback.format_exc()[-4000:]}
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
