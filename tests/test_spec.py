"""The shipped data: targets, anchors, templates, markers and the verified table."""

from __future__ import annotations

import ast

import pytest
from packaging.version import Version

from eagle3_patch.errors import SpecError
from eagle3_patch.spec import Anchor, load_spec, spec_from_toml
from eagle3_patch.verified import load_verified


def test_targets_cover_the_classes_in_the_facts() -> None:
    spec = load_spec()
    targets = {(f.name, c.name, c.role) for f in spec.files for c in f.classes}
    assert targets == {
        ("qwen3_5.py", "Qwen3_5ForCausalLM", "decoder"),
        ("qwen3_5.py", "Qwen3_5ForConditionalGeneration", "wrapper"),
        ("qwen3_5.py", "Qwen3_5MoeForConditionalGeneration", "wrapper"),
        ("qwen3_5_text.py", "Qwen3_5ForCausalLM", "wrapper"),
    }
    assert spec.files[0].name == "qwen3_5.py", "the decoder's file is classified first"
    assert [f.required for f in spec.files] == [True, False]


@pytest.mark.parametrize("name", ["decoder", "wrapper"])
def test_templates_are_one_method_with_the_hook_signature(name: str) -> None:
    spec = load_spec()
    template = spec.template(name)
    tree = ast.parse(template.source)
    assert len(tree.body) == 1 and isinstance(tree.body[0], ast.FunctionDef)
    method = tree.body[0]
    assert method.name == spec.hook
    assert [a.arg for a in method.args.args][0] == "self"
    assert "\t" not in template.source and template.source.endswith("\n")


def test_wrapper_default_and_none_semantics_are_in_the_template() -> None:
    source = load_spec().template("wrapper").source
    assert "[2, num_layers // 2, num_layers - 3]" in source
    assert "layer_id + 1" in source
    assert "is_last_rank" in source


def test_anchor_parse() -> None:
    assert Anchor.parse("after:get_embed_and_head") == Anchor("get_embed_and_head")
    assert Anchor.parse("end") == Anchor(None)
    for bad in ("before:x", "after:", "after:not valid", "start"):
        with pytest.raises(SpecError):
            Anchor.parse(bad)


def test_inconsistent_data_is_refused() -> None:
    base = """
format = 1
hook = "h"
capture_flag = "f"
[templates.t]
version = 1
source = "def h(self):\\n    pass\\n"
[[files]]
name = "x.py"
  [[files.classes]]
  name = "C"
  role = "{role}"
  template = "{template}"
  anchors = ["end"]
"""
    assert spec_from_toml(base.format(role="decoder", template="t")).files[0].classes[0].name == "C"
    with pytest.raises(SpecError, match="unknown role"):
        spec_from_toml(base.format(role="other", template="t"))
    with pytest.raises(SpecError, match="unknown template"):
        spec_from_toml(base.format(role="decoder", template="missing"))


def test_verified_table_is_ordered_and_complete() -> None:
    releases = load_verified()
    versions = [Version(r.version) for r in releases]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    for release in releases:
        assert release.verdict in {"patch", "native", "unsupported"}
        if release.verdict == "patch":
            assert "qwen3_5.py" in {f.name for f in release.files}
            assert all(f.patched_sha256 for f in release.files)
        if release.verdict == "native":
            assert not any(f.patched_sha256 for f in release.files)
        if release.verdict == "unsupported":
            assert release.reason
