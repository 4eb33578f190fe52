"""Stage 4: insert (or remove) our marked hook methods with libcst.

Pure functions from bytes to a result object, in libcst's own shape
(``TransformSuccess`` or ``TransformFailure``): nothing here reads or writes
files, and the only failure caught is the one that is about the input (libcst
cannot parse it); anything else is a bug and propagates. libcst keeps every
byte we do not touch (comments, blank lines, CRLF, a BOM, an encoding cookie),
and new code is parsed with the module's own config so its indentation and
newlines match the file it lands in.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Union

import libcst as cst
from libcst import ParserSyntaxError

from eagle3_patch.marker import choose_anchor, has_marker, marker_line
from eagle3_patch.source import ClassSpan
from eagle3_patch.spec import Anchor, Template


@dataclass(frozen=True)
class Insertion:
    """Give ``class_name`` the method in ``template`` at the first matching anchor."""

    class_name: str
    template: Template
    anchors: tuple[Anchor, ...]


@dataclass(frozen=True)
class InsertedMethod:
    class_name: str
    template: str
    #: "after set_dflash_layers_to_capture", "end of class", or "replaced <old block>".
    placement: str


@dataclass(frozen=True)
class Refusal:
    """A class the transformer could not give its method, and why."""

    class_name: str
    reason: str


@dataclass(frozen=True)
class TransformSuccess:
    source: bytes
    #: The new bytes (equal to ``source`` when every class already had its block).
    code: bytes
    inserted: tuple[InsertedMethod, ...] = ()

    @property
    def changed(self) -> bool:
        return self.code != self.source


@dataclass(frozen=True)
class TransformFailure:
    source: bytes
    #: One line: libcst cannot parse the file, or which classes refused and why.
    reason: str
    refused: tuple[Refusal, ...] = ()


TransformResult = Union[TransformSuccess, TransformFailure]  # noqa: UP007 - a runtime alias on Python 3.10


def patch_source(source: bytes, insertions: tuple[Insertion, ...], *, hook: str) -> TransformResult:
    """Insert each template into its class; a class already carrying it is left as is."""
    try:
        with _line_feeds(source) as text:
            module = cst.parse_module(text.source)
            transformer = InsertHookTransformer(insertions, hook=hook, module=module)
            text.result = module.visit(transformer).bytes
    except ParserSyntaxError as exc:
        return _unparsable(source, exc)
    return _result(source, text.result, transformer.inserted, transformer.refused)


def patch_classes(
    source: bytes, insertions: tuple[Insertion, ...], *, hook: str, spans: tuple[ClassSpan, ...], encoding: str
) -> TransformResult:
    """``patch_source``, with libcst parsing only the lines of the classes that change.

    Each class is cut out along the lines ``ast`` found for it (a top-level class
    is a module of its own), patched by the same transformer, and put back; every
    other byte of the file is never decoded or regenerated. Three times less for
    libcst to parse and print in SGLang's 3,000-line qwen3_5.py.
    """
    by_name = {span.name: span for span in spans}
    if any(by_name.get(i.class_name) is None or by_name[i.class_name].first_line == 1 for i in insertions):
        return patch_source(source, insertions, hook=hook)  # not found by ast, or behind a BOM: whole file
    codec = encoding.replace("-sig", "")  # a BOM is only ever at the start of the file
    lines = source.splitlines(keepends=True)
    pieces: list[tuple[int, int, bytes]] = []
    inserted: list[InsertedMethod] = []
    refused: list[Refusal] = []
    for insertion in insertions:
        span = by_name[insertion.class_name]
        chunk = b"".join(lines[span.first_line - 1 : span.last_line])
        try:
            with _line_feeds(chunk) as text:
                module = cst.parse_module(text.source.decode(codec))
                transformer = InsertHookTransformer((insertion,), hook=hook, module=module)
                text.result = module.visit(transformer).code.encode(codec)
        except ParserSyntaxError as exc:
            return _unparsable(source, exc)
        inserted.extend(transformer.inserted)
        refused.extend(transformer.refused)
        pieces.append((span.first_line - 1, span.last_line, text.result))
    for start, end, replacement in sorted(pieces, reverse=True):
        lines[start:end] = [replacement]
    return _result(source, b"".join(lines), inserted, refused)


def strip_source(source: bytes, *, hook: str) -> TransformResult:
    """Remove every marked ``hook`` method from top-level classes: the inverse of patching."""
    try:
        with _line_feeds(source) as text:
            text.result = cst.parse_module(text.source).visit(StripHookTransformer(hook=hook)).bytes
    except ParserSyntaxError as exc:
        return _unparsable(source, exc)
    return TransformSuccess(source, text.result)


def _result(source: bytes, code: bytes, inserted: list[InsertedMethod], refused: list[Refusal]) -> TransformResult:
    if refused:
        reasons = "; ".join(f"{r.class_name}: {r.reason}" for r in refused)
        return TransformFailure(source, f"cannot patch ({reasons}): unknown layout", tuple(refused))
    return TransformSuccess(source, code, tuple(inserted))


def _unparsable(source: bytes, exc: ParserSyntaxError) -> TransformFailure:
    return TransformFailure(source, f"libcst cannot parse this file ({exc.message})")


class _Text:
    def __init__(self, source: bytes) -> None:
        self.source = source
        self.result = b""


@contextmanager
def _line_feeds(source: bytes) -> Iterator[_Text]:
    """Let libcst see a CR-only file (old Mac endings) as LF, and give the result its CRs back.

    libcst drops such a file's last line ending. With no LF byte anywhere, and CR
    and LF never inside a multibyte character of an ASCII-compatible encoding,
    swapping them is exact both ways.
    """
    cr_only = b"\r" in source and b"\n" not in source
    text = _Text(source.replace(b"\r", b"\n") if cr_only else source)
    yield text
    if cr_only:
        text.result = text.result.replace(b"\n", b"\r")


def is_marked(node: cst.FunctionDef) -> bool:
    """A block of ours (marker.py's rule): a marker in the lines leading to the method, or inside it."""
    if any(line.comment and has_marker(line.comment.value) for line in node.leading_lines):
        return True
    finder = _MarkerFinder()
    node.visit(finder)
    return finder.found


def is_method(statement: cst.CSTNode, name: str) -> bool:
    """``statement`` is ``def name(...)`` (plain isinstance: libcst.matchers costs a third of a second to import)."""
    return isinstance(statement, cst.FunctionDef) and statement.name.value == name


class _MarkerFinder(cst.CSTVisitor):
    def __init__(self) -> None:
        super().__init__()
        self.found = False

    def visit_Comment(self, node: cst.Comment) -> None:
        self.found = self.found or has_marker(node.value)


class _TopLevelClassTransformer(cst.CSTTransformer):
    """Visits only the last top-level definition of each class: the one Python keeps."""

    def __init__(self) -> None:
        super().__init__()
        self._last_definition: dict[str, cst.ClassDef] = {}

    def visit_Module(self, node: cst.Module) -> bool:
        for statement in node.body:
            if isinstance(statement, cst.ClassDef):
                self._last_definition[statement.name.value] = statement
        return True

    def on_visit(self, node: cst.CSTNode) -> bool:
        """Descend only from the module into its top-level statements (leave_* still runs on them)."""
        return isinstance(node, cst.Module) and super().on_visit(node)

    def _is_target(self, node: cst.ClassDef) -> bool:
        return self._last_definition.get(node.name.value) is node


class InsertHookTransformer(_TopLevelClassTransformer):
    """Add the hook to each target class, or replace our older marked block in place."""

    def __init__(self, insertions: tuple[Insertion, ...], *, hook: str, module: cst.Module) -> None:
        super().__init__()
        self._insertions = {insertion.class_name: insertion for insertion in insertions}
        self._hook = hook
        self._module = module
        self._seen: set[str] = set()
        self.inserted: list[InsertedMethod] = []
        self.refused: list[Refusal] = []

    def leave_ClassDef(self, original_node: cst.ClassDef, updated_node: cst.ClassDef) -> cst.ClassDef:
        name = updated_node.name.value
        insertion = self._insertions.get(name)
        if insertion is None or not self._is_target(original_node):
            return updated_node
        self._seen.add(name)
        if not isinstance(updated_node.body, cst.IndentedBlock):
            self.refused.append(Refusal(name, "class body is on one line"))
            return updated_node
        body = list(updated_node.body.body)
        method = self._render(insertion.template)
        hooks = [i for i, s in enumerate(body) if is_method(s, self._hook)]
        if hooks:
            index = hooks[-1]
            existing = body[index]
            assert isinstance(existing, cst.FunctionDef)
            if not is_marked(existing):
                self.refused.append(Refusal(name, f"already defines {self._hook} (not ours)"))
                return updated_node
            if existing.deep_equals(method):
                return updated_node
            body[index] = method
            placement = "replaced an older [EAGLE3-PATCH] block"
        else:
            found = choose_anchor(insertion.anchors, [_def_name(s) for s in body])
            if found is None:
                anchors = ", ".join(str(a) for a in insertion.anchors)
                self.refused.append(Refusal(name, f"no anchor matched ({anchors})"))
                return updated_node
            anchor, index = found
            body.insert(index, method)
            placement = str(anchor)
        self.inserted.append(InsertedMethod(name, insertion.template.ident, placement))
        return updated_node.with_changes(body=updated_node.body.with_changes(body=body))

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        for name in self._insertions:
            if name not in self._seen:
                self.refused.append(Refusal(name, "class not found"))
        return updated_node

    def _render(self, template: Template) -> cst.FunctionDef:
        """Parse the template as this module would have written it: its indent, its newline."""
        indent = self._module.default_indent
        newline = self._module.default_newline
        lines = [marker_line(template.ident), *template.source.splitlines()]
        text = newline.join(_reindent(line, indent) for line in lines) + newline
        method = cst.parse_statement(text, config=self._module.config_for_parsing)
        assert isinstance(method, cst.FunctionDef)
        blank = cst.EmptyLine(indent=False, whitespace=cst.SimpleWhitespace(""))
        return method.with_changes(leading_lines=[blank, *method.leading_lines])


class StripHookTransformer(_TopLevelClassTransformer):
    """Remove our marked hook methods, and with them the blank and marker lines above."""

    def __init__(self, *, hook: str) -> None:
        super().__init__()
        self._hook = hook

    def leave_ClassDef(self, original_node: cst.ClassDef, updated_node: cst.ClassDef) -> cst.ClassDef:
        if not self._is_target(original_node) or not isinstance(updated_node.body, cst.IndentedBlock):
            return updated_node
        body = [
            s
            for s in updated_node.body.body
            if not (isinstance(s, cst.FunctionDef) and is_method(s, self._hook) and is_marked(s))
        ]
        if len(body) == len(updated_node.body.body) or not body:
            return updated_node
        return updated_node.with_changes(body=updated_node.body.with_changes(body=body))


def _def_name(statement: cst.BaseStatement) -> str:
    return statement.name.value if isinstance(statement, cst.FunctionDef) else ""


def _reindent(line: str, indent: str) -> str:
    """Templates are written with 4-space levels; use the module's own indent unit."""
    stripped = line.lstrip(" ")
    levels, extra = divmod(len(line) - len(stripped), 4)
    return indent * levels + " " * extra + stripped if stripped else ""
