"""Named rules: each mistake that would crash SGLang or silently waste the drafter, with its fix.

Facts behind them (``SGLANG_FACTS.md``; ``llama_eagle3.py`` of 0.5.21 read with ``ast``):
draft id ``i`` captures decoder layer ``i + 1``, so an id above ``n - 2`` raises at
start-up and a negative one flags a layer from the end; the target reads the ids
only from ``eagle_config``; a duplicate id is captured once, so the drafter's
``fc`` (``target_hidden_size`` or ``hidden_size``, times ``num_aux_hidden_states``,
else the number of ids, else 3) gets fewer features than it expects.

The sizes they read (``checkpoint.INTEGER_FIELDS``) are positive integers or
unset, and every shape is a tuple of whole numbers: ``checkpoint.py`` refuses
anything else, so the arithmetic here never meets a string or a float.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from eagle3_patch.doctor.checkpoint import Checkpoint
from eagle3_patch.doctor.release import DRAFT_FEATURES, Release

IDS = "eagle_aux_hidden_state_layer_ids"
DEFAULT_AUX = 3

#: Qwen3.5-family architectures: those served through the patched classes, and one whose capture
#: chain is broken even natively (its model's forward drops the captured states).
QWEN3_5_FAMILY = (
    "Qwen3_5ForConditionalGeneration",
    "Qwen3_5MoeForConditionalGeneration",
    "Qwen3_5ForCausalLM",
    "Qwen3_5MoeForCausalLM",
    "InternS2PreviewForConditionalGeneration",
    "InternS2MobiusForConditionalGeneration",
)
BROKEN_NATIVELY = ("Qwen4ExpForConditionalGeneration",)


@dataclass(frozen=True)
class Edit:
    """The fix as a change a tool can make: ``key`` (dotted) in a config.json set to ``value``, or a launch option.

    Printed in ``--json`` so a script (and the convergence test) can follow the
    fix without parsing the sentence.
    """

    where: Literal["draft", "target", "option"]
    key: str
    value: int | list[int]


@dataclass(frozen=True)
class Finding:
    rule: str
    detail: str
    fix: str
    edit: Edit | None = None


@dataclass(frozen=True)
class Pair:
    """What the rules look at: both checkpoints, the release, and the install's capture state."""

    target: Checkpoint
    draft: Checkpoint
    release: Release
    capture_state: str
    #: ``eagle3-patch <words>`` for this install (its --sglang-root/--python), for the fixes printed.
    command: Callable[..., str]
    #: Where verify's static chain breaks (patched or native installs), None when it holds.
    broken_chain: str | None = None
    #: The launch's ``--tp``, when given.
    tp: int | None = None


def architecture(config: Mapping[str, Any]) -> str:
    names = config.get("architectures")
    return str(names[0]) if isinstance(names, list) and names else ""


