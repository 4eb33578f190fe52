"""The tiny checkpoints of verify's cuda level, checked on the CPU.

The target must be a real Qwen3.5 checkpoint as far as Hugging Face transformers
can tell (it builds the model from our config.json and loads our safetensors with
nothing missing or left over); the drafter's tensor names and shapes must be the
ones each release's ``llama_eagle3.py`` loads, read from the real wheel with ast.
"""

from __future__ import annotations

import ast
import json
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from eagle3_patch.verify import tiny_checkpoints as tiny
from tests.conftest import needs


@pytest.fixture(scope="module")
def transformers() -> Any:
    needs("torch")
    return needs("transformers")


@pytest.mark.parametrize("architecture", [tiny.TEXT_ARCHITECTURE, tiny.MULTIMODAL_ARCHITECTURE])
def test_target_loads_in_transformers_with_nothing_missing(
    transformers: Any, tmp_path: Path, architecture: str
) -> None:
    import torch

    config = tiny.write_target(tmp_path, architecture)
    loaded_config = transformers.AutoConfig.from_pretrained(tmp_path)
    text = getattr(loaded_config, "text_config", loaded_config)
    assert text.layer_types == tiny.layer_types()
    assert {"linear_attention", "full_attention"} == set(text.layer_types)

    full_class = (
        transformers.AutoModelForCausalLM
        if architecture == tiny.TEXT_ARCHITECTURE
        else transformers.AutoModelForImageTextToText
    )
    model, info = full_class.from_pretrained(tmp_path, output_loading_info=True)
    assert type(model).__name__ == architecture
    assert (info["missing_keys"], info["unexpected_keys"], info["mismatched_keys"]) == (set(), set(), set())
    reference = {k: tuple(v.shape) for k, v in full_class.from_config(loaded_config).state_dict().items()}
    assert tiny.target_tensors(config) == reference

    causal = transformers.AutoModelForCausalLM.from_pretrained(tmp_path)
    ids = torch.tensor([[5, 17, 99, 200, 3]])
    with torch.no_grad():
        out = causal(input_ids=ids, output_hidden_states=True)
    assert out.logits.shape == (1, 5, tiny.VOCAB_SIZE)
    assert len(out.hidden_states) == tiny.NUM_LAYERS + 1
    assert all(torch.isfinite(h).all() for h in out.hidden_states)


def test_tokenizer_round_trips_text(transformers: Any, tmp_path: Path) -> None:
    tiny.write_tokenizer(tmp_path)
    tokenizer = transformers.AutoTokenizer.from_pretrained(tmp_path)
    for text in ("The capital of France is", "def fibonacci(n):\n    return n", "héllo, 世界 🙂"):
        ids = tokenizer.encode(text, add_special_tokens=False)
        assert max(ids) < tiny.VOCAB_SIZE
        assert tokenizer.decode(ids) == text
    assert tokenizer.eos_token_id == tiny.special_token_id("<|endoftext|>")
    assert (
        tokenizer.convert_tokens_to_ids("<|image_pad|>")
        == tiny.target_config(tiny.MULTIMODAL_ARCHITECTURE)["image_token_id"]
    )


def test_drafter_reads_layers_inside_the_target() -> None:
    target = tiny.target_config(tiny.TEXT_ARCHITECTURE)
    config = tiny.drafter_config(target)
    ids = config["eagle_config"]["eagle_aux_hidden_state_layer_ids"]
    assert all(0 <= i + 1 < target["num_hidden_layers"] for i in ids)
    with pytest.raises(ValueError, match="outside"):
        tiny.drafter_config(target, (1, 7))


def test_drafter_files_are_written(transformers: Any, tmp_path: Path) -> None:
    from safetensors import safe_open

    target = tiny.target_config(tiny.TEXT_ARCHITECTURE)
    config = tiny.write_drafter(tmp_path, target)
    assert json.loads((tmp_path / "config.json").read_text())["architectures"] == ["LlamaForCausalLMEagle3"]
    with safe_open(str(tmp_path / "model.safetensors"), "pt") as handle:
        written = {name: tuple(handle.get_slice(name).get_shape()) for name in handle.keys()}  # noqa: SIM118
    assert written == tiny.drafter_tensors(config)


# --- what each release's llama_eagle3.py loads, read with ast ---


def _classes(path: Path) -> dict[str, ast.ClassDef]:
    return {n.name: n for n in ast.parse(path.read_bytes()).body if isinstance(n, ast.ClassDef)}


