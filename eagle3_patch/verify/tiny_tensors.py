"""Parameter names and shapes of the tiny checkpoints, as Hugging Face saves Qwen3.5 and EAGLE-3 trainers save drafters.

Plain Python, no torch: ``tiny_checkpoints`` turns these into tensors. Like
it, this module is copied beside the cuda level's child script.
"""

from __future__ import annotations

from typing import Any

Shapes = dict[str, tuple[int, ...]]


def target_tensors(config: dict[str, Any]) -> Shapes:
    """Parameter names and shapes of a Qwen3.5 checkpoint with this config, as HF saves them."""
    if "text_config" not in config:
        shapes = _text_tensors(config, "model.")
    else:
        shapes = _text_tensors(config["text_config"], "model.language_model.")
        shapes.update(_vision_tensors(config["vision_config"], "model.visual."))
    text = config.get("text_config", config)
    shapes["lm_head.weight"] = (text["vocab_size"], text["hidden_size"])
    return shapes


def drafter_tensors(config: dict[str, Any]) -> Shapes:
    """The names an EAGLE-3 trainer saves (``midlayer.*``), with their shapes."""
    hidden = config["hidden_size"]
    inner = config["intermediate_size"]
    q = config["num_attention_heads"] * config["head_dim"]
    kv = config["num_key_value_heads"] * config["head_dim"]
    aux = len(config["eagle_config"]["eagle_aux_hidden_state_layer_ids"])
    return {
        "embed_tokens.weight": (config["vocab_size"], hidden),
        # The input layer reads the token embedding and the fused target state: 2x hidden.
        "midlayer.self_attn.q_proj.weight": (q, 2 * hidden),
        "midlayer.self_attn.k_proj.weight": (kv, 2 * hidden),
        "midlayer.self_attn.v_proj.weight": (kv, 2 * hidden),
        "midlayer.self_attn.o_proj.weight": (hidden, q),
        **_gated_mlp("midlayer.mlp.", inner, hidden),
        "midlayer.input_layernorm.weight": (hidden,),
        "midlayer.hidden_norm.weight": (hidden,),
        "midlayer.post_attention_layernorm.weight": (hidden,),
        "fc.weight": (hidden, aux * config["target_hidden_size"]),
        "norm.weight": (hidden,),
        "lm_head.weight": (config["draft_vocab_size"], hidden),
    }


def _text_tensors(text: dict[str, Any], prefix: str) -> Shapes:
    hidden = text["hidden_size"]
    head = text["head_dim"]
    key_dim = text["linear_key_head_dim"] * text["linear_num_key_heads"]
    value_dim = text["linear_value_head_dim"] * text["linear_num_value_heads"]
    value_heads = text["linear_num_value_heads"]
    conv_dim = 2 * key_dim + value_dim
    shapes: Shapes = {f"{prefix}embed_tokens.weight": (text["vocab_size"], hidden), f"{prefix}norm.weight": (hidden,)}
    for index, kind in enumerate(text["layer_types"]):
        layer = f"{prefix}layers.{index}."
        shapes[layer + "input_layernorm.weight"] = (hidden,)
        shapes[layer + "post_attention_layernorm.weight"] = (hidden,)
        shapes.update(_mlp_tensors(text, layer + "mlp."))
        if kind == "linear_attention":
            attn = layer + "linear_attn."
            shapes[attn + "in_proj_qkv.weight"] = (conv_dim, hidden)
            shapes[attn + "in_proj_z.weight"] = (value_dim, hidden)
            shapes[attn + "in_proj_b.weight"] = (value_heads, hidden)
            shapes[attn + "in_proj_a.weight"] = (value_heads, hidden)
            shapes[attn + "conv1d.weight"] = (conv_dim, 1, text["linear_conv_kernel_dim"])
            shapes[attn + "dt_bias"] = (value_heads,)
            shapes[attn + "A_log"] = (value_heads,)
            shapes[attn + "norm.weight"] = (text["linear_value_head_dim"],)
            shapes[attn + "out_proj.weight"] = (hidden, value_dim)
        else:
            attn = layer + "self_attn."
            heads, kv_heads = text["num_attention_heads"], text["num_key_value_heads"]
            shapes[attn + "q_proj.weight"] = (heads * head * 2, hidden)  # queries and the output gate
            shapes[attn + "k_proj.weight"] = (kv_heads * head, hidden)
            shapes[attn + "v_proj.weight"] = (kv_heads * head, hidden)
            shapes[attn + "o_proj.weight"] = (hidden, heads * head)
            shapes[attn + "q_norm.weight"] = (head,)
            shapes[attn + "k_norm.weight"] = (head,)
    return shapes


def _mlp_tensors(text: dict[str, Any], prefix: str) -> Shapes:
    """A dense MLP, or routed experts with a gated shared expert (Qwen3.5 MoE's names)."""
    hidden = text["hidden_size"]
    if "num_experts" not in text:
        return _gated_mlp(prefix, text["intermediate_size"], hidden)
    shapes: Shapes = {prefix + "gate.weight": (text["num_experts"], hidden)}
    for expert in range(text["num_experts"]):
        shapes.update(_gated_mlp(f"{prefix}experts.{expert}.", text["moe_intermediate_size"], hidden))
    shapes.update(_gated_mlp(prefix + "shared_expert.", text["shared_expert_intermediate_size"], hidden))
    shapes[prefix + "shared_expert_gate.weight"] = (1, hidden)
    return shapes


def _gated_mlp(prefix: str, inner: int, hidden: int) -> Shapes:
    return {
        prefix + "gate_proj.weight": (inner, hidden),
        prefix + "up_proj.weight": (inner, hidden),
        prefix + "down_proj.weight": (hidden, inner),
    }


def _vision_tensors(vision: dict[str, Any], prefix: str) -> Shapes:
    width = vision["hidden_size"]
    inner = vision["intermediate_size"]
    patch, temporal = vision["patch_size"], vision["temporal_patch_size"]
    merged = width * vision["spatial_merge_size"] ** 2
    shapes: Shapes = {
        f"{prefix}patch_embed.proj.weight": (width, vision["in_channels"], temporal, patch, patch),
        f"{prefix}patch_embed.proj.bias": (width,),
        f"{prefix}pos_embed.weight": (vision["num_position_embeddings"], width),
    }
    layers = {"merger.norm": (width, None), "merger.linear_fc1": (merged, merged)}
    layers["merger.linear_fc2"] = (vision["out_hidden_size"], merged)
    for index in range(vision["depth"]):
        block = f"blocks.{index}."
        layers.update({block + "norm1": (width, None), block + "norm2": (width, None)})
        layers.update({block + "attn.qkv": (3 * width, width), block + "attn.proj": (width, width)})
        layers.update({block + "mlp.linear_fc1": (inner, width), block + "mlp.linear_fc2": (width, inner)})
    for name, (rows, columns) in layers.items():  # every vision layer has a bias; a norm has no columns
        shapes[f"{prefix}{name}.weight"] = (rows,) if columns is None else (rows, columns)
        shapes[f"{prefix}{name}.bias"] = (rows,)
    return shapes
