"""The ``sglang.Engine`` keyword arguments an installed release knows, read without importing it.

``Engine(**kwargs)`` builds a ``ServerArgs``; an unknown keyword is an error, and
options were renamed between releases (``mamba_scheduler_strategy`` became
``mamba_radix_cache_strategy`` in 0.5.14), so the cuda level of ``verify`` asks
the release which fields it has. Up to 0.5.19 ``ServerArgs`` is a dataclass in
``srt/server_args.py``; from 0.5.20 it is assembled from namespace classes listed
in ``_INPUT_NAMESPACES`` and defined under ``srt/arg_groups/fields/``. Both are
read with ``ast``.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eagle3_patch.errors import EngineArgsError
from eagle3_patch.locate import Install
from eagle3_patch.reading import NotRegularFileError, read_regular_bytes

SPEC_ENV = {"SGLANG_ENABLE_SPEC_V2": "1"}


@dataclass(frozen=True)
class ServerArgsFields:
    version: str
    #: Every field name ``ServerArgs`` accepts.
    fields: frozenset[str]
    #: Fields without a default: ``Engine`` needs them.
    required: frozenset[str]


@dataclass(frozen=True)
class Option:
    """One setting, under every name it has had (newest first)."""

    names: tuple[str, ...]
    value: Any
    required: bool


def read_server_args(install: Install) -> ServerArgsFields:
    """The ``ServerArgs`` fields of ``install``, from its source."""
    path = install.package_dir / "srt" / "server_args.py"
    try:
        tree = ast.parse(read_regular_bytes(path), filename=str(path))
    except NotRegularFileError as exc:
        raise EngineArgsError(f"cannot read ServerArgs (it is {exc.kind}, not a regular file)", path=path) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise EngineArgsError(f"cannot read ServerArgs ({exc})", path=path) from exc
    classes = _classes(tree)
    if "ServerArgs" not in classes:
        raise EngineArgsError(f"sglang {install.version} defines no ServerArgs class", path=path)
    fields: dict[str, bool] = dict(_annotated_fields(classes["ServerArgs"], classes))
    for namespace in _namespace_classes(tree, install.package_dir.parent):
        fields.update(namespace)
    return ServerArgsFields(
        version=install.version,
        fields=frozenset(fields),
        required=frozenset(name for name, has_default in fields.items() if not has_default),
    )


def common_options(
    *, model_path: str, mem_fraction: float, multimodal: bool, device: str = "cuda"
) -> tuple[Option, ...]:
    """Settings for both runs: a small, deterministic engine (CUDA graphs on a GPU)."""
    on_cpu = device == "cpu"
    return (
        Option(("model_path",), model_path, True),
        Option(
            ("mamba_scheduler_strategy", "mamba_radix_cache_strategy"), "no_buffer" if on_cpu else "extra_buffer", True
        ),
        Option(("mem_fraction_static",), mem_fraction, False),
        # On a CPU, float16: bf16 rounding puts near-ties (top-2 logit gaps of 0.016) in 16 tokens of the tiny model.
        Option(("dtype",), "float16" if on_cpu else "bfloat16", False),
        Option(("random_seed",), 0, False),
        Option(("disable_cuda_graph",), on_cpu, False),
        Option(("cuda_graph_max_bs", "cuda_graph_max_bs_decode"), 4, False),
        Option(("max_running_requests",), 4, False),
        Option(("context_length",), 2048, False),
        Option(("log_level",), "error", False),
        *((Option(("mm_attention_backend",), "sdpa", False),) if multimodal else ()),
        *(cpu_options() if on_cpu else ()),
    )


def cpu_options() -> tuple[Option, ...]:
    """What SGLang's CPU path needs instead of the CUDA defaults.

    ``extra_buffer`` asserts a GPU, so the mamba cache keeps no extra buffer,
    which in turn needs the overlap scheduler off; triton attention (run by
    Triton's interpreter) is the backend that takes EAGLE (torch_native refuses
    it); the tokenizer is skipped, so prompts go in as token ids. Sizes are
    capped so the pools fit a small machine.
    """
    return (
        Option(("device",), "cpu", True),
        Option(("attention_backend",), "triton", True),
        Option(("sampling_backend",), "pytorch", False),
        Option(("grammar_backend",), "none", False),
        Option(("skip_tokenizer_init",), True, True),
        Option(("disable_overlap_schedule",), True, False),
        Option(("max_mamba_cache_size",), 16, False),
        Option(("max_total_tokens",), 4096, False),
        Option(("chunked_prefill_size",), 512, False),
    )


def eagle3_options(*, draft_path: str) -> tuple[Option, ...]:
    """The model cards' speculative settings: chain drafting, 3 steps, 4 draft tokens."""
    return (
        Option(("speculative_algorithm",), "EAGLE3", True),
        Option(("speculative_draft_model_path",), draft_path, True),
        Option(("speculative_num_steps",), 3, True),
        Option(("speculative_eagle_topk",), 1, True),
        Option(("speculative_num_draft_tokens",), 4, True),
    )


