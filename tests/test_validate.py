"""validate_patch: our output must be the original plus marked hooks, nothing else."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from eagle3_patch.errors import EXIT_UNSUPPORTED, ValidationError
from eagle3_patch.spec import Anchor, Template
from eagle3_patch.transform import Insertion, TransformSuccess, patch_source
from eagle3_patch.validate import validate_patch

HOOK = "set_eagle3_layers_to_capture"
TEMPLATE = Template("tiny", 1, "def set_eagle3_layers_to_capture(self, ids):\n    self.ids = ids\n")
ORIGINAL = b"class A:\n    def get_embed_and_head(self):\n        return 1\n\n\nclass B:\n    x = 1\n"
PATH = Path("models/qwen3_5.py")


def patched(source: bytes = ORIGINAL) -> bytes:
    result = patch_source(source, (Insertion("A", TEMPLATE, (Anchor(None),)),), hook=HOOK)
    assert isinstance(result, TransformSuccess)
    return result.code


def test_our_output_passes() -> None:
    validate_patch(ORIGINAL, patched(), path=PATH, classes=("A",), hook=HOOK)


@pytest.mark.parametrize(
    ("mangle", "problem"),
    [
        pytest.param(lambda s: s.replace(b"return 1", b"return 2"), "changes bytes outside", id="edits other code"),
        pytest.param(
            lambda s: s.replace(b"    x = 1", b"    x = 1\n    y = 2"), "changes bytes outside", id="adds code"
        ),
        pytest.param(lambda s: s.replace(b"    x = 1", b"    x = 1  # note"), "changes bytes outside", id="comment"),
        pytest.param(lambda s: s.replace(b"\n\n\nclass B", b"\n\nclass B"), "changes bytes outside", id="blank line"),
        pytest.param(
            lambda s: s.replace(b"# [EAGLE3-PATCH", b"# [OTHER"), "lacks the [EAGLE3-PATCH] marker", id="no marker"
        ),
        pytest.param(lambda s: s + b"\ndef broken(:\n", "does not parse", id="syntax error"),
        pytest.param(lambda s: s.replace(b"class A:", b"class C:"), "lost class A", id="class renamed"),
        pytest.param(
            lambda s: s.replace(
                b"\nclass B:", b"    def set_eagle3_layers_to_capture(self):\n        pass\n\nclass B:"
            ),
            "2 times",
            id="hook twice",
        ),
        pytest.param(
            lambda s: s.replace(b"self.ids = ids", b"return\n        yield from ()\n        await x"),
            "compile",
            id="does not compile",
        ),
    ],
)
def test_bad_output_is_refused(mangle, problem: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_patch(ORIGINAL, mangle(patched()), path=PATH, classes=("A",), hook=HOOK)
    assert problem in str(caught.value)
    assert str(PATH) in str(caught.value)
    assert caught.value.exit_code == EXIT_UNSUPPORTED


def test_refreshing_an_older_block_passes() -> None:
    older = ORIGINAL.replace(
        b"        return 1\n",
        b"        return 1\n\n    # [EAGLE3-PATCH] old\n"
        b"    def set_eagle3_layers_to_capture(self, ids):\n        pass\n",
    )
    validate_patch(older, patched(older), path=PATH, classes=("A",), hook=HOOK)


def test_each_outside_check_catches_a_change_on_its_own() -> None:
    """The byte check and black's AST check are separate guards; each must be able to refuse."""
    from eagle3_patch.source import source_lines
    from eagle3_patch.validate import same_ast_outside, same_bytes_outside

    good = patched()
    bad = good.replace(b"return 1", b"return 2")
    trees = {k: ast.parse(v) for k, v in (("o", ORIGINAL), ("g", good), ("b", bad))}
    lines = {k: source_lines(v) for k, v in (("o", ORIGINAL), ("g", good), ("b", bad))}
    assert same_bytes_outside(ORIGINAL, trees["o"], lines["o"], good, trees["g"], lines["g"], HOOK)
    assert not same_bytes_outside(ORIGINAL, trees["o"], lines["o"], bad, trees["b"], lines["b"], HOOK)
    assert same_ast_outside(trees["o"], lines["o"], trees["g"], lines["g"], "A", HOOK)
    assert not same_ast_outside(trees["o"], lines["o"], trees["b"], lines["b"], "A", HOOK)
    assert not same_ast_outside(trees["o"], lines["o"], trees["g"], lines["g"], "Missing", HOOK)
