"""The capture evidence recorder, on small torch modules shaped like SGLang's.

The real proof runs it inside SGLang's scheduler (tests/test_runtime_proof.py);
here each rule is shown to pass and to fail on modules we control.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import needs

torch = needs("torch")
nn = torch.nn

from eagle3_patch.verify import capture_evidence  # noqa: E402

HIDDEN = 8
LAYERS = 8


class Layer(nn.Module):
    """A decoder layer in SGLang's style: the norm reads the residual stream."""

    def __init__(self) -> None:
        super().__init__()
        self.input_layernorm = nn.LayerNorm(HIDDEN)
        self.mlp = nn.Linear(HIDDEN, HIDDEN)

    def forward(self, stream: Any, captured: list[Any] | None) -> Any:
        normed = self.input_layernorm(stream)
        if captured is not None:
            captured.append(stream.clone())
        return stream + self.mlp(normed)


class Decoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(32, HIDDEN)
        self.layers = nn.ModuleList(Layer() for _ in range(LAYERS))
        self.skew = 0  # >0: capture the stream after the flagged layer instead of before it

    def forward(self, ids: Any) -> Any:
        stream = self.embed_tokens(ids)
        aux: list[Any] = []
        for layer in self.layers:
            flagged = getattr(layer, "_is_layer_to_capture", False)
            stream = layer(stream, aux if flagged and not self.skew else None)
            if flagged and self.skew:
                aux.append(stream.clone())
        return (stream, aux) if aux else stream


class Target(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.model = Decoder()
        self.logits_processor = nn.Identity()
        self.capture_aux_hidden_states = False

    def forward(self, ids: Any) -> Any:
        return self.model(ids)


class Eagle3Model(nn.Module):
    def __init__(self, columns: int) -> None:
        super().__init__()
        self.fc = nn.Linear(columns, HIDDEN)

    def forward(self, hidden: Any) -> Any:
        return self.fc(hidden)


class TinyEagle3(nn.Module):
    def __init__(self, columns: int) -> None:
        super().__init__()
        self.model = Eagle3Model(columns)

    def forward(self, hidden: Any) -> Any:
        return self.model(hidden)


# The recorder only looks at modules SGLang defines, as SGLang names them.
for _stand_in in (Target, Decoder, Layer):
    _stand_in.__module__ = "sglang.srt.models.stand_in"
for _stand_in in (TinyEagle3, Eagle3Model):
    _stand_in.__module__ = "sglang.srt.models.stand_in_eagle3"


@pytest.fixture
def recorder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    path = tmp_path / "evidence.jsonl"
    monkeypatch.setenv(capture_evidence.ENV_FILE, str(path))
    monkeypatch.setenv(capture_evidence.ENV_DRAFT_IDS, json.dumps([1, 3, 5]))
    handles: list[Any] = []
    real = torch.nn.modules.module.register_module_forward_pre_hook

    def tracked(hook: Any) -> Any:
        handles.append(real(hook))
        return handles[-1]

    monkeypatch.setattr(torch.nn.modules.module, "register_module_forward_pre_hook", tracked)
    assert capture_evidence.install_from_env()
    yield path
    for handle in handles:
        handle.remove()


def serve(target: Target, flags: list[int], draft_columns: int | None = None) -> None:
    """What SGLang does with EAGLE-3: flag layers, run the target, feed its aux to the drafter."""
    for index in flags:
        target.model.layers[index]._is_layer_to_capture = True
    with torch.no_grad():
        # SGLang's model runner calls .forward on the top-level models: no hooks fire there.
        out = target.forward(torch.arange(5))
        aux = torch.cat(out[1], dim=-1) if isinstance(out, tuple) else torch.zeros(5, HIDDEN)
        drafter = TinyEagle3(draft_columns or aux.shape[-1])
        drafter.forward(aux if draft_columns is None else torch.zeros(5, draft_columns))


def verdict(path: Path) -> dict[str, Any]:
    return capture_evidence.summarize(capture_evidence.read(path))


def test_capture_of_the_asked_layers_passes(recorder: Path) -> None:
    serve(Target(), [2, 4, 6])
    result = verdict(recorder)
    assert result["capture"] == "passed", result["problems"]
    assert result["flagged_layers"] == [2, 4, 6] == result["expected_layers"]
    assert result["aux_equals_layer_outputs"] and result["draft_consumed"] and result["draft_rows_from_target_aux"]
    assert result["fc_columns"] == [3 * HIDDEN]


def test_ids_not_shifted_by_one_fail(recorder: Path) -> None:
    serve(Target(), [1, 3, 5])
    result = verdict(recorder)
    assert result["capture"] == "failed"
    assert not result["aux_equals_layer_outputs"]
    assert any("flagged layers [1, 3, 5]" in p for p in result["problems"])


def test_capturing_after_instead_of_before_the_layer_fails(recorder: Path) -> None:
    target = Target()
    target.model.skew = 1
    serve(target, [2, 4, 6])
    result = verdict(recorder)
    assert result["flagged_layers"] == [2, 4, 6]
    assert not result["aux_equals_layer_outputs"] and result["capture"] == "failed"


def test_one_layer_too_few_fails_capture_and_consumption(recorder: Path) -> None:
    serve(Target(), [2, 4])
    result = verdict(recorder)
    assert result["capture"] == "failed"
    assert not result["draft_consumed"] and result["fc_columns"] == [2 * HIDDEN]


def test_no_capture_at_all_is_named(recorder: Path) -> None:
    serve(Target(), [], draft_columns=3 * HIDDEN)
    result = verdict(recorder)
    assert result["capture"] == "failed"
    assert "returned no aux hidden states" in result["problems"][0]


def test_an_empty_evidence_file_means_the_model_never_ran(tmp_path: Path) -> None:
    result = capture_evidence.summarize(capture_evidence.read(tmp_path / "missing.jsonl"))
    assert result["capture"] == "failed" and result["problems"][0] == "the target model never ran"


def test_default_layers_follow_sglang_rule() -> None:
    assert capture_evidence.expected_layers(None, 64) == [2, 32, 61]
    assert capture_evidence.expected_layers([1, 31, 60], 64) == [2, 32, 61]
