"""The behaviour level: run the installed hooks (ours or upstream's) on stand-in objects.

The hooks are compiled from the installed files and called on objects shaped
like the real decoder and wrappers. No sglang, no torch.
"""

from __future__ import annotations

import ast
import builtins
import copy
import types
from collections.abc import Callable
from typing import Any

from eagle3_patch.classify import InstallReport
from eagle3_patch.source import SourceIndex
from eagle3_patch.spec import PatchSpec
from eagle3_patch.states import NATIVE
from eagle3_patch.verify.levels import (
    CAPTURE_ATTRIBUTE,
    Check,
    Level,
    decoder_spec,
    level_from_checks,
    present_targets,
)

#: Decoder depth of the stand-ins: Qwen3.6-27B's 64 layers (its drafter asks for [1, 31, 60]).
STAND_IN_LAYERS = 64


def behaviour_level(report: InstallReport, spec: PatchSpec, index: SourceIndex, layers: int = STAND_IN_LAYERS) -> Level:
    """Run the installed hooks on stand-ins with ``layers`` decoder layers."""
    checks: list[Check] = []
    states = {(f.spec.name, c.name): c.state for f in report.files for c in f.classes}
    decoder = decoder_spec(report)
    decoder_hook = _compiled(index, report, decoder[0], decoder[1].name, spec.hook)
    upstream = states[(decoder[0], decoder[1].name)] == NATIVE
    checks.extend(_decoder_behaviour(decoder[1].name, decoder_hook, layers, optional=upstream))
    for file_name, class_spec in present_targets(report):
        if class_spec.role != "wrapper":
            continue
        hook = _compiled(index, report, file_name, class_spec.name, spec.hook)
        optional = states[(file_name, class_spec.name)] == NATIVE or upstream
        checks.extend(_wrapper_behaviour(class_spec.name, hook, decoder_hook, layers, optional=optional))
    return level_from_checks(
        "behaviour", checks, passed=f"the hooks flag exactly the requested layers of a {layers}-layer decoder"
    )


class _Layer:
    """A decoder layer: hooks set attributes on it."""


class _Decoder:
    def __init__(self, layers: int, hook: Callable[..., Any] | None) -> None:
        self.layers = [_Layer() for _ in range(layers)]
        self.layers_to_capture: list[int] = []
        self.start_layer, self.end_layer = 0, layers
        self.pp_group = types.SimpleNamespace(is_first_rank=True, is_last_rank=True, world_size=1)
        self.config = types.SimpleNamespace(num_hidden_layers=layers)
        if hook is not None:
            self.set_eagle3_layers_to_capture = types.MethodType(hook, self)

    def flagged(self, flag: str = "_is_layer_to_capture") -> list[int]:
        return [i for i, layer in enumerate(self.layers) if getattr(layer, flag, False)]


class _Wrapper:
    def __init__(self, decoder: _Decoder, hook: Callable[..., Any], *, last_rank: bool = True) -> None:
        layers = len(decoder.layers)
        self.model = decoder
        self.pp_group = types.SimpleNamespace(
            is_first_rank=True, is_last_rank=last_rank, world_size=1 if last_rank else 2
        )
        self.config = types.SimpleNamespace(
            num_hidden_layers=layers, text_config=types.SimpleNamespace(num_hidden_layers=layers)
        )
        self.capture_aux_hidden_states = False
        self.set_eagle3_layers_to_capture = types.MethodType(hook, self)


def _compiled(index: SourceIndex, report: InstallReport, file_name: str, class_name: str, hook: str) -> Any:
    """The hook as the installed file defines it (annotations dropped: they name module imports)."""
    ref = index.find_method(file_name, class_name, hook)
    if ref is None:
        return None
    node = copy.deepcopy(ref.node)
    node.decorator_list = []
    node.returns = None
    for argument in (*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs, node.args.vararg, node.args.kwarg):
        if argument is not None:
            argument.annotation = None
    module = ast.fix_missing_locations(ast.Module(body=[node], type_ignores=[]))
    namespace: dict[str, Any] = {"__builtins__": builtins}
    exec(compile(module, str(report.install.models_dir / ref.file), "exec"), namespace)  # noqa: S102
    return namespace[hook]


