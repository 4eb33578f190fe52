"""Test support: what real SGLang needs to run on a CPU-only machine, and nothing else.

Used by ``scripts/runtime_proof.py`` only; ``eagle3-patch`` itself never imports
it. Every item bridges a gap in SGLang's CPU ("no platform") path or in the
packages it pulls in; none replaces the code under test: the Qwen3.5 model
classes, SGLang's capture wiring (``configure_aux_hidden_state_capture``), the
EAGLE-3 worker and the ``LlamaForCausalLMEagle3`` drafter all run as shipped.
Kernels are routed to SGLang's own Triton versions wherever SGLang has them;
the two plain-torch stand-ins (state scatter, rotary import) say why.

Loaded into every process of the runtime interpreter (SGLang's scheduler runs
in a spawned child) by ``eagle3_patch/verify/_sitecustomize.py`` when
``EAGLE3_PATCH_CPU_WORKAROUNDS`` names this folder. Each runtime patch runs
when its module is first imported, so import order does not matter, and
looks its names up with defaults, so one module serves 0.5.16, 0.5.21 and
0.5.23 (where the tree kernels moved and the scatter gained an argument).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import os
import sys
import types
from collections.abc import Callable
from typing import Any

#: Requires-Dist entries not installed, by canonical name, with the reason.
EXCLUDED_REQUIREMENTS = {
    "cuda-tile": "its sdist downloads from a host other than the package index, so it cannot install here",
    "flashinfer-python": "CUDA-only; it asserts a GPU at import, and SGLang only catches ImportError",
    "torchaudio": "a CUDA build that fails to import beside CPU torch (no libc10_cuda.so); transformers imports it",
    "torchcodec": "a CUDA build that fails to import beside CPU torch; nothing on this path needs it",
}

#: Requirements added to the release's own, with the reason.
ADDED_REQUIREMENTS = {
    "triton==3.6.0": "Triton's interpreter runs SGLang's Triton kernels on CPU; 3.9's rejects block pointers",
}

#: Environment of every process that runs SGLang here, with the reason.
ENGINE_ENV = {
    "TRITON_INTERPRET": "1",
    "SGLANG_USE_CPU_ENGINE": "0",
    "CUDA_VISIBLE_DEVICES": "",
}
_ENV_REASONS = {
    "TRITON_INTERPRET": "GatedDeltaNet and the speculative tree/verify ops have Triton kernels only: interpret them",
    "SGLANG_USE_CPU_ENGINE": "stay on the generic path; SGLang's CPU engine needs sgl-kernel's CPU build",
    "CUDA_VISIBLE_DEVICES": "no GPU is visible, whatever the CUDA builds in the venv look for",
}


# --- running a patch when its module is imported -------------------------------------

_AFTER: dict[str, list[Callable[[types.ModuleType], None]]] = {}
_BEFORE: dict[str, list[Callable[[], None]]] = {}


class _Loader(importlib.abc.Loader):
    """Wraps a module's loader to run our callbacks around its execution."""

    def __init__(self, inner: Any, name: str) -> None:
        self.inner, self.name = inner, name

    def create_module(self, spec: Any) -> Any:
        return self.inner.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        for before in _BEFORE.pop(self.name, []):
            before()
        self.inner.exec_module(module)
        for after in _AFTER.pop(self.name, []):
            after(module)

    def __getattr__(self, item: str) -> Any:
        return getattr(self.inner, item)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname not in _AFTER and fullname not in _BEFORE:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _Loader(spec.loader, fullname)
                return spec
        return None


_FINDER = _Finder()


def when_imported(name: str, patch: Callable[[types.ModuleType], None]) -> None:
    """Run ``patch(module)`` right after ``name`` executes (now, if it already has)."""
    if name in sys.modules and name not in _AFTER:
        patch(sys.modules[name])
        return
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
    _AFTER.setdefault(name, []).append(patch)


def before_import(name: str, prepare: Callable[[], None]) -> None:
    """Run ``prepare()`` just before ``name`` executes."""
    if name in sys.modules:
        prepare()
        return
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
    _BEFORE.setdefault(name, []).append(prepare)


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET") == "1"


def _no_platform(module: types.ModuleType) -> bool:
    """True where the module's platform flags select none of its kernel branches."""
    flags = ("_is_cuda", "_is_hip", "_is_musa", "_is_npu", "_is_cpu", "_is_xpu")
    return not any(getattr(module, flag, False) for flag in flags)


