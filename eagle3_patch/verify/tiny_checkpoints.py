"""Tiny random-weight checkpoints for the cuda level of ``verify``.

A Qwen3.5 *target* in the real Hugging Face checkpoint format (config.json with
hybrid ``layer_types``, safetensors, a byte-level tokenizer built offline) and a
one-layer EAGLE-3 *drafter* (``LlamaForCausalLMEagle3``) that reads three of the
target's layers. Small enough to load in seconds, shaped like the real thing.

This module is self-contained on purpose: the cuda level copies it into a
temporary folder and runs it with the interpreter that has SGLang, which need
not have eagle3-patch installed. Names and shapes are plain Python; torch,
safetensors and tokenizers are imported only to write files.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

TEXT_ARCHITECTURE = "Qwen3_5ForCausalLM"
MULTIMODAL_ARCHITECTURE = "Qwen3_5ForConditionalGeneration"
MOE_ARCHITECTURE = "Qwen3_5MoeForConditionalGeneration"
DRAFTER_ARCHITECTURE = "LlamaForCausalLMEagle3"

SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
_BYTE_TOKENS = 256
VOCAB_SIZE = 512  # 256 bytes + specials, padded like real vocabularies
NUM_LAYERS = 8  # two groups of three linear-attention layers and one full-attention layer
FULL_ATTENTION_INTERVAL = 4
#: Draft ids the tiny drafter asks for; the target captures layers id + 1.
DRAFT_LAYER_IDS = (1, 3, 5)

if __package__:  # imported as eagle3_patch.verify.tiny_checkpoints
    from eagle3_patch.verify.tiny_tensors import Shapes, drafter_tensors, target_tensors
else:  # copied beside the cuda level's child script, which imports it as a top-level module
    from tiny_tensors import Shapes, drafter_tensors, target_tensors  # type: ignore[no-redef]

__all__ = ["drafter_tensors", "target_tensors"]


def special_token_id(token: str) -> int:
    return _BYTE_TOKENS + SPECIAL_TOKENS.index(token)


def layer_types(num_layers: int = NUM_LAYERS, interval: int = FULL_ATTENTION_INTERVAL) -> list[str]:
    """Every ``interval``-th layer is full attention, the rest Gated DeltaNet (as in Qwen3.5)."""
    return ["full_attention" if (i + 1) % interval == 0 else "linear_attention" for i in range(num_layers)]


#: The small mixture of experts of the MoE target: 4 experts, 2 per token, one shared expert.
MOE_SETTINGS = {
    "num_experts": 4,
    "num_experts_per_tok": 2,
    "moe_intermediate_size": 128,
    "shared_expert_intermediate_size": 128,
    "norm_topk_prob": True,
    "decoder_sparse_step": 1,
    "mlp_only_layers": [],
}


def text_config(moe: bool = False) -> dict[str, Any]:
    head_dim = 64
    return {
        "model_type": "qwen3_5_moe_text" if moe else "qwen3_5_text",
        **(MOE_SETTINGS if moe else {}),
        "vocab_size": VOCAB_SIZE,
        "hidden_size": 256,
        "intermediate_size": 512,
        "num_hidden_layers": NUM_LAYERS,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": head_dim,
        "hidden_act": "silu",
        "rms_norm_eps": 1e-6,
        "max_position_embeddings": 4096,
        "tie_word_embeddings": False,
        "attention_bias": False,
        "attn_output_gate": True,
        "linear_conv_kernel_dim": 4,
        "linear_key_head_dim": 64,
        "linear_value_head_dim": 64,
        "linear_num_key_heads": 2,
        "linear_num_value_heads": 4,
        "layer_types": layer_types(),
        "full_attention_interval": FULL_ATTENTION_INTERVAL,
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": 10_000_000.0,
            "partial_rotary_factor": 0.25,
            # Sections of the rotary half-dimension: 64 * 0.25 / 2 = 8.
            "mrope_section": [2, 3, 3],
            "mrope_interleaved": True,
        },
        "eos_token_id": special_token_id("<|endoftext|>"),
        "dtype": "bfloat16",
    }


def vision_config(out_hidden_size: int) -> dict[str, Any]:
    """The smallest vision tower the Qwen3.5 wrapper takes: one block, a 4x4 position grid."""
    return {
        "model_type": "qwen3_5",
        "depth": 1,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_heads": 2,
        "in_channels": 3,
        "patch_size": 16,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "out_hidden_size": out_hidden_size,
        "num_position_embeddings": 16,
        "hidden_act": "gelu_pytorch_tanh",
        "deepstack_visual_indexes": [],
    }


def target_config(architecture: str) -> dict[str, Any]:
    """config.json of the tiny target: text-only, or multimodal (dense or MoE) with a minimal vision tower."""
    if architecture not in (TEXT_ARCHITECTURE, MULTIMODAL_ARCHITECTURE, MOE_ARCHITECTURE):
        raise ValueError(f"no tiny target for {architecture}")
    moe = architecture == MOE_ARCHITECTURE
    text = text_config(moe)
    if architecture == TEXT_ARCHITECTURE:
        return {"architectures": [TEXT_ARCHITECTURE], **text}
    return {
        "architectures": [architecture],
        "model_type": "qwen3_5_moe" if moe else "qwen3_5",
        "text_config": text,
        "vision_config": vision_config(text["hidden_size"]),
        "image_token_id": special_token_id("<|image_pad|>"),
        "video_token_id": special_token_id("<|video_pad|>"),
        "vision_start_token_id": special_token_id("<|vision_start|>"),
        "vision_end_token_id": special_token_id("<|vision_end|>"),
        "tie_word_embeddings": False,
        "dtype": "bfloat16",
    }


def drafter_config(target: dict[str, Any], draft_layer_ids: tuple[int, ...] = DRAFT_LAYER_IDS) -> dict[str, Any]:
    """config.json of a one-layer EAGLE-3 drafter for ``target`` (hidden size and vocabulary shared)."""
    text = target.get("text_config", target)
    if not all(0 <= i <= text["num_hidden_layers"] - 2 for i in draft_layer_ids):
        raise ValueError(f"draft ids {draft_layer_ids} outside 0..{text['num_hidden_layers'] - 2}")
    return {
        "architectures": [DRAFTER_ARCHITECTURE],
        "model_type": "llama",
        "hidden_size": text["hidden_size"],
        "target_hidden_size": text["hidden_size"],
        "intermediate_size": 512,
        "num_hidden_layers": 1,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 64,
        "hidden_act": "silu",
        "rms_norm_eps": 1e-6,
        "max_position_embeddings": 4096,
        "rope_theta": 10_000_000.0,
        "vocab_size": text["vocab_size"],
        "draft_vocab_size": text["vocab_size"],
        "tie_word_embeddings": False,
        "eagle_config": {
            "eagle_aux_hidden_state_layer_ids": list(draft_layer_ids),
            "use_aux_hidden_state": True,
        },
        "dtype": "bfloat16",
    }


def write_target(folder: Path, architecture: str, *, seed: int = 0) -> dict[str, Any]:
    """Write config.json, model.safetensors and the tokenizer of a tiny target into ``folder``."""
    config = target_config(architecture)
    _write_checkpoint(folder, config, target_tensors(config), seed=seed)
    write_tokenizer(folder)
    if architecture != TEXT_ARCHITECTURE:
        _write_json(folder / "preprocessor_config.json", _preprocessor_config(config["vision_config"]))
    return config


def write_drafter(folder: Path, target: dict[str, Any], *, seed: int = 1) -> dict[str, Any]:
    config = drafter_config(target)
    _write_checkpoint(folder, config, drafter_tensors(config), seed=seed)
    return config


def write_tokenizer(folder: Path) -> None:
    """A byte-level BPE tokenizer with no merges: every text round-trips, nothing to download."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {symbol: index for index, symbol in enumerate(alphabet)}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens(list(SPECIAL_TOKENS))
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(folder / "tokenizer.json"))
    _write_json(
        folder / "tokenizer_config.json",
        {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "eos_token": "<|endoftext|>",
            "pad_token": "<|endoftext|>",
            "model_max_length": 4096,
        },
    )


