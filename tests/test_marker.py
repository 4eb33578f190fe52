"""marker.py: one rule for "this block is ours", asked the same way by classify, transform and validate."""

from __future__ import annotations

import ast
from pathlib import Path

import libcst as cst
import pytest

from eagle3_patch.marker import (
    MARKER,
    Marker,
    block_lines,
    choose_anchor,
    marker_line,
    marker_of,
    parse_marker,
)
from eagle3_patch.source import source_lines
from eagle3_patch.spec import Anchor, load_spec
from eagle3_patch.transform import Insertion, TransformSuccess, is_marked, patch_source
from tests.conftest import FIXTURES

HOOK = "set_eagle3_layers_to_capture"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("# [EAGLE3-PATCH] decoder-v2: added by eagle3-patch", Marker("decoder", 2)),
        ("# [EAGLE3-PATCH decoder-v1] added by eagle3-patch", Marker("decoder", 1)),
        ("# [EAGLE3-PATCH] from the one-shot script", Marker(None, 0)),
        ("# [EAGLE3-PATCH", Marker(None, 0)),
        ("# unrelated", None),
    ],
)
def test_parse_marker(text: str, expected: Marker | None) -> None:
    assert parse_marker(text) == expected


@pytest.mark.parametrize("name", [t.name for t in load_spec().templates])
def test_our_marker_line_starts_with_the_literal_tag_and_names_the_template(name: str) -> None:
    template = load_spec().template(name)
    line = marker_line(template.ident)
    assert line.startswith(f"# {MARKER} {template.ident}")
    assert line.count(MARKER) == 1
    assert parse_marker(line) == Marker(name, template.version)
    assert "eagle3-patch revert" in line


def test_block_extent_is_the_method_and_its_blank_and_comment_lines() -> None:
    source = (
        "class A:\n"
        "    x = 1\n"
        "\n"
        "    # [EAGLE3-PATCH] decoder-v2: ours\n"
        "    # a second comment\n"
        "    def set_eagle3_layers_to_capture(self, ids):\n"
        "        self.ids = ids\n"
    )
    lines = source_lines(source.encode())
    method = ast.parse(source).body[0].body[1]  # type: ignore[attr-defined]
    assert list(block_lines(method, lines)) == [2, 3, 4, 5, 6]
    assert marker_of(method, lines) == Marker("decoder", 2)


def test_a_marker_above_the_statement_before_does_not_count() -> None:
    source = (
        "class A:\n"
        "    # [EAGLE3-PATCH] decoder-v2: about x\n"
        "    x = 1\n"
        "    def set_eagle3_layers_to_capture(self, ids):\n"
        "        self.ids = ids\n"
    )
    method = ast.parse(source).body[0].body[1]  # type: ignore[attr-defined]
    assert marker_of(method, source_lines(source.encode())) is None


def test_choose_anchor_takes_the_first_anchor_the_class_has_after_its_last_definition() -> None:
    anchors = (Anchor("set_dflash_layers_to_capture"), Anchor("get_embed_and_head"), Anchor(None))
    assert choose_anchor(anchors, ["", "get_embed_and_head", "forward", "get_embed_and_head"]) == (anchors[1], 4)
    assert choose_anchor(anchors, ["forward"]) == (anchors[2], 1)
    assert choose_anchor(anchors[:2], ["forward"]) is None


def _hooks(path: Path) -> list[tuple[str, bool, bool]]:
    """Each top-level class's hook: (class, ours by the ast rule, ours by the libcst rule)."""
    content = path.read_bytes()
    lines = source_lines(content)
    by_ast = {
        node.name: marker_of(statement, lines) is not None
        for node in ast.parse(content).body
        if isinstance(node, ast.ClassDef)
        for statement in node.body
        if isinstance(statement, ast.FunctionDef) and statement.name == HOOK
    }
    by_cst = {
        node.name.value: is_marked(statement)
        for node in cst.parse_module(content).body
        if isinstance(node, cst.ClassDef) and isinstance(node.body, cst.IndentedBlock)
        for statement in node.body.body
        if isinstance(statement, cst.FunctionDef) and statement.name.value == HOOK
    }
    assert by_ast.keys() == by_cst.keys()
    return [(name, by_ast[name], by_cst[name]) for name in by_ast]


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*/*.py")), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_ast_and_libcst_agree_on_which_hooks_are_ours(path: Path) -> None:
    for name, by_ast, by_cst in _hooks(path):
        assert by_ast == by_cst, name


def test_ast_and_libcst_agree_on_our_own_output(tmp_path: Path) -> None:
    spec = load_spec()
    for file_spec in spec.files:
        source = FIXTURES / "capture_no_hook" / file_spec.name
        if not source.exists():
            continue
        insertions = tuple(Insertion(c.name, spec.template(c.template), c.anchors) for c in file_spec.classes)
        result = patch_source(source.read_bytes(), insertions, hook=spec.hook)
        assert isinstance(result, TransformSuccess)
        patched = tmp_path / file_spec.name
        patched.write_bytes(result.code)
        hooks = _hooks(patched)
        assert hooks and all(by_ast and by_cst for _, by_ast, by_cst in hooks)