def text_config(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """The language model's settings: ``text_config`` in the VL wrappers, the top level otherwise."""
    nested = config.get("text_config")
    return nested if isinstance(nested, dict) else config


def layer_count(target: Checkpoint) -> int | None:
    value = text_config(target.config).get("num_hidden_layers")
    return value if isinstance(value, int) and value > 0 else None


def aux_ids(draft: Checkpoint) -> Any:
    eagle = draft.config.get("eagle_config")
    return eagle.get(IDS) if isinstance(eagle, dict) else None


def tensor(draft: Checkpoint, name: str) -> tuple[int, ...] | None:
    """The shape of ``name`` (or ``<prefix>.name``) in the drafter's weights."""
    assert draft.shapes is not None
    for key, shape in draft.shapes.items():
        if key == name or key.endswith("." + name):
            return shape
    return None


def target_rules(pair: Pair) -> Iterator[Finding]:
    arch = architecture(pair.target.config)
    if arch in BROKEN_NATIVELY:
        yield Finding(
            "target-capture-broken",
            f"{arch}: its model's forward drops the captured aux hidden states, in every release",
            "serve this target without EAGLE-3 (or with MTP) until SGLang fixes it",
        )
        return
    if arch not in QWEN3_5_FAMILY:
        yield Finding(
            "target-architecture",
            f"{arch or 'no architectures in config.json'}: not a Qwen3.5/Qwen3.6 architecture",
            "point --target at a Qwen3.5 or Qwen3.6 checkpoint",
        )
        return
    if arch not in pair.release.architectures:
        yield Finding(
            "target-not-served",
            f"sglang {pair.release.version} does not register {arch}",
            "install an sglang release that serves it (text-only Qwen3.5 classes arrived in 0.5.17)",
        )
    if pair.capture_state == "unpatched":
        yield Finding(
            "target-capture",
            f"sglang {pair.release.version} never captures aux hidden states for {arch}",
            f"run: {pair.command('apply')}",
        )
    elif pair.broken_chain is not None:
        yield Finding(
            "target-capture",
            f"sglang {pair.release.version} reads as {pair.capture_state}, but a capture link is missing: "
            f"{pair.broken_chain}",
            f"run `{pair.command('verify')}` for the full chain; a reinstall and `{pair.command('apply')}` restore it",
        )
    elif pair.capture_state not in ("patched", "native"):
        yield Finding(
            "target-capture",
            f"sglang {pair.release.version} is {pair.capture_state} for EAGLE-3 capture",
            f"see `{pair.command('status')}` for why",
        )
    if layer_count(pair.target) is None:
        yield Finding("target-config", "no num_hidden_layers in the target's config", "use the model's own config.json")


def draft_rules(pair: Pair) -> Iterator[Finding]:
    draft, release = pair.draft, pair.release
    arch = architecture(draft.config)
    if arch not in release.architectures:
        yield Finding(
            "draft-architecture",
            f"sglang {release.version} does not register {arch or 'the drafter (no architectures)'}",
            "use an EAGLE-3 drafter SGLang serves (LlamaForCausalLMEagle3), or a release that has this one",
        )
    for feature in DRAFT_FEATURES:
        eagle = draft.config.get("eagle_config")
        wanted = draft.config.get(feature) or (isinstance(eagle, dict) and eagle.get(feature))
        if feature == "fc_norm":
            wanted = wanted or draft.config.get("use_aux_norm")
        if wanted and feature not in release.draft_features:
            yield Finding(
                "draft-feature",
                f"the drafter sets {feature}, which sglang {release.version} ignores: it would run without that norm",
                "use a release whose llama_eagle3.py reads it, or a drafter trained without it",
            )


def id_rules(pair: Pair) -> Iterator[Finding]:
    draft = pair.draft
    ids, top = aux_ids(draft), draft.config.get(IDS)
    if top is not None and ids is None:
        yield Finding(
            "aux-ids-location",
            f"{IDS} is at the top level of the drafter's config.json; the target reads it only from "
            "eagle_config and captures its defaults, while the drafter sizes fc from the top level",
            f'move it under "eagle_config": {{"{IDS}": {top}}}',
            Edit("draft", f"eagle_config.{IDS}", top) if _int_list(top) else None,
        )
    elif top is not None and top != ids:
        yield Finding(
            "aux-ids-location",
            f"{IDS} differs between the top level ({top}) and eagle_config ({ids})",
            "keep one list, under eagle_config",
        )
    if ids is None:
        return
    if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        yield Finding(
            "aux-ids-range",
            f"eagle_config.{IDS} must be a list of integers, not {ids!r}",
            f"set eagle_config.{IDS} in the drafter's config.json to the layer ids it was trained with",
        )
        return
    n = layer_count(pair.target)
    if n is not None:
        for i in ids:
            if i < 0:
                yield Finding(
                    "aux-ids-range",
                    f"id {i} is negative: SGLang silently flags a layer counted from the end",
                    f"set eagle_config.{IDS} in the drafter's config.json to the ids it was trained with, "
                    f"each from 0 to {n - 2} (the draft id i captures decoder layer i+1)",
                )
            elif i > n - 2:
                yield Finding(
                    "aux-ids-range",
                    f"id {i} is out of range for a {n}-layer target: after the +1 shift it crashes at start-up",
                    f"set eagle_config.{IDS} in the drafter's config.json to ids from 0 to {n - 2} "
                    "(a drafter trained with this id was trained for a deeper target)",
                )
    duplicates = sorted(i for i, seen in Counter(ids).items() if seen > 1)
    if duplicates:
        yield Finding(
            "aux-ids-duplicate",
            f"ids {duplicates} repeat: each layer is captured once, so fc gets fewer features than it expects",
            f"list each layer once in eagle_config.{IDS}",
        )


def width_rules(pair: Pair) -> Iterator[Finding]:
    draft, target = pair.draft.config, text_config(pair.target.config)
    hidden = target.get("hidden_size")
    hidden_in = draft.get("target_hidden_size", draft.get("hidden_size"))
    # With fc.weight the weights decide (weight_rules): advice from the config alone would be undone by them.
    weights_decide = pair.draft.shapes is not None and fc_features(pair.draft) is not None
    if isinstance(hidden, int) and hidden_in != hidden and not weights_decide:
        yield Finding(
            "target-hidden-size",
            f"the drafter's {_width_field(draft)} is {hidden_in}, the target's hidden_size is {hidden}",
            f'set "target_hidden_size": {hidden} in the drafter\'s config.json (or use a drafter for this target)',
            Edit("draft", "target_hidden_size", hidden),
        )
    vocab = target.get("vocab_size", pair.target.config.get("vocab_size"))
    if isinstance(vocab, int) and draft.get("vocab_size") != vocab:
        yield Finding(
            "vocab-size",
            f"the drafter's vocab_size is {draft.get('vocab_size')}, the target's is {vocab}",
            "use a drafter trained for this target's tokenizer",
        )
    ids = aux_ids(pair.draft)
    explicit = draft.get("num_aux_hidden_states")
    if isinstance(explicit, int) and isinstance(ids, list) and explicit != len(ids):
        yield Finding(
            "aux-count",
            f"num_aux_hidden_states is {explicit} but eagle_config lists {len(ids)} ids: fc's width and "
            "the captured states disagree",
            f'set "num_aux_hidden_states": {len(ids)} (or drop it)',
            Edit("draft", "num_aux_hidden_states", len(ids)),
        )


def fc_features(draft: Checkpoint) -> int | None:
    """The input width of the drafter's ``fc`` layer (aux states x the target's width it was trained on)."""
    fc = tensor(draft, "fc.weight") if draft.shapes is not None else None
    return fc[1] if fc is not None and len(fc) == 2 else None


def _width_field(draft: Mapping[str, Any]) -> str:
    return "target_hidden_size" if "target_hidden_size" in draft else "hidden_size (no target_hidden_size)"


def _aux_count(draft: Checkpoint) -> int:
    """How many aux states SGLang sizes fc for: num_aux_hidden_states, else the number of ids, else 3."""
    ids = aux_ids(draft)
    explicit = draft.config.get("num_aux_hidden_states")
    return explicit or (len(ids) if isinstance(ids, list) and ids else DEFAULT_AUX)


def fc_rules(pair: Pair) -> Iterator[Finding]:
    """The weights say which target the drafter was trained for; the config is checked against them.

    ``fc.weight`` takes (aux states) x (the trained target's width) features. When
    the config agrees with the weights, a different target width means the
    drafter belongs to another target: no config edit can fix that, so none is
    offered (setting target_hidden_size would only move the error to fc).
    """
    features = fc_features(pair.draft)
    hidden = text_config(pair.target.config).get("hidden_size")
    if features is None or not isinstance(hidden, int):
        return
    config = pair.draft.config
    count = _aux_count(pair.draft)
    hidden_in = config.get("target_hidden_size", config.get("hidden_size"))
    if isinstance(hidden_in, int) and hidden_in * count == features:
        if hidden_in != hidden:
            yield _other_target(features, count, hidden_in, hidden)
    elif features == count * hidden:
        yield Finding(
            "target-hidden-size",
            f"fc.weight takes {features} = {count} x {hidden} features, this target's width, but the drafter's "
            f"{_width_field(config)} is {hidden_in}",
            f'set "target_hidden_size": {hidden} in the drafter\'s config.json (the weights decide)',
            Edit("draft", "target_hidden_size", hidden),
        )
    elif features % hidden == 0:
        states = features // hidden
        yield Finding(
            "fc-width",
            f"fc.weight takes {features} = {states} x {hidden} features: the drafter was trained on {states} aux "
            f"states; its config gives {count}",
            f"list the {states} layer ids it was trained with in eagle_config.{IDS}",
        )
    else:
        yield _other_target(features, count, features // count if features % count == 0 else None, hidden)


def _other_target(features: int, count: int, trained: int | None, hidden: int) -> Finding:
    trained_for = f"a {trained}-wide target ({features} = {count} x {trained})" if trained else "another target"
    return Finding(
        "draft-for-other-target",
        f"fc.weight takes {features} features: the drafter was trained for {trained_for}, not this {hidden}-wide one",
        f"use an EAGLE-3 drafter trained for this target (hidden_size {hidden})",
    )


def vocab_rules(pair: Pair) -> Iterator[Finding]:
    config = pair.draft.config
    draft_vocab = config.get("draft_vocab_size") or config.get("vocab_size")
    rows: dict[str, int] = {}
    for name in ("d2t", "lm_head.weight"):
        shape = tensor(pair.draft, name)
        if shape == ():
            yield Finding(
                "draft-vocab",
                f"{name} is a 0-d tensor (shape []): it has no rows, one per draft token",
                "the weights are not an EAGLE-3 drafter's: export the drafter again",
            )
            return
        if shape is not None:
            rows[name] = shape[0]
    if len(set(rows.values())) > 1:
        yield Finding(
            "draft-vocab",
            f"d2t has {rows['d2t']} rows and lm_head.weight {rows['lm_head.weight']}: the weights disagree "
            "with each other, so no draft_vocab_size fits both",
            "export the drafter again (its d2t and lm_head must come from one training run)",
        )
    elif rows and draft_vocab is not None and draft_vocab not in rows.values():
        name, count = next(iter(rows.items()))
        yield Finding(
            "draft-vocab",
            f"{name} has {count} rows; draft_vocab_size is {draft_vocab}",
            f'set "draft_vocab_size": {count} (the weights decide)',
            Edit("draft", "draft_vocab_size", count),
        )


def tp_rules(pair: Pair) -> Iterator[Finding]:
    """``--tp N`` splits every attention layer's heads across N ranks; SGLang asserts they divide.

    Query heads and the linear-attention (GatedDeltaNet) key and value heads
    must be divisible by N; KV heads either divisible by N or, when fewer than
    N, dividing it (they are replicated).
    """
    if pair.tp is None or pair.tp == 1:
        return
    tp = pair.tp
    for side, config in (("target", text_config(pair.target.config)), ("drafter", pair.draft.config)):
        bad = [(key, value) for key, value in _head_counts(config) if not _splits(key, value, tp)]
        if bad:
            valid = [n for n in (1, 2, 4, 8, 16) if all(_splits(k, v, n) for k, v in _head_counts(config))]
            shown = ", ".join(f"{key} {value}" for key, value in bad)
            yield Finding(
                "tp-heads",
                f"--tp {tp} does not split the {side}'s heads ({shown}): SGLang asserts at start-up",
                f"use --tp {' or '.join(map(str, valid))}" if valid else f"use a --tp that divides the {side}'s heads",
                Edit("option", "--tp", max(n for n in valid if n <= tp) if valid else 1),
            )


_HEAD_KEYS = ("num_attention_heads", "num_key_value_heads", "linear_num_key_heads", "linear_num_value_heads")


def _head_counts(config: Mapping[str, Any]) -> list[tuple[str, int]]:
    return [(key, value) for key in _HEAD_KEYS if isinstance(value := config.get(key), int) and value > 0]


def _splits(key: str, heads: int, tp: int) -> bool:
    if key == "num_key_value_heads" and heads < tp:
        return tp % heads == 0
    return heads % tp == 0


def quantized(config: Mapping[str, Any]) -> str | None:
    """The quantization method a config declares (``quantization_config.quant_method``), or None."""
    for settings in (config, text_config(config)):
        declared = settings.get("quantization_config")
        if isinstance(declared, dict):
            return str(declared.get("quant_method") or "quantized")
    return None


def _int_list(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(i, int) and not isinstance(i, bool) for i in value)


RULES: tuple[Callable[[Pair], Iterator[Finding]], ...] = (target_rules, draft_rules, id_rules, width_rules, tp_rules)
WEIGHT_RULES: tuple[Callable[[Pair], Iterator[Finding]], ...] = (fc_rules, vocab_rules)


def diagnose(pair: Pair) -> tuple[tuple[Finding, ...], tuple[str, ...]]:
    """Every problem, and the warnings (what could not be checked)."""
    problems = [finding for rule in RULES for finding in rule(pair)]
    warnings = []
    if pair.draft.shapes is None:
        warnings.append(
            "fc-width, draft-for-other-target, draft-vocab: not checked: no weights "
            "(no *.safetensors beside the drafter's config)"
        )
    else:
        problems += [finding for rule in WEIGHT_RULES for finding in rule(pair)]
    return tuple(problems), tuple(warnings)
