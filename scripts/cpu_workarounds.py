"""Test support: what real SGLang needs to run on a CPU-only machine, and nothing else.

Used by ``scripts/runtime_proof.py`` only; ``eagle3-patch`` itself never imports
it. Every item bridges a gap in SGLang's CPU path or in the packages it pulls in;
none replaces the code under test (the Qwen3.5 model classes, SGLang's capture
wiring, the EAGLE-3 worker and drafter). Each has a one-line reason, listed in
the proof's JSON and in the README.

Loaded into every process of the runtime interpreter (SGLang's scheduler runs in
a spawned child) by ``eagle3_patch/_sitecustomize.py`` when
``EAGLE3_PATCH_CPU_WORKAROUNDS`` names this folder.
"""

from __future__ import annotations

from typing import Any

#: Requires-Dist entries not installed, by canonical name, with the reason.
EXCLUDED_REQUIREMENTS = {
    "cuda-tile": "its sdist downloads from a host other than the package index, so it cannot install here",
    "flashinfer-python": "CUDA-only; it asserts a GPU at import, and SGLang only catches ImportError",
    "torchaudio": "a CUDA build that fails to import beside CPU torch (no libc10_cuda.so); transformers imports it",
    "torchcodec": "a CUDA build that fails to import beside CPU torch; nothing on this path needs it",
}

#: Requirements added to the release's own, with the reason.
ADDED_REQUIREMENTS = ["triton==3.6.0"]
_ADDED_REASONS = {
    "triton==3.6.0": "Triton's interpreter runs SGLang's Triton kernels on CPU; 3.9's rejects block pointers",
}

#: Environment for every process that runs SGLang here.
ENGINE_ENV = {
    "TRITON_INTERPRET": "1",
}
_ENV_REASONS = {
    "TRITON_INTERPRET": "the GatedDeltaNet layers and the tree/verify kernels have Triton kernels only: interpret them",
}

_APPLIED: list[dict[str, str]] = []


def describe(excluded: list[dict[str, str]]) -> list[dict[str, str]]:
    """Every workaround the proof used, for its JSON: install, environment, runtime."""
    items = [{"name": f"not installed: {e['requirement'].split(';')[0]}", "reason": e["reason"]} for e in excluded]
    items += [{"name": f"installed: {r}", "reason": _ADDED_REASONS[r]} for r in ADDED_REQUIREMENTS]
    items += [{"name": f"env {k}={v}", "reason": _ENV_REASONS[k]} for k, v in ENGINE_ENV.items()]
    items += [{"name": name, "reason": reason} for name, reason in RUNTIME_WORKAROUNDS]
    return items


#: (name, reason) of every runtime patch apply_all makes.
RUNTIME_WORKAROUNDS: list[tuple[str, str]] = []


def apply_all() -> list[dict[str, Any]]:
    """Apply every runtime workaround once per process."""
    return _APPLIED
