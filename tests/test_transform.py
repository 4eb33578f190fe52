"""The libcst transformer, in libcst's codemod-test style: before/after strings."""

from __future__ import annotations

import ast
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from eagle3_patch.marker import marker_line
from eagle3_patch.source import class_spans, detect_encoding
from eagle3_patch.spec import Anchor, Template, load_spec
from eagle3_patch.transform import (
    Insertion,
    TransformFailure,
    TransformResult,
    TransformSuccess,
    patch_classes,
    patch_source,
    strip_source,
)
from tests.conftest import FIXTURES

HOOK = "set_eagle3_layers_to_capture"
TINY = Template("tiny", 3, "def set_eagle3_layers_to_capture(self, ids):\n    self.ids = ids\n")
MARK = marker_line(TINY.ident)
ANCHORS = (Anchor("set_dflash_layers_to_capture"), Anchor("get_embed_and_head"), Anchor(None))


def code(result: TransformResult) -> bytes:
    assert isinstance(result, TransformSuccess), result
    return result.code


def stripped(source: bytes) -> bytes:
    return code(strip_source(source, hook=HOOK))


def insertion(class_name: str = "A", template: Template = TINY, anchors: tuple[Anchor, ...] = ANCHORS) -> Insertion:
    return Insertion(class_name, template, anchors)


def assert_patch(before: str, after: str, *insertions: Insertion) -> None:
    """Patch ``before`` (dedented), compare with ``after``, and check the inverse and a second run."""
    before_bytes = textwrap.dedent(before).encode()
    after_bytes = textwrap.dedent(after).encode()
    result = patch_source(before_bytes, insertions or (insertion(),), hook=HOOK)
    assert code(result).decode() == after_bytes.decode()
    again = patch_source(code(result), insertions or (insertion(),), hook=HOOK)
    assert isinstance(again, TransformSuccess) and again.code == code(result) and not again.inserted
    assert stripped(code(result)) == before_bytes


def test_inserts_after_dflash_hook() -> None:
    assert_patch(
        """
        class A:
            def set_dflash_layers_to_capture(self, ids):
                pass

            def forward(self):
                pass
        """,
        f"""
        class A:
            def set_dflash_layers_to_capture(self, ids):
                pass

            {MARK}
            def set_eagle3_layers_to_capture(self, ids):
                self.ids = ids

            def forward(self):
                pass
        """,
    )


def test_second_of_two_definitions_is_the_anchor() -> None:
    assert_patch(
        """
        class A:
            def set_dflash_layers_to_capture(self, ids):
                pass

            def get_embed_and_head(self):
                pass

            def set_dflash_layers_to_capture(self, ids):
                pass
        """,
        f"""
        class A:
            def set_dflash_layers_to_capture(self, ids):
                pass

            def get_embed_and_head(self):
                pass

            def set_dflash_layers_to_capture(self, ids):
                pass

            {MARK}
            def set_eagle3_layers_to_capture(self, ids):
                self.ids = ids
        """,
    )


def test_falls_back_to_get_embed_and_head() -> None:
    assert_patch(
        """
        class A:
            def get_embed_and_head(self):
                pass

            # about forward
            def forward(self):
                pass
        """,
        f"""
        class A:
            def get_embed_and_head(self):
                pass

            {MARK}
            def set_eagle3_layers_to_capture(self, ids):
                self.ids = ids

            # about forward
            def forward(self):
                pass
        """,
    )


def test_falls_back_to_end_of_class_before_trailing_comment() -> None:
    assert_patch(
        """
        class A:
            x = 1
            # last words


        y = 2
        """,
        f"""
        class A:
            x = 1

            {MARK}
            def set_eagle3_layers_to_capture(self, ids):
                self.ids = ids
            # last words


        y = 2
        """,
    )


def test_only_named_classes_change() -> None:
    assert_patch(
        """
        class A:
            def get_embed_and_head(self):
                pass


        class B:
            def get_embed_and_head(self):
                pass
        """,
        f"""
        class A:
            def get_embed_and_head(self):
                pass


        class B:
            def get_embed_and_head(self):
                pass

            {MARK}
            def set_eagle3_layers_to_capture(self, ids):
                self.ids = ids
        """,
        insertion("B"),
    )


def test_last_definition_of_a_class_is_the_target() -> None:
    assert_patch(
        """
        class A:
            pass


        class A:
            def get_embed_and_head(self):
                pass
        """,
        f"""
        class A:
            pass


        class A:
            def get_embed_and_head(self):
                pass

            {MARK}
            def set_eagle3_layers_to_capture(self, ids):
                self.ids = ids
        """,
    )


