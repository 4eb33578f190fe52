"""Evidence that EAGLE-3 capture works, observed on SGLang's own modules while they serve.

Runs inside the process that runs the model (SGLang's scheduler), loaded there by
the ``sitecustomize.py`` shipped beside it when ``EAGLE3_PATCH_EVIDENCE`` names a
file. It changes nothing SGLang computes: it only adds torch forward hooks.

- A global forward pre-hook finds the target's decoder (an ``sglang.srt.models``
  module with ``layers`` and ``embed_tokens``), the EAGLE-3 drafter's model (the
  module of an ``*eagle*`` file that owns ``fc``) and the logits processors the
  first time each runs. (SGLang calls the top-level models' ``forward`` directly,
  so hooks never fire on them; their parts are called as modules.)
- On the target's decoder it records, per forward, the residual stream entering
  each decoder layer, as that layer's ``input_layernorm`` sees it: called with one
  tensor, that tensor is the stream; called as ``norm(x, residual)``, the stream
  is the sum it returns second. It also reads which layers carry
  ``_is_layer_to_capture``, and what the decoder returned.
- On the drafter it records what its ``fc`` layer received.

Each observation is one JSON line appended to the evidence file; ``summarize``
turns the file into the verdict. The rule checked is SGLang's: draft id ``i`` is
the stream entering decoder layer ``i + 1``, concatenated in the draft config's
order, compared with ``torch.equal``.

Self-contained on purpose (stdlib and torch only): the cuda level of ``verify``
and ``scripts/runtime_proof.py`` copy it next to the child script.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

ENV_FILE = "EAGLE3_PATCH_EVIDENCE"
#: JSON list of the draft config's ``eagle_aux_hidden_state_layer_ids``.
ENV_DRAFT_IDS = "EAGLE3_PATCH_EVIDENCE_DRAFT_IDS"
#: Observations kept per kind; a tiny run makes a few dozen.
_MAX_RECORDS = 200
_RECENT_AUX = 8


def install_from_env() -> bool:
    """Start recording if the environment asks for it; True when it did."""
    path = os.environ.get(ENV_FILE)
    if not path:
        return False
    import torch

    draft_ids = json.loads(os.environ.get(ENV_DRAFT_IDS, "null"))
    recorder = Recorder(Path(path), draft_ids)
    recorder.handle = torch.nn.modules.module.register_module_forward_pre_hook(recorder.discover)
    return True


class Recorder:
    """Finds the target and the drafter once, hooks them, and writes what it sees."""

    def __init__(self, path: Path, draft_ids: list[int] | None) -> None:
        self.path = path
        self.draft_ids = draft_ids
        self.handle: Any = None
        self.decoder: Any = None
        self.logits_processors: set[int] = set()
        self.drafter: Any = None
        self.streams: dict[int, Any] = {}
        self.recent_aux: list[Any] = []
        self.counts: dict[str, int] = {}

    # --- discovery -------------------------------------------------------

    def discover(self, module: Any, args: Any) -> None:
        # SGLang's model runner calls the top-level models' .forward directly (no hooks
        # fire there), but they call their parts as modules: look for those parts.
        if self.drafter is None and _is_drafter(module):
            self._attach_drafter(module)
        elif self.decoder is None and _is_decoder(module):
            self._attach_decoder(module)
        elif type(module).__name__ == "LogitsProcessor" and id(module) not in self.logits_processors:
            self.logits_processors.add(id(module))
            module.register_forward_hook(self._logits_returned)
        if self.decoder is not None and self.drafter is not None and len(self.logits_processors) >= 2:
            self.handle.remove()  # the target's and the drafter's logits processors are both hooked

    def _attach_decoder(self, decoder: Any) -> None:
        self.decoder = decoder
        for index, layer in enumerate(decoder.layers):
            norm = getattr(layer, "input_layernorm", None)
            if norm is not None:
                norm.register_forward_hook(self._stream_hook(index), with_kwargs=True)
        decoder.register_forward_pre_hook(self._decoder_starts)
        decoder.register_forward_hook(self._decoder_returns)
        self._write(
            "target",
            {
                "decoder_class": f"{type(decoder).__module__}.{type(decoder).__name__}",
                "num_layers": len(decoder.layers),
                "hidden_size": _hidden_size(decoder),
                "norm_hooks": sum(hasattr(layer, "input_layernorm") for layer in decoder.layers),
            },
        )

    def _attach_drafter(self, module: Any) -> None:
        self.drafter = module
        module.fc.register_forward_pre_hook(self._fc_input)
        self._write("drafter", {"class": f"{type(module).__module__}.{type(module).__name__}"})

    # --- target ----------------------------------------------------------

    def _decoder_starts(self, module: Any, args: Any) -> None:
        self.streams = {}

    def _stream_hook(self, index: int) -> Any:
        import torch

        def hook(module: Any, args: Any, kwargs: Any, output: Any) -> None:
            inputs = [a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)]
            if len(inputs) == 1:
                self.streams[index] = inputs[0].detach().clone()
            elif isinstance(output, tuple) and len(output) >= 2 and isinstance(output[1], torch.Tensor):
                self.streams[index] = output[1].detach().clone()

        return hook

    def _decoder_returns(self, module: Any, args: Any, output: Any) -> None:
        import torch

        flagged = [i for i, layer in enumerate(module.layers) if getattr(layer, "_is_layer_to_capture", False)]
        record: dict[str, Any] = {
            "flagged_layers": flagged,
            "returned_tuple": isinstance(output, tuple),
            "observed_layers": sorted(self.streams),
        }
        aux = _packed(output[1]) if isinstance(output, tuple) and len(output) >= 2 else None
        if aux is not None:
            record["aux_shape"] = list(aux.shape)
            record["aux_finite"] = bool(torch.isfinite(aux.float()).all())
            self.recent_aux = [*self.recent_aux[-(_RECENT_AUX - 1) :], aux.detach().clone()]
            wanted = expected_layers(self.draft_ids, len(module.layers))
            record["expected_layers"] = wanted
            if all(layer in self.streams for layer in wanted):
                expected = torch.cat([self.streams[layer] for layer in wanted], dim=-1)
                record["expected_shape"] = list(expected.shape)
                record["aux_equals_layer_inputs"] = expected.shape == aux.shape and bool(torch.equal(expected, aux))
            else:
                record["aux_equals_layer_inputs"] = False
                record["detail"] = f"no stream observed for layers {[w for w in wanted if w not in self.streams]}"
        self._write("decoder_forward", record)

    def _logits_returned(self, module: Any, args: Any, output: Any) -> None:
        import torch

        logits = getattr(output, "next_token_logits", None)
        if isinstance(logits, torch.Tensor):
            self._write("logits", {"finite": bool(torch.isfinite(logits.float()).all())})

    # --- drafter ---------------------------------------------------------

    def _fc_input(self, module: Any, args: Any) -> None:
        import torch

        hidden = args[0] if args and isinstance(args[0], torch.Tensor) else None
        if hidden is None:
            return
        record: dict[str, Any] = {"columns": int(hidden.shape[-1]), "rows": int(hidden.shape[0])}
        record["finite"] = bool(torch.isfinite(hidden.float()).all())
        record["rows_from_target_aux"] = _rows_within(hidden, self.recent_aux)
        self._write("draft_fc", record)

    def _write(self, kind: str, record: dict[str, Any]) -> None:
        count = self.counts.get(kind, 0)
        if count >= _MAX_RECORDS:
            return
        self.counts[kind] = count + 1
        line = json.dumps({"kind": kind, "pid": os.getpid(), **record})
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")


def expected_layers(draft_ids: list[int] | None, num_layers: int) -> list[int]:
    """SGLang's rule: draft id i is decoder layer i + 1; no ids means layers 2, n // 2 and n - 3."""
    if draft_ids is None:
        return [2, num_layers // 2, num_layers - 3]
    return [i + 1 for i in draft_ids]


def _is_decoder(module: Any) -> bool:
    """The target's decoder: an SGLang model part with decoder ``layers`` and ``embed_tokens``."""
    import torch

    kind = type(module).__module__
    return (
        kind.startswith("sglang.srt.models.")
        and "eagle" not in kind
        and isinstance(getattr(module, "layers", None), torch.nn.ModuleList)
        and hasattr(module, "embed_tokens")
    )


def _is_drafter(module: Any) -> bool:
    """The EAGLE-3 drafter's model: the module of an ``*eagle*`` file that owns the ``fc`` layer."""
    import torch

    kind = type(module).__module__
    return (
        kind.startswith("sglang.srt.models.")
        and "eagle" in kind
        and isinstance(getattr(module, "fc", None), torch.nn.Module)
    )


def _hidden_size(decoder: Any) -> int | None:
    weight = getattr(getattr(decoder, "embed_tokens", None), "weight", None)
    return int(weight.shape[-1]) if weight is not None else None


def _packed(aux: Any) -> Any:
    import torch

    if isinstance(aux, torch.Tensor):
        return aux
    if isinstance(aux, (list, tuple)) and aux and all(isinstance(a, torch.Tensor) for a in aux):
        return torch.cat(list(aux), dim=-1)
    finalize = getattr(aux, "finalize", None)
    return finalize() if callable(finalize) else None


def _rows_within(hidden: Any, recent: list[Any]) -> bool:
    """Is every row the drafter got a row the target returned (bit for bit)?"""
    import torch

    pool = [a for a in recent if a.shape[-1] == hidden.shape[-1]]
    if not pool or hidden.shape[0] == 0:
        return False
    candidates = torch.cat([a.reshape(-1, a.shape[-1]) for a in pool])
    rows = hidden.reshape(-1, hidden.shape[-1])
    return bool((rows[:, None, :] == candidates[None, :, :]).all(-1).any(1).all())


def read(path: Path) -> list[dict[str, Any]]:
    """The observations in an evidence file (none if the run never got that far)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in lines if line.strip()]


def summarize(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The verdict on one run: capture passed only if every observation agrees."""
    targets = [r for r in records if r["kind"] == "target"]
    forwards = [r for r in records if r["kind"] == "decoder_forward"]
    captured = [r for r in forwards if r.get("returned_tuple")]
    fc_inputs = [r for r in records if r["kind"] == "draft_fc"]
    target = targets[0] if targets else {}
    hidden = target.get("hidden_size")
    wanted = next((r["expected_layers"] for r in captured if "expected_layers" in r), None)
    flagged = captured[0]["flagged_layers"] if captured else (forwards[0]["flagged_layers"] if forwards else [])
    problems: list[str] = []
    if not targets:
        problems.append("the target model never ran")
    elif not captured:
        problems.append(f"the decoder returned no aux hidden states in {len(forwards)} forwards")
    if wanted is not None and captured and any(r["flagged_layers"] != sorted(wanted) for r in captured):
        problems.append(f"flagged layers {flagged}, the draft config asks for {sorted(wanted)}")
    aux_equal = bool(captured) and all(r.get("aux_equals_layer_inputs") is True for r in captured)
    if captured and not aux_equal:
        bad = next(r for r in captured if r.get("aux_equals_layer_inputs") is not True)
        problems.append(
            "aux hidden states differ from the layer inputs the draft asks for "
            f"(returned {bad.get('aux_shape')}, expected {bad.get('expected_shape')} from layers "
            f"{bad.get('expected_layers')}{'; ' + bad['detail'] if 'detail' in bad else ''})"
        )
    finite = bool(captured) and all(r.get("aux_finite") for r in captured)
    if captured and not finite:
        problems.append("aux hidden states are not finite")
    columns = len(wanted) * hidden if wanted is not None and hidden else None
    consumed = bool(fc_inputs) and columns is not None and all(r["columns"] == columns for r in fc_inputs)
    if not fc_inputs:
        problems.append("the drafter's fc layer never ran")
    elif not consumed:
        problems.append(f"the drafter's fc got {sorted({r['columns'] for r in fc_inputs})} columns, expected {columns}")
    from_target = bool(fc_inputs) and any(r.get("rows_from_target_aux") for r in fc_inputs)
    logits = [r for r in records if r["kind"] == "logits"]
    logits_finite = bool(logits) and all(r["finite"] for r in logits)
    return {
        "capture": "passed" if not problems else "failed",
        "flagged_layers": flagged,
        "expected_layers": wanted,
        "aux_equals_layer_outputs": aux_equal,
        "aux_finite": finite,
        "draft_consumed": consumed,
        "draft_rows_from_target_aux": from_target,
        "logits_finite": logits_finite,
        "target_forwards": len(forwards),
        "captured_forwards": len(captured),
        "draft_fc_calls": len(fc_inputs),
        "fc_columns": sorted({r["columns"] for r in fc_inputs}),
        "decoder_class": target.get("decoder_class"),
        "problems": problems,
    }
