"""Run the methods we insert, as compiled from each patched real release, on stand-ins.

No torch and no sglang import: each inserted method is compiled from the
patched file's own AST and bound to small objects shaped like the real classes
(a decoder with ``layers``, a wrapper with ``model``, ``pp_group`` and the
``capture_aux_hidden_states`` flag the wrapper's forward reads).
"""

from __future__ import annotations

import ast
import types
from collections.abc import Callable
from pathlib import Path

import pytest

from eagle3_patch.classify import last_method, top_level_classes
from eagle3_patch.fetch import extract_release, fetch_wheel
from eagle3_patch.spec import load_spec
from tests.conftest import patch_site

pytestmark = pytest.mark.corpus

HOOK = "set_eagle3_layers_to_capture"
FLAG = "_is_layer_to_capture"
LAYERS = 64  # Qwen3.6-27B's decoder depth; its drafter asks for [1, 31, 60]


class Layer:
    """Stands in for a decoder layer: the hook may set an attribute on it."""


class Decoder:
    def __init__(self, hook: Callable[..., None], layers: int = LAYERS) -> None:
        self.layers = [Layer() for _ in range(layers)]
        self.layers_to_capture: list[int] = []
        self.set_eagle3_layers_to_capture = types.MethodType(hook, self)

    def flagged(self) -> list[int]:
        return [i for i, layer in enumerate(self.layers) if getattr(layer, FLAG, False)]


class Wrapper:
    def __init__(self, hook: Callable[..., None], decoder: Decoder, *, last_rank: bool = True) -> None:
        self.model = decoder
        self.pp_group = types.SimpleNamespace(is_last_rank=last_rank)
        self.capture_aux_hidden_states = False
        self.set_eagle3_layers_to_capture = types.MethodType(hook, self)


def compiled_hook(source: Path, class_name: str) -> Callable[..., None]:
    """Compile ``class_name.set_eagle3_layers_to_capture`` exactly as the file defines it."""
    node = last_method(top_level_classes(ast.parse(source.read_bytes()))[class_name], HOOK)
    assert node is not None, f"{class_name} has no {HOOK}"
    module = ast.Module(body=[node], type_ignores=[])
    namespace: dict[str, object] = {}
    exec(compile(module, str(source), "exec"), namespace)  # noqa: S102 - our own inserted code
    return namespace[HOOK]  # type: ignore[return-value]


@pytest.fixture(scope="session")
def patched_models(patch_release: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The release's model files after a real apply (done once per release per session)."""
    site = tmp_path_factory.mktemp(f"patched-{patch_release}")
    extract_release(fetch_wheel(patch_release), site)
    assert patch_site(site).state == "patched"
    return site / "sglang" / "srt" / "models"


def test_decoder_hook_flags_exactly_the_requested_layers(patched_models: Path) -> None:
    decoder = Decoder(compiled_hook(patched_models / "qwen3_5.py", "Qwen3_5ForCausalLM"))
    decoder.set_eagle3_layers_to_capture([2, 32, 61])
    assert decoder.flagged() == [2, 32, 61]
    assert decoder.layers_to_capture == [2, 32, 61]
    decoder.set_eagle3_layers_to_capture([5])
    assert decoder.flagged() == [5], "a second call replaces the selection"
    for bad in ([LAYERS], [-1], [1.5], [True]):
        with pytest.raises(ValueError, match="eagle_aux_hidden_state_layer_ids") as caught:
            decoder.set_eagle3_layers_to_capture(bad)
        assert f"0..{LAYERS - 1}" in str(caught.value)
    assert decoder.flagged() == [5], "a refused call changes nothing"


def wrappers_in(models: Path) -> list[tuple[str, str]]:
    """Every wrapper class the spec targets that this release's files contain."""
    spec = load_spec()
    return [
        (f.name, c.name) for f in spec.files for c in f.classes if c.role == "wrapper" and (models / f.name).exists()
    ]


def test_wrapper_hooks_shift_draft_ids_and_turn_capture_on(patched_models: Path) -> None:
    wrappers = wrappers_in(patched_models)
    assert ("qwen3_5.py", "Qwen3_5ForConditionalGeneration") in wrappers
    assert ("qwen3_5.py", "Qwen3_5MoeForConditionalGeneration") in wrappers
    assert (("qwen3_5_text.py", "Qwen3_5ForCausalLM") in wrappers) == (patched_models / "qwen3_5_text.py").exists()
    decoder_hook = compiled_hook(patched_models / "qwen3_5.py", "Qwen3_5ForCausalLM")
    n = LAYERS
    for file_name, class_name in wrappers:
        wrapper_hook = compiled_hook(patched_models / file_name, class_name)

        wrapper = Wrapper(wrapper_hook, Decoder(decoder_hook))
        wrapper.set_eagle3_layers_to_capture([1, n // 2, n - 3])
        assert wrapper.model.flagged() == [2, n // 2 + 1, n - 2], class_name
        assert wrapper.capture_aux_hidden_states is True

        default = Wrapper(wrapper_hook, Decoder(decoder_hook))
        default.set_eagle3_layers_to_capture(None)
        assert default.model.flagged() == [2, n // 2, n - 3], class_name
        assert default.capture_aux_hidden_states is True

        middle_rank = Wrapper(wrapper_hook, Decoder(decoder_hook), last_rank=False)
        middle_rank.set_eagle3_layers_to_capture([1, 2, 3])
        assert middle_rank.model.flagged() == [], class_name
        assert middle_rank.capture_aux_hidden_states is False

        too_deep = Wrapper(wrapper_hook, Decoder(decoder_hook))
        with pytest.raises(ValueError, match="eagle_aux_hidden_state_layer_ids"):
            too_deep.set_eagle3_layers_to_capture([n - 1])
        assert too_deep.capture_aux_hidden_states is False, class_name
        assert too_deep.model.flagged() == [], class_name


def test_decoder_forward_reads_the_flag_the_hook_sets(patched_models: Path) -> None:
    """The link the bug breaks: the forward must consult the per-layer attribute we set."""
    decoder = top_level_classes(ast.parse((patched_models / "qwen3_5.py").read_bytes()))["Qwen3_5ForCausalLM"]
    forward = last_method(decoder, "forward")
    assert forward is not None
    loops = [n for n in ast.walk(forward) if isinstance(n, ast.For)]
    reads = [
        n
        for loop in loops
        for n in ast.walk(loop)
        if isinstance(n, ast.Call)
        and isinstance(n.func, ast.Name)
        and n.func.id == "getattr"
        and len(n.args) >= 2
        and isinstance(n.args[1], ast.Constant)
        and n.args[1].value == FLAG
    ]
    assert reads, "forward() no longer reads the per-layer capture flag inside its layer loop"
    hook = last_method(decoder, HOOK)
    assert hook is not None and FLAG in ast.unparse(hook)