def _attempt(subject: str, run: Callable[[], str | None], *, required: bool = True) -> Check:
    """Run one behaviour; a returned string is what went wrong."""
    try:
        problem = run()
    except Exception as exc:  # noqa: BLE001 - any error is the finding
        problem = f"raised {type(exc).__name__}: {exc}"
    return Check(subject, problem is None, problem or "as expected", required)


def _decoder_behaviour(name: str, hook: Any, layers: int, *, optional: bool) -> list[Check]:
    subject = f"{name}.set_eagle3_layers_to_capture"
    if hook is None:
        return [Check(subject, False, "missing: nothing to run")]
    wanted = [2, layers // 2, layers - 3]

    def flags_exactly() -> str | None:
        decoder = _Decoder(layers, hook)
        decoder.set_eagle3_layers_to_capture(list(wanted))
        return None if decoder.flagged() == wanted else f"{wanted} flagged {decoder.flagged()}"

    def replaces_selection() -> str | None:
        decoder = _Decoder(layers, hook)
        decoder.set_eagle3_layers_to_capture([5, 6])
        decoder.set_eagle3_layers_to_capture([7])
        return None if decoder.flagged() == [7] else f"a second call left {decoder.flagged()} flagged, not [7]"

    def rejects_out_of_range() -> str | None:
        decoder = _Decoder(layers, hook)
        try:
            decoder.set_eagle3_layers_to_capture([layers])
        except ValueError:
            return None
        except Exception as exc:  # noqa: BLE001
            return f"layer {layers} raised {type(exc).__name__}, not ValueError"
        return f"layer {layers} of a {layers}-layer decoder was accepted"

    return [
        _attempt(f"{subject} flags exactly the requested layers", flags_exactly),
        _attempt(f"{subject} replaces an earlier selection", replaces_selection, required=not optional),
        _attempt(f"{subject} rejects a layer it does not have", rejects_out_of_range, required=not optional),
    ]


def _wrapper_behaviour(name: str, hook: Any, decoder_hook: Any, layers: int, *, optional: bool) -> list[Check]:
    subject = f"{name}.set_eagle3_layers_to_capture"
    if hook is None:
        return [Check(subject, False, "missing: nothing to run")]
    draft = [1, layers // 2, layers - 3]

    def shifts_draft_ids() -> str | None:
        wrapper = _Wrapper(_Decoder(layers, decoder_hook), hook)
        wrapper.set_eagle3_layers_to_capture(list(draft))
        expected = [i + 1 for i in draft]
        if wrapper.model.flagged() != expected:
            return f"draft ids {draft} flagged decoder layers {wrapper.model.flagged()}, not {expected}"
        return None if wrapper.capture_aux_hidden_states else f"self.{CAPTURE_ATTRIBUTE} stayed off"

    def default_ids() -> str | None:
        wrapper = _Wrapper(_Decoder(layers, decoder_hook), hook)
        wrapper.set_eagle3_layers_to_capture(None)
        expected = [2, layers // 2, layers - 3]
        return (
            None if wrapper.model.flagged() == expected else f"None flagged {wrapper.model.flagged()}, not {expected}"
        )

    def middle_rank_does_nothing() -> str | None:
        wrapper = _Wrapper(_Decoder(layers, decoder_hook), hook, last_rank=False)
        wrapper.set_eagle3_layers_to_capture(list(draft))
        if wrapper.model.flagged() or wrapper.capture_aux_hidden_states:
            return "a non-last pipeline rank flagged layers or turned capture on"
        return None

    def rejects_out_of_range() -> str | None:
        wrapper = _Wrapper(_Decoder(layers, decoder_hook), hook)
        try:
            wrapper.set_eagle3_layers_to_capture([layers - 1])
        except ValueError:
            return None if not wrapper.capture_aux_hidden_states else "capture was turned on before the error"
        except Exception as exc:  # noqa: BLE001
            return f"draft id {layers - 1} raised {type(exc).__name__}, not ValueError"
        return f"draft id {layers - 1} (decoder layer {layers}) was accepted"

    return [
        _attempt(f"{subject} maps draft id i to layer i + 1 and turns capture on", shifts_draft_ids),
        _attempt(f"{subject} defaults to layers [2, n // 2, n - 3]", default_ids),
        _attempt(f"{subject} does nothing on a non-last pipeline rank", middle_rank_does_nothing),
        _attempt(f"{subject} rejects a draft id past the decoder", rejects_out_of_range, required=not optional),
    ]