# --- the workarounds --------------------------------------------------------------------


def torchvision_nms_schema() -> None:
    """torchvision's compiled ops fail beside CPU torch, yet its import registers fakes for nms/qnms: define them."""

    def define() -> None:
        import torch

        library = None
        for op, schema in (
            ("nms", "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor"),
            ("qnms", "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor"),
        ):
            try:
                getattr(torch.ops.torchvision, op).default  # noqa: B018 - raises when the op is missing
            except (AttributeError, RuntimeError):
                library = library or torch.library.Library("torchvision", "FRAGMENT")
                library.define(schema)
        globals()["_TORCHVISION_LIBRARY"] = library  # the registration lives as long as this object

    # After torchvision.extension tried its own ops (a CUDA torch loads them), before the fakes.
    before_import("torchvision._meta_registrations", define)


def vllm_rotary_import() -> None:
    """RotaryEmbedding imports vllm._custom_ops.rotary_embedding here (no vllm): a stand-in that raises if called."""
    if importlib.util.find_spec("vllm") is not None:
        return

    def rotary_embedding(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("cpu_workarounds: vllm's rotary_embedding was called; the proof expects the torch path")

    package = types.ModuleType("vllm")
    package.__path__ = []
    ops = types.ModuleType("vllm._custom_ops")
    ops.rotary_embedding = rotary_embedding  # type: ignore[attr-defined]
    package._custom_ops = ops  # type: ignore[attr-defined]
    sys.modules.setdefault("vllm", package)
    sys.modules.setdefault("vllm._custom_ops", ops)


def torch_cpu_device_context() -> None:
    """fla's input guard and SGLang's device_context enter torch.cpu.device(i), which torch lacks: a no-op one."""
    import torch

    if hasattr(torch.cpu, "device"):
        return

    class device:  # noqa: N801 - the name torch.cuda uses
        def __init__(self, index: Any = None) -> None:
            self.index = index

        def __enter__(self) -> device:
            return self

        def __exit__(self, *exc: object) -> bool:
            return False

    torch.cpu.device = device  # type: ignore[attr-defined]


def triton_autotune_untimed() -> None:
    """Triton's autotuner times configs through a GPU driver, and the interpreter has none: keep the first config."""

    def patch(module: types.ModuleType) -> None:
        tuner = module.Autotuner
        if not _interpreting() or getattr(tuner, "_cpu_workaround", False):
            return

        def bench(self: Any, *args: Any, config: Any, **meta: Any) -> list[float]:
            return [0.0, 0.0, 0.0]  # all equal: min() keeps the first config

        def check_disk_cache(self: Any, tuning_key: Any, configs: Any, bench_fn: Callable[[], None]) -> bool:
            bench_fn()
            return False

        tuner._bench = bench
        tuner.check_disk_cache = check_disk_cache
        tuner._cpu_workaround = True

    when_imported("triton.runtime.autotuner", patch)


def triton_builtin_aliases() -> None:
    """fla/op.py binds exp = tl.exp at import, but the interpreter patches only tl.*: look aliases up at call time."""

    def late_bound(original: Any) -> Any:
        import triton.language as tl

        for owner in (tl, tl.math):
            for name in dir(owner):
                if getattr(owner, name, None) is original:

                    def call(*args: Any, _owner: Any = owner, _name: str = name, **kwargs: Any) -> Any:
                        return getattr(_owner, _name)(*args, **kwargs)

                    return call
        return original

    def patch(module: types.ModuleType) -> None:
        if not _interpreting():
            return
        import triton.language as tl

        for name, value in list(vars(module).items()):
            if tl.core.is_builtin(value):
                setattr(module, name, late_bound(value))

    when_imported("sglang.kernels.ops.attention.fla.op", patch)


def fla_core_count() -> None:
    """fla's gated RMSNorm sizes its grid from torch.cuda.get_device_properties, failing on CPU: count cores."""

    def patch(module: types.ModuleType) -> None:
        original = getattr(module, "_get_sm_count", None)
        if original is None or getattr(original, "_cpu_workaround", False):
            return

        def get_sm_count(device: Any) -> Any:
            if getattr(device, "type", str(device)) == "cpu":
                return os.cpu_count() or 1
            return original(device)

        get_sm_count._cpu_workaround = True  # type: ignore[attr-defined]
        module._get_sm_count = get_sm_count  # type: ignore[attr-defined]

    when_imported("sglang.kernels.ops.attention.fla.layernorm_gated", patch)


def triton_interpreter_bf16() -> None:
    """Triton 3.6's interpreter does integer arithmetic on bf16's raw bits: compute in ml_dtypes.bfloat16."""

    def patch(module: types.ModuleType) -> None:
        if getattr(module, "_cpu_workaround_bf16", False):
            return
        import ml_dtypes
        import numpy as np
        import triton.language as tl

        bf16 = np.dtype(ml_dtypes.bfloat16)
        floats = {tl.bfloat16, tl.float16, tl.float32, tl.float64}
        original_np_dtype = module._get_np_dtype

        def get_np_dtype(tt_dtype: Any) -> Any:
            element = tt_dtype.element_ty if isinstance(tt_dtype, tl.block_type) else tt_dtype
            return bf16 if element == tl.bfloat16 else original_np_dtype(tt_dtype)

        builder = module.InterpreterBuilder
        cast, fp_to_fp, dot = builder.cast_impl, builder.create_fp_to_fp, builder.create_dot

        def cast_impl(self: Any, src: Any, dst_type: Any) -> Any:
            if tl.bfloat16 in (src.dtype.scalar, dst_type.scalar):
                return module.TensorHandle(src.data.astype(get_np_dtype(dst_type)), dst_type.scalar)
            return cast(self, src, dst_type)

        def create_fp_to_fp(self: Any, src: Any, dst_type: Any, rounding_mode: Any) -> Any:
            pair = {src.dtype.scalar, dst_type.scalar}
            if tl.bfloat16 in pair and pair <= floats:
                return module.TensorHandle(src.data.astype(get_np_dtype(dst_type)), dst_type.scalar)
            return fp_to_fp(self, src, dst_type, rounding_mode)

        def create_dot(self: Any, a: Any, b: Any, d: Any, precision: Any, imprecise: Any) -> Any:
            if bf16 in (a.data.dtype, b.data.dtype):  # bf16 products are exact in fp32
                a = module.TensorHandle(a.data.astype(np.float32), tl.float32)
                b = module.TensorHandle(b.data.astype(np.float32), tl.float32)
            return dot(self, a, b, d, precision, imprecise)

        def get_bf16(self: Any, value: float) -> Any:
            return module.TensorHandle(np.array([value], dtype=bf16), tl.bfloat16)

        module._get_np_dtype = get_np_dtype
        builder.cast_impl = cast_impl
        builder.create_fp_to_fp = create_fp_to_fp
        builder.create_dot = create_dot
        if not hasattr(builder, "get_bf16"):
            builder.get_bf16 = get_bf16
        module._cpu_workaround_bf16 = True

    if _interpreting():  # once triton itself is initialised: the patch needs triton.language
        when_imported("triton", lambda _: patch(importlib.import_module("triton.runtime.interpreter")))


def speculative_triton_kernels() -> None:
    """Tree build and greedy verify have no kernel for the no-platform path: take SGLang's Triton (XPU) branch."""

    def patch(module: types.ModuleType) -> None:
        if getattr(module, "_cpu_workaround", False) or not _no_platform(module):
            return
        decide = getattr(module, "_verify_uses_greedy", None)
        if decide is not None:

            def verify_uses_greedy(*, is_xpu: bool, **kwargs: Any) -> Any:
                return decide(is_xpu=False, **kwargs)  # the sampling decision stays the no-platform one

            module._verify_uses_greedy = verify_uses_greedy  # type: ignore[attr-defined]
        module._is_xpu = True  # type: ignore[attr-defined]
        module._cpu_workaround = True  # type: ignore[attr-defined]

    when_imported("sglang.srt.speculative.eagle_utils", patch)  # 0.5.16 - 0.5.21
    when_imported("sglang.kernels.ops.speculative.spec_tree", patch)  # 0.5.23


def speculative_cache_locs() -> None:
    """assign_extend_cache_locs_func has no branch for the no-platform path and returns None: take the Triton kernel."""

    def patch(module: types.ModuleType) -> None:
        if _no_platform(module):
            module._is_xpu = True  # type: ignore[attr-defined]

    when_imported("sglang.kernels.ops.speculative.cache_locs", patch)


def _scatter(dst: Any, src: Any, dst_indices: Any, steps: Any, src_rows: Any = None) -> None:
    """``dst[:, dst_indices[i]] = src[:, row[i], steps[i]]`` for every i with ``steps[i] >= 0``."""
    import torch

    steps = steps.to(device=dst.device, dtype=torch.long)
    keep = torch.nonzero(steps >= 0, as_tuple=True)[0]
    if keep.numel() == 0:
        return
    rows = keep if src_rows is None else src_rows.to(device=dst.device, dtype=torch.long)[keep]
    dst[:, dst_indices.to(device=dst.device, dtype=torch.long)[keep]] = src[:, rows, steps[keep]].to(dst.dtype)


def mamba_state_scatter() -> None:
    """After verify, the mamba/conv state scatters refuse CPU tensors: plain torch for their documented rule."""
    names = ("fused_mamba_state_scatter_with_mask", "fused_conv_window_scatter_with_mask")

    def wrap(original: Any) -> Any:
        if getattr(original, "_cpu_workaround", False):
            return original

        def scatter(dst: Any, src: Any, dst_indices: Any, steps: Any, *more: Any) -> Any:
            if dst.device.type != "cpu":
                return original(dst, src, dst_indices, steps, *more)
            return _scatter(dst, src, dst_indices, steps, *more[:1])

        scatter._cpu_workaround = True  # type: ignore[attr-defined]
        return scatter

    def patch(module: types.ModuleType) -> None:
        for name in names:
            if hasattr(module, name):
                setattr(module, name, wrap(getattr(module, name)))
        eligible = getattr(module, "_conv_multi_eligible", None)
        if eligible is not None and not getattr(eligible, "_cpu_workaround", False):

            def conv_multi_eligible(pairs: Any) -> Any:
                # That multi-window Triton path ignores the device: keep CPU tensors on the scatter above.
                return False if pairs and pairs[0][0].device.type == "cpu" else eligible(pairs)

            conv_multi_eligible._cpu_workaround = True  # type: ignore[attr-defined]
            module._conv_multi_eligible = conv_multi_eligible  # type: ignore[attr-defined]

    when_imported("sglang.kernels.ops.mamba.mamba_state_scatter_triton", patch)
    # The backend imports the functions by name: patch its copies as well.
    when_imported("sglang.srt.layers.attention.hybrid_linear_attn_backend", patch)


def mamba_pool_device() -> None:
    """0.5.16's MambaPool allocates its speculative buffers with device="cuda" written in: allocate them on the CPU."""

    class TorchOnCpu(types.ModuleType):
        def __init__(self, real: Any) -> None:
            super().__init__("torch")
            self.__dict__["_real"] = real

        def __getattr__(self, item: str) -> Any:
            return getattr(self._real, item)

        def zeros(self, *args: Any, **kwargs: Any) -> Any:
            if kwargs.get("device") == "cuda":
                kwargs["device"] = "cpu"
            return self._real.zeros(*args, **kwargs)

    def patch(module: types.ModuleType) -> None:
        import torch

        if torch.cuda.is_available() or isinstance(getattr(module, "torch", None), TorchOnCpu):
            return
        module.torch = TorchOnCpu(torch)  # type: ignore[attr-defined]

    when_imported("sglang.srt.mem_cache.memory_pool", patch)


RUNTIME_WORKAROUNDS: tuple[Callable[[], None], ...] = (
    torchvision_nms_schema,
    vllm_rotary_import,
    torch_cpu_device_context,
    triton_autotune_untimed,
    triton_builtin_aliases,
    fla_core_count,
    triton_interpreter_bf16,
    speculative_triton_kernels,
    speculative_cache_locs,
    mamba_state_scatter,
    mamba_pool_device,
)

_APPLIED = False


def apply_all() -> None:
    """Apply every runtime workaround, once per process."""
    global _APPLIED
    if not _APPLIED:
        _APPLIED = True
        for workaround in RUNTIME_WORKAROUNDS:
            workaround()


def describe(excluded: list[dict[str, str]]) -> list[dict[str, str]]:
    """Every workaround the proof used, for its JSON and the README: install, environment, runtime."""
    items = [{"name": f"not installed: {e['requirement'].split(';')[0]}", "reason": e["reason"]} for e in excluded]
    items += [{"name": f"installed: {name}", "reason": reason} for name, reason in ADDED_REQUIREMENTS.items()]
    items += [{"name": f"env {k}={v!r}", "reason": _ENV_REASONS[k]} for k, v in ENGINE_ENV.items()]
    items += [{"name": w.__name__, "reason": (w.__doc__ or "").strip()} for w in RUNTIME_WORKAROUNDS]
    return items