def test_replaces_older_marked_block_in_place() -> None:
    before = """
        class A:
            # [EAGLE3-PATCH] from an older tool
            def set_eagle3_layers_to_capture(self, ids):
                self.old = ids

            def forward(self):
                pass
        """
    result = patch_source(textwrap.dedent(before).encode(), (insertion(),), hook=HOOK)
    assert code(result).decode() == textwrap.dedent(
        f"""
        class A:

            {MARK}
            def set_eagle3_layers_to_capture(self, ids):
                self.ids = ids

            def forward(self):
                pass
        """
    )
    assert isinstance(result, TransformSuccess) and result.inserted[0].placement.startswith("replaced")


@pytest.mark.parametrize(
    "source",
    [
        pytest.param("class A:\n    def get_embed_and_head(self):\n        pass\n", id="class missing"),
        pytest.param("x = 1\n", id="empty module"),
    ],
)
def test_no_change_when_class_is_missing(source: str) -> None:
    result = patch_source(source.encode(), (insertion("Missing"),), hook=HOOK)
    assert isinstance(result, TransformFailure) and result.source == source.encode()
    assert [r.reason for r in result.refused] == ["class not found"]
    assert result.reason == "cannot patch (Missing: class not found): unknown layout"


def test_no_change_when_upstream_hook_exists() -> None:
    source = b"class A:\n    def set_eagle3_layers_to_capture(self, ids):\n        self.upstream = ids\n"
    result = patch_source(source, (insertion(),), hook=HOOK)
    assert isinstance(result, TransformFailure)
    assert "not ours" in result.refused[0].reason


def test_no_change_when_no_anchor_matches() -> None:
    source = b"class A:\n    def forward(self):\n        pass\n"
    result = patch_source(source, (insertion(anchors=(Anchor("get_embed_and_head"),)),), hook=HOOK)
    assert isinstance(result, TransformFailure)
    assert "no anchor matched" in result.refused[0].reason


def test_nested_classes_are_never_targets() -> None:
    source = b"def f():\n    class A:\n        def get_embed_and_head(self):\n            pass\n"
    result = patch_source(source, (insertion(),), hook=HOOK)
    assert isinstance(result, TransformFailure) and [r.reason for r in result.refused] == ["class not found"]


def test_unparsable_source_is_a_failure_result_not_an_exception() -> None:
    result = patch_source(b"class A(:\n    pass\n", (insertion(),), hook=HOOK)
    assert isinstance(result, TransformFailure) and result.reason.startswith("libcst cannot parse this file")
    assert isinstance(strip_source(b"def (:\n", hook=HOOK), TransformFailure)


def test_crlf_bom_and_cookie_survive_byte_for_byte() -> None:
    before = (
        b"\xef\xbb\xbf# -*- coding: utf-8 -*-\r\n"
        b"class A:\r\n    def get_embed_and_head(self):\r\n        return '\xc3\xa9'\r\n"
    )
    result = patch_source(before, (insertion(),), hook=HOOK)
    expected = before + (
        b"\r\n    "
        + MARK.encode()
        + b"\r\n    def set_eagle3_layers_to_capture(self, ids):\r\n        self.ids = ids\r\n"
    )
    assert code(result) == expected
    assert stripped(code(result)) == before


def test_inserted_code_uses_the_module_indent() -> None:
    before = b"class A:\n\tdef get_embed_and_head(self):\n\t\tpass\n"
    result = patch_source(before, (insertion(),), hook=HOOK)
    assert code(result) == before + (
        b"\n\t" + MARK.encode() + b"\n\tdef set_eagle3_layers_to_capture(self, ids):\n\t\tself.ids = ids\n"
    )
    compile(code(result), "tabs.py", "exec")


def _expected_by_insertion(before: str, class_name: str, anchor_line: str, template: Template) -> str:
    """An independent oracle: paste the template's text by hand after the anchor's body."""
    lines = before.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith(f"class {class_name}"))
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("class ")), len(lines))
    index = max(i for i in range(start, end) if lines[i].startswith(anchor_line)) + 1
    while index < end and lines[index].startswith(" " * 8):
        index += 1  # past the anchor method's body
    block = ["\n", "    " + marker_line(template.ident) + "\n"]
    block += [("    " + line if line.strip() else line) + "\n" for line in template.source.splitlines()]
    return "".join(lines[:index] + block + lines[index:])


