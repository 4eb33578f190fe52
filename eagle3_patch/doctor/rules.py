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
from typing import Any

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
class Finding:
    rule: str
    detail: str
    fix: str


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
        yield Finding("aux-ids-range", f"{IDS} must be a list of integers, not {ids!r}", "fix the drafter's config")
        return
    n = layer_count(pair.target)
    if n is not None:
        for i in ids:
            if i < 0:
                yield Finding(
                    "aux-ids-range",
                    f"id {i} is negative: SGLang silently flags a layer counted from the end",
                    f"use ids from 0 to {n - 2} (the draft id i captures decoder layer i+1)",
                )
            elif i > n - 2:
                yield Finding(
                    "aux-ids-range",
                    f"id {i} is out of range for a {n}-layer target: after the +1 shift it crashes at start-up",
                    f"use ids from 0 to {n - 2}",
                )
    duplicates = sorted(i for i, seen in Counter(ids).items() if seen > 1)
    if duplicates:
        yield Finding(
            "aux-ids-duplicate",
            f"ids {duplicates} repeat: each layer is captured once, so fc gets fewer features than it expects",
            "list each layer once",
        )


def width_rules(pair: Pair) -> Iterator[Finding]:
    draft, target = pair.draft.config, text_config(pair.target.config)
    hidden = target.get("hidden_size")
    hidden_in = draft.get("target_hidden_size", draft.get("hidden_size"))
    if isinstance(hidden, int) and hidden_in != hidden:
        field = "target_hidden_size" if "target_hidden_size" in draft else "hidden_size (no target_hidden_size)"
        yield Finding(
            "target-hidden-size",
            f"the drafter's {field} is {hidden_in}, the target's hidden_size is {hidden}",
            f'set "target_hidden_size": {hidden} in the drafter\'s config.json (or use a drafter for this target)',
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
            "make them equal (or drop num_aux_hidden_states)",
        )


def weight_rules(pair: Pair) -> Iterator[Finding]:
    draft = pair.draft
    config = draft.config
    ids = aux_ids(draft)
    count = config.get("num_aux_hidden_states") or (len(ids) if isinstance(ids, list) and ids else DEFAULT_AUX)
    hidden_in = config.get("target_hidden_size", config.get("hidden_size"))
    fc = tensor(draft, "fc.weight")
    if fc is not None and isinstance(hidden_in, int) and len(fc) == 2 and fc[1] != hidden_in * count:
        yield Finding(
            "fc-width",
            f"fc.weight takes {fc[1]} features; the config makes it {hidden_in} x {count} = {hidden_in * count}",
            "the config does not match the weights: fix target_hidden_size or the aux ids",
        )
    draft_vocab = config.get("draft_vocab_size") or config.get("vocab_size")
    for name in ("d2t", "lm_head.weight"):
        shape = tensor(draft, name)
        if shape == ():
            yield Finding(
                "draft-vocab",
                f"{name} is a 0-d tensor (shape []): it has no rows, one per draft token",
                "the weights are not an EAGLE-3 drafter's: export the drafter again",
            )
        elif shape is not None and draft_vocab is not None and shape[0] != draft_vocab:
            yield Finding(
                "draft-vocab",
                f"{name} has {shape[0]} rows; draft_vocab_size is {draft_vocab}",
                f'set "draft_vocab_size": {shape[0]} (the weights decide)',
            )


RULES: tuple[Callable[[Pair], Iterator[Finding]], ...] = (target_rules, draft_rules, id_rules, width_rules)
WEIGHT_RULES: tuple[Callable[[Pair], Iterator[Finding]], ...] = (weight_rules,)


def diagnose(pair: Pair) -> tuple[tuple[Finding, ...], tuple[str, ...]]:
    """Every problem, and the warnings (what could not be checked)."""
    problems = [finding for rule in RULES for finding in rule(pair)]
    warnings = []
    if pair.draft.shapes is None:
        warnings.append("fc-width, draft-vocab: not checked: no weights (no *.safetensors beside the drafter's config)")
    else:
        problems += [finding for rule in WEIGHT_RULES for finding in rule(pair)]
    return tuple(problems), tuple(warnings)
