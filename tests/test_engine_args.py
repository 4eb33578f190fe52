"""Engine keyword arguments from each release's ServerArgs, read with ast (no sglang import)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from eagle3_patch.locate import Install, locate_root
from eagle3_patch.verify.engine_args import (
    EngineArgsError,
    ServerArgsFields,
    common_options,
    eagle3_options,
    engine_kwargs,
    read_server_args,
)

SPECULATIVE = {
    "speculative_algorithm": "EAGLE3",
    "speculative_draft_model_path": "/draft",
    "speculative_num_steps": 3,
    "speculative_eagle_topk": 1,
    "speculative_num_draft_tokens": 4,
}


def options(multimodal: bool = False) -> tuple:
    return common_options(model_path="/target", mem_fraction=0.3, multimodal=multimodal) + eagle3_options(
        draft_path="/draft"
    )


@pytest.mark.corpus
def test_every_served_release_gets_only_fields_it_has(served_release: str, release_site: Callable[[str], Path]) -> None:
    install = locate_root(release_site(served_release), found_by="test")
    fields = read_server_args(install)
    assert len(fields.fields) > 300, "ServerArgs read in full"
    assert fields.required == {"model_path"}
    kwargs = engine_kwargs(fields, options(multimodal=True))
    assert set(kwargs) <= fields.fields
    assert {k: kwargs[k] for k in SPECULATIVE} == SPECULATIVE
    strategy = [k for k in kwargs if k in ("mamba_scheduler_strategy", "mamba_radix_cache_strategy")]
    assert len(strategy) == 1 and kwargs[strategy[0]] == "extra_buffer"
    assert kwargs["disable_cuda_graph"] is False and kwargs["model_path"] == "/target"


def fields(*names: str, required: tuple[str, ...] = ("model_path",)) -> ServerArgsFields:
    return ServerArgsFields("9.9.9", frozenset(names), frozenset(required))


def test_renamed_option_uses_the_name_the_release_knows() -> None:
    base = ("model_path", "mamba_radix_cache_strategy", *SPECULATIVE)
    kwargs = engine_kwargs(fields(*base), options())
    assert kwargs["mamba_radix_cache_strategy"] == "extra_buffer"
    assert "mamba_scheduler_strategy" not in kwargs
    assert "dtype" not in kwargs, "optional settings the release lacks are left out"


def test_missing_required_option_names_the_release() -> None:
    with pytest.raises(EngineArgsError, match=r"sglang 9\.9\.9 has no Engine option speculative_eagle_topk"):
        engine_kwargs(fields("model_path", "mamba_scheduler_strategy", "speculative_algorithm",
                             "speculative_draft_model_path", "speculative_num_steps",
                             "speculative_num_draft_tokens"), options())  # fmt: skip


def test_unknown_required_field_is_refused() -> None:
    with pytest.raises(EngineArgsError, match="requires Engine options eagle3-patch does not know: new_thing"):
        engine_kwargs(fields("model_path", "mamba_scheduler_strategy", "new_thing", *SPECULATIVE,
                             required=("model_path", "new_thing")), options())  # fmt: skip


def make_server_args(tmp_path: Path, source: str, extra: dict[str, str] | None = None) -> Install:
    package = tmp_path / "sglang"
    (package / "srt" / "models").mkdir(parents=True)
    (package / "srt" / "server_args.py").write_text(source)
    for relative, text in (extra or {}).items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return locate_root(tmp_path, found_by="test")


def test_dataclass_server_args(tmp_path: Path) -> None:
    install = make_server_args(
        tmp_path,
        "import dataclasses\nfrom typing import ClassVar\n\n@dataclasses.dataclass\nclass ServerArgs:\n"
        "    model_path: str\n    dtype: str = 'auto'\n    KIND: ClassVar[str] = 'x'\n",
    )
    read = read_server_args(install)
    assert (read.fields, read.required) == ({"model_path", "dtype"}, {"model_path"})


def test_namespace_server_args(tmp_path: Path) -> None:
    install = make_server_args(
        tmp_path,
        "from sglang.srt.arg_groups.fields.spec import Spec\nfrom sglang.srt.arg_groups.fields.model import Model\n\n"
        "class ServerArgs:\n    pass\n\n_INPUT_NAMESPACES = [Model, Spec]\n",
        {
            "sglang/srt/arg_groups/fields/spec.py": "class Base:\n    shared: int = 1\n\n"
            "class Spec(Base):\n    _NS_PATH = 'spec'\n    speculative_algorithm: str = None\n",
            "sglang/srt/arg_groups/fields/model.py": "class Model:\n    model_path: str\n",
        },
    )
    read = read_server_args(install)
    assert read.fields == {"model_path", "shared", "speculative_algorithm"}
    assert read.required == {"model_path"}


def test_missing_server_args_is_a_clear_error(tmp_path: Path) -> None:
    install = make_server_args(tmp_path, "x = 1\n")
    with pytest.raises(EngineArgsError, match="defines no ServerArgs class"):
        read_server_args(install)