def engine_kwargs(server_args: ServerArgsFields, options: tuple[Option, ...]) -> dict[str, Any]:
    """Keyword arguments for ``sglang.Engine``: only fields this release has."""
    kwargs: dict[str, Any] = {}
    for option in options:
        name = next((n for n in option.names if n in server_args.fields), None)
        if name is not None:
            kwargs[name] = option.value
        elif option.required:
            raise EngineArgsError(
                f"sglang {server_args.version} has no Engine option {' or '.join(option.names)}, "
                "which EAGLE-3 on a Qwen3.5 target needs; use a release that has it"
            )
    missing = sorted(server_args.required - set(kwargs))
    if missing:
        raise EngineArgsError(
            f"sglang {server_args.version} requires Engine options eagle3-patch does not know: {', '.join(missing)}"
        )
    return kwargs


def _classes(tree: ast.Module) -> dict[str, ast.ClassDef]:
    return {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}


def _annotated_fields(node: ast.ClassDef, classes: dict[str, ast.ClassDef], depth: int = 0) -> list[tuple[str, bool]]:
    """``name: T [= default]`` lines of a class and of its bases defined beside it."""
    fields: list[tuple[str, bool]] = []
    if depth < 8:
        for base in node.bases:
            if isinstance(base, ast.Name) and base.id in classes and classes[base.id] is not node:
                fields.extend(_annotated_fields(classes[base.id], classes, depth + 1))
    for statement in node.body:
        if (
            isinstance(statement, ast.AnnAssign)
            and isinstance(statement.target, ast.Name)
            and not statement.target.id.startswith("_")
            and "ClassVar" not in ast.unparse(statement.annotation)
        ):
            fields.append((statement.target.id, statement.value is not None))
    return fields


def _namespace_classes(tree: ast.Module, site: Path) -> list[list[tuple[str, bool]]]:
    """Fields of the namespace classes named in ``_INPUT_NAMESPACES`` (0.5.20 and newer)."""
    names: list[str] = []
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "_INPUT_NAMESPACES" for t in node.targets)
            and isinstance(node.value, (ast.List, ast.Tuple))
        ):
            names = [e.id for e in node.value.elts if isinstance(e, ast.Name)]
    if not names:
        return []
    origins: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                origins[alias.asname or alias.name] = f"{node.module}:{alias.name}"
    found = []
    parsed: dict[str, dict[str, ast.ClassDef]] = {}
    for name in names:
        module, _, class_name = origins.get(name, ":").partition(":")
        if not module:
            continue
        if module not in parsed:
            path = site.joinpath(*module.split(".")).with_suffix(".py")
            try:
                parsed[module] = _classes(ast.parse(read_regular_bytes(path), filename=str(path)))
            except (OSError, SyntaxError, ValueError):
                parsed[module] = {}
        classes = parsed[module]
        if class_name in classes:
            found.append(_annotated_fields(classes[class_name], classes))
    return found