def _is_offset_norm(name: str) -> bool:
    """Qwen3.5's text RMSNorm scales by (1 + weight), so zero is its neutral value.

    Its gated norm (``linear_attn.norm``), the vision LayerNorms and the drafter's
    Llama RMSNorm scale by ``weight``: one is theirs.
    """
    return (
        name.startswith("model.")
        and not name.startswith("model.visual.")
        and "linear_attn" not in name
        and name.endswith("norm.weight")
    )


def _initial_value(name: str, shape: tuple[int, ...], generator: Any) -> Any:
    """Random weights that keep activations tame: unit-ish norms, small projections."""
    import torch

    if name.endswith("A_log"):
        return torch.log(torch.empty(shape).uniform_(1.0, 16.0, generator=generator))
    if name.endswith("dt_bias"):
        return torch.ones(shape)
    if len(shape) == 1:
        if name.endswith(".bias"):
            return torch.zeros(shape)
        return torch.zeros(shape) if _is_offset_norm(name) else torch.ones(shape)
    fan_in = math.prod(shape[1:])
    scale = 1.0 if name.endswith("embed_tokens.weight") else 1.0 / math.sqrt(fan_in)
    return torch.randn(shape, generator=generator) * scale


def _write_checkpoint(folder: Path, config: dict[str, Any], shapes: Shapes, *, seed: int) -> None:
    import torch
    from safetensors.torch import save_file

    generator = torch.Generator().manual_seed(seed)
    tensors = {
        name: _initial_value(name, shape, generator).to(torch.bfloat16).contiguous() for name, shape in shapes.items()
    }
    folder.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    _write_json(folder / "config.json", config)


def _preprocessor_config(vision: dict[str, Any]) -> dict[str, Any]:
    return {
        "image_processor_type": "Qwen2VLImageProcessorFast",
        "patch_size": vision["patch_size"],
        "temporal_patch_size": vision["temporal_patch_size"],
        "merge_size": vision["spatial_merge_size"],
        "image_mean": [0.5, 0.5, 0.5],
        "image_std": [0.5, 0.5, 0.5],
        "size": {"shortest_edge": 4096, "longest_edge": 65536},
    }


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