@pytest.mark.parametrize(
    ("fixture", "class_name", "anchor_line"),
    [
        pytest.param("capture_no_hook/qwen3_5.py", "Qwen3_5ForCausalLM", "    def set_dflash", id="decoder"),
        pytest.param(
            "capture_no_hook/qwen3_5.py", "Qwen3_5ForConditionalGeneration", "    def get_embed_and_head", id="wrapper"
        ),
        pytest.param(
            "capture_no_hook/qwen3_5.py", "Qwen3_5MoeForConditionalGeneration", "    def get_embed_and_head", id="moe"
        ),
        pytest.param("text_wrapper/qwen3_5_text.py", "Qwen3_5ForCausalLM", "    def set_dflash", id="text wrapper"),
        pytest.param(
            "text_wrapper_plain/qwen3_5_text.py", "Qwen3_5ForCausalLM", "    def get_embed_and_head", id="plain text"
        ),
    ],
)
def test_fixture_shapes_get_the_shipped_template(fixture: str, class_name: str, anchor_line: str) -> None:
    spec = load_spec()
    file_spec = next(f for f in spec.files if f.name == fixture.split("/")[1])
    class_spec = next(c for c in file_spec.classes if c.name == class_name)
    template = spec.template(class_spec.template)
    before = (FIXTURES / fixture).read_text()
    result = patch_source(before.encode(), (Insertion(class_name, template, class_spec.anchors),), hook=spec.hook)
    assert code(result).decode() == _expected_by_insertion(before, class_name, anchor_line, template)


def test_fixtures_without_our_blocks_strip_to_themselves_and_never_get_a_second_hook() -> None:
    spec = load_spec()
    for fixture in ("native/qwen3_5.py", "native/qwen3_5_text.py", "pre_capture/qwen3_5.py"):
        source = (FIXTURES / fixture).read_bytes()
        assert code(strip_source(source, hook=spec.hook)) == source
    for fixture in ("native/qwen3_5.py", "native/qwen3_5_text.py"):
        source = (FIXTURES / fixture).read_bytes()
        file_spec = next(f for f in spec.files if f.name == fixture.split("/")[1])
        insertions = tuple(Insertion(c.name, spec.template(c.template), c.anchors) for c in file_spec.classes)
        result = patch_source(source, insertions, hook=spec.hook)
        assert isinstance(result, TransformFailure)
        assert {r.class_name for r in result.refused if "not ours" in r.reason} == {"Qwen3_5ForCausalLM"}


def _slices_and_whole(source: bytes, file_name: str) -> tuple[TransformResult, TransformResult]:
    """patch_classes (libcst on the changed classes only) and patch_source (libcst on the whole file)."""
    spec = load_spec()
    file_spec = next(f for f in spec.files if f.name == file_name)
    insertions = tuple(Insertion(c.name, spec.template(c.template), c.anchors) for c in file_spec.classes)
    spans = class_spans(ast.parse(source))
    part = patch_classes(source, insertions, hook=spec.hook, spans=spans, encoding=detect_encoding(source))
    whole = patch_source(source, insertions, hook=spec.hook)
    return part, whole


@pytest.mark.parametrize(
    ("fixture", "variant"),
    [
        (f, v)
        for f in ("capture_no_hook/qwen3_5.py", "text_wrapper/qwen3_5_text.py", "text_wrapper_plain/qwen3_5_text.py")
        for v in ("lf", "crlf", "cr", "latin-1", "no final newline", "decorated")
    ],
)
def test_patching_class_slices_equals_patching_the_whole_file(fixture: str, variant: str) -> None:
    source = (FIXTURES / fixture).read_bytes()
    if variant == "crlf":
        source = source.replace(b"\n", b"\r\n")
    elif variant == "cr":
        source = source.replace(b"\n", b"\r")
    elif variant == "latin-1":
        source = b"# -*- coding: latin-1 -*-\n# caf\xe9\n" + source
    elif variant == "no final newline":
        source = source.rstrip(b"\n")
    elif variant == "decorated":
        source = source.replace(b"\nclass ", b"\n@decorate\nclass ")
    part, whole = _slices_and_whole(source, fixture.split("/")[1])
    assert part == whole
    assert code(part) != source


@pytest.mark.corpus
def test_patching_class_slices_equals_the_whole_file_on_real_releases(
    served_release: str, release_site: Callable[[str], Path]
) -> None:
    models = release_site(served_release) / "sglang" / "srt" / "models"
    for name in ("qwen3_5.py", "qwen3_5_text.py"):
        if (models / name).exists():
            part, whole = _slices_and_whole((models / name).read_bytes(), name)
            assert part == whole, name