def _method(node: ast.ClassDef, name: str) -> ast.FunctionDef:
    return next(s for s in node.body if isinstance(s, ast.FunctionDef) and s.name == name)


def _self_attributes(function: ast.FunctionDef) -> set[str]:
    """X for every ``self.X = ...`` (tuple targets included)."""
    found = set()
    for node in ast.walk(function):
        targets = (
            node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        )
        for target in targets:
            for element in target.elts if isinstance(target, ast.Tuple) else [target]:
                if (
                    isinstance(element, ast.Attribute)
                    and isinstance(element.value, ast.Name)
                    and element.value.id == "self"
                ):
                    found.add(element.attr)
    return found


def _literal(function: ast.FunctionDef, name: str) -> Any:
    for node in ast.walk(function):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    return None


def _linear_in_features(function: ast.FunctionDef, attribute: str, env: dict[str, Any]) -> Any:
    """Evaluate the first argument of the constructor assigned to ``self.<attribute>``."""
    local: dict[str, Any] = {}
    for node in ast.walk(function):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            local[node.targets[0].id] = node.value
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.targets[0], ast.Attribute)
            and ast.unparse(node.targets[0]) == f"self.{attribute}"
            and isinstance(node.value, ast.Call)
        ):
            argument = node.value.args[0]
            if isinstance(argument, ast.Name):
                argument = local[argument.id]
            return eval(compile(ast.Expression(argument), "<llama_eagle3>", "eval"), {}, env)  # noqa: S307
    raise AssertionError(f"self.{attribute} is not built in {function.name}")


def test_drafter_names_and_shapes_match_what_each_release_loads(
    served_release: str, release_site: Callable[[str], Path]
) -> None:
    models = release_site(served_release) / "sglang" / "srt" / "models"
    eagle3, llama = _classes(models / "llama_eagle3.py"), _classes(models / "llama.py")
    load_weights = _method(eagle3["LlamaForCausalLMEagle3"], "load_weights")
    legacy = _literal(load_weights, "legacy_name_map") or {}
    stacked = _literal(load_weights, "stacked_params_mapping")
    model_attributes = _self_attributes(_method(eagle3["LlamaModel"], "__init__"))
    layer_attributes = _self_attributes(_method(eagle3["LlamaDecoderLayer"], "__init__")) | _self_attributes(
        _method(llama["LlamaDecoderLayer"], "__init__")
    )
    children = {
        "self_attn": _self_attributes(_method(llama["LlamaAttention"], "__init__")),
        "mlp": _self_attributes(_method(llama["LlamaMLP"], "__init__")),
    }

    def loads(name: str) -> bool:
        for old, new in legacy.items():
            name = name.replace(old, new)
        for param, shard, _ in stacked:
            if shard in name:
                name = name.replace(shard, param)
                break
        parts = name.removesuffix(".weight").split(".")
        if parts == ["lm_head"]:
            return True
        head, rest = parts[0], parts[1:]
        if head == "layers" and rest[:1] == ["0"] and "layers" in model_attributes:
            rest = rest[1:]
        elif head != "midlayer" or "midlayer" not in model_attributes:
            return not rest and head in model_attributes
        if len(rest) == 1:
            return rest[0] in layer_attributes
        return len(rest) == 2 and rest[0] in layer_attributes and rest[1] in children.get(rest[0], set())

    target = tiny.target_config(tiny.TEXT_ARCHITECTURE)
    config = tiny.drafter_config(target)
    shapes = tiny.drafter_tensors(config)
    assert [name for name in shapes if not loads(name)] == []
    assert not any(loads(n) for n in ("midlayer.self_attn.qq_proj.weight", "fcx.weight", "midlayer.mlp.w1.weight"))

    hidden = config["hidden_size"]
    layer_self = types.SimpleNamespace(hidden_size=hidden, is_input_layer=True)
    qkv_in = _linear_in_features(
        _method(eagle3["LlamaDecoderLayer"], "__init__"), "self_attn.qkv_proj", {"self": layer_self}
    )
    assert shapes["midlayer.self_attn.q_proj.weight"][1] == qkv_in
    aux = len(config["eagle_config"]["eagle_aux_hidden_state_layer_ids"])
    model_self = types.SimpleNamespace(hidden_size_in=config["target_hidden_size"], num_aux_hidden_states=aux)
    fc_in = _linear_in_features(_method(eagle3["LlamaModel"], "__init__"), "fc", {"self": model_self})
    assert shapes["fc.weight"] == (hidden, fc_in)
