"""Facts about an installed model file, read with ``ast`` and ``tokenize`` (cheap; no libcst).

Used by classify (what a class looks like), plan (where each class's lines
are, so libcst parses only those), validate (the patched file's structure) and
verify (who calls what across files).
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from eagle3_patch.reading import read_bytes_or_none
from eagle3_patch.spec import PatchSpec

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_NOT_A_LITERAL = object()
#: What ``ast.parse`` raises on source it cannot read: bad syntax or bytes, and nesting
#: too deep for the parser (MemoryError or RecursionError, depending on the shape).
PARSE_ERRORS = (SyntaxError, ValueError, RecursionError, MemoryError)


def detect_encoding(content: bytes) -> str:
    """The source encoding (BOM or PEP 263 cookie), as Python reads it.

    ``tokenize.detect_encoding`` splits lines on LF only, so a file with CR-only
    line endings would be one long "first line"; the interpreter's own tokenizer
    ends lines at CR too, so give it the first two lines that way.
    """
    head = re.split(rb"\r\n|\r|\n", content[:4096], maxsplit=2)[:2]
    return tokenize.detect_encoding(io.BytesIO(b"\n".join(head) + b"\n").readline)[0]


def encoding_problem(content: bytes) -> str:
    """Why eagle3-patch will not rewrite this file's encoding ("" when it will, byte for byte)."""
    try:
        encoding = detect_encoding(content)
    except SyntaxError as exc:
        return f"its encoding cannot be read ({exc})"
    try:
        # utf-8-sig only adds the BOM, which libcst keeps as it found it.
        ascii_compatible = "# x\n".encode(encoding.replace("-sig", "")) == b"# x\n"
        content.decode(encoding)
    except (LookupError, UnicodeError) as exc:
        return f"it is not valid {encoding} ({exc})"
    if not ascii_compatible:
        return f"its encoding {encoding} is not ASCII-compatible, and eagle3-patch never re-encodes a file"
    return ""


def decode_source(content: bytes) -> str:
    """The file's text in its own encoding (undecodable bytes replaced, for display and line numbers)."""
    try:
        return content.decode(detect_encoding(content))
    except (SyntaxError, LookupError, UnicodeDecodeError):
        return content.decode("utf-8", errors="replace")


def parse_problem(exc: BaseException) -> str:
    """One line for a file ``ast`` cannot parse."""
    if isinstance(exc, (RecursionError, MemoryError)):
        return "nested too deeply for Python's parser"
    return str(exc)


def source_lines(content: bytes) -> list[str]:
    """The file's lines as the tokenizer numbers them (CR, LF and CRLF all end a line)."""
    return _LINE_BREAK.split(decode_source(content))


def top_level_classes(tree: ast.Module) -> dict[str, ast.ClassDef]:
    """Top-level classes by name; a later definition replaces an earlier one, as in Python."""
    return {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}


@dataclass(frozen=True)
class ClassSpan:
    """Where a top-level class sits in the file: 1-based first and last line, decorators included."""

    name: str
    first_line: int
    last_line: int


def class_spans(tree: ast.Module) -> tuple[ClassSpan, ...]:
    """The lines of each top-level class (the last definition of a name wins, as in Python)."""
    spans = {
        node.name: ClassSpan(
            node.name, min([node.lineno, *(d.lineno for d in node.decorator_list)]), node.end_lineno or node.lineno
        )
        for node in top_level_classes(tree).values()
    }
    return tuple(spans.values())


def last_method(node: ast.ClassDef, name: str) -> ast.FunctionDef | None:
    """The definition of ``name`` that Python keeps: the last one in the class body."""
    found = None
    for statement in node.body:
        if isinstance(statement, ast.FunctionDef) and statement.name == name:
            found = statement
    return found


def body_names(node: ast.ClassDef) -> list[str]:
    """Each statement of the class body: the method's name for a ``def``, "" otherwise."""
    return [s.name if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)) else "" for s in node.body]


def mentions(node: ast.AST, name: str) -> bool:
    """``node`` reads or writes attribute ``name`` (as ``x.name`` or ``getattr(x, "name")``)."""
    for child in ast.walk(node):
        if isinstance(child, ast.Attribute) and child.attr == name:
            return True
        if isinstance(child, ast.Constant) and child.value == name:
            return True
    return False


def calls(node: ast.AST, name: str) -> Iterator[tuple[ast.expr | None, list[ast.expr]]]:
    """Every call of ``name(...)`` or ``<receiver>.name(...)`` in ``node``: (receiver or None, arguments)."""
    for child in ast.walk(node):
        if isinstance(child, ast.Call):
            function = child.func
            if isinstance(function, ast.Name) and function.id == name:
                yield None, child.args
            elif isinstance(function, ast.Attribute) and function.attr == name:
                yield function.value, child.args


def constant(node: ast.expr) -> object:
    """The value of a literal, or a marker object that equals nothing else."""
    return node.value if isinstance(node, ast.Constant) else _NOT_A_LITERAL


def delegates(method: ast.FunctionDef, hook: str) -> bool:
    """``method`` calls ``self.model.<hook>(...)``."""
    return any(
        isinstance(receiver, ast.Attribute)
        and receiver.attr == "model"
        and isinstance(receiver.value, ast.Name)
        and receiver.value.id == "self"
        for receiver, _ in calls(method, hook)
    )


@dataclass(frozen=True)
class MethodRef:
    """Where a method a class has (its own or inherited) is defined."""

    file: str
    owner: str
    node: ast.FunctionDef


class SourceIndex:
    """The top-level classes of an install's model files, each parsed once, to follow inheritance.

    A base class is looked up in the subclass's own file first, then in the
    other files in ``search_order`` (the spec's reference files and targets).
    """

    def __init__(self, models_dir: Path, search_order: tuple[str, ...]) -> None:
        self._models_dir = models_dir
        self._order = search_order
        self._parsed: dict[str, dict[str, ast.ClassDef]] = {}

    @classmethod
    def for_spec(cls, models_dir: Path, spec: PatchSpec) -> SourceIndex:
        """Bases are looked up in the reference files first, then the targets."""
        return cls(models_dir, (*spec.reference_files, *(f.name for f in spec.files)))

    def add(self, file_name: str, tree: ast.Module) -> None:
        self._parsed[file_name] = top_level_classes(tree)

    def classes(self, file_name: str) -> dict[str, ast.ClassDef]:
        if file_name not in self._parsed:
            content = read_bytes_or_none(self._models_dir / file_name)
            try:
                self._parsed[file_name] = top_level_classes(ast.parse(content)) if content is not None else {}
            except PARSE_ERRORS:
                self._parsed[file_name] = {}
        return self._parsed[file_name]

    def find_method(self, file_name: str, class_name: str, method: str) -> MethodRef | None:
        """``class_name.method`` as Python would resolve it (first base first), or None."""
        node = self.classes(file_name).get(class_name)
        return self._find(file_name, node, method, depth=0) if node is not None else None

    def _find(self, file_name: str, node: ast.ClassDef, method: str, depth: int) -> MethodRef | None:
        own = last_method(node, method)
        if own is not None:
            return MethodRef(file_name, node.name, own)
        if depth > 8:
            return None
        for base in node.bases:
            base_name = base.id if isinstance(base, ast.Name) else getattr(base, "attr", None)
            for candidate in dict.fromkeys((file_name, *self._order)):
                base_node = self.classes(candidate).get(base_name or "")
                if base_node is not None and base_node is not node:
                    found = self._find(candidate, base_node, method, depth + 1)
                    if found is not None:
                        return found
                    break
        return None
