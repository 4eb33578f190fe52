"""Stage 5: prove a patched source is the original plus our methods, before any write.

As black's safe mode does, and then some: the new source must parse and
compile; every target class must define the hook exactly once (ours, marked);
with our marked methods removed (each with the blank and comment lines just
above it), the patched file must be the original *byte for byte*, so comments,
blank lines, CRLF, a BOM and the encoding survive; and the target classes'
AST without our methods must dump identical to the original's. The byte check
is made on lines, independently of libcst, so it also checks libcst's output.
"""

from __future__ import annotations

import ast
from pathlib import Path

from eagle3_patch.errors import ValidationError
from eagle3_patch.marker import MARKER, block_lines, marker_of
from eagle3_patch.source import PARSE_ERRORS, parse_problem, source_lines, top_level_classes


def validate_patch(
    original: bytes,
    patched: bytes,
    *,
    path: Path,
    classes: tuple[str, ...],
    hook: str,
    original_tree: ast.Module | None = None,
) -> None:
    """Raise ValidationError unless ``patched`` is ``original`` plus one marked hook per class.

    ``original_tree`` is the original's ``ast`` when the caller has it already.
    """
    patched_tree = _parse(patched, path)
    try:
        compile(patched_tree, str(path), "exec", dont_inherit=True)
    except PARSE_ERRORS as exc:
        raise _refuse(path, f"does not compile ({parse_problem(exc)})") from exc
    lines = source_lines(patched)
    top = top_level_classes(patched_tree)
    for name in classes:
        node = top.get(name)
        if node is None:
            raise _refuse(path, f"lost class {name}")
        hooks = [s for s in node.body if isinstance(s, ast.FunctionDef) and s.name == hook]
        if len(hooks) != 1:
            raise _refuse(path, f"{name} defines {hook} {len(hooks)} times, not once")
        if marker_of(hooks[0], lines) is None:
            raise _refuse(path, f"{name}.{hook} lacks the {MARKER} marker")
    original_tree = original_tree or _parse(original, path)
    original_lines = source_lines(original)
    if not same_bytes_outside(original, original_tree, original_lines, patched, patched_tree, lines, hook):
        raise _refuse(path, "changes bytes outside the inserted methods")
    for name in classes:
        if not same_ast_outside(original_tree, original_lines, patched_tree, lines, name, hook):
            raise _refuse(path, f"changes code of {name} outside the inserted method")


def same_bytes_outside(
    original: bytes,
    original_tree: ast.Module,
    original_lines: list[str],
    patched: bytes,
    patched_tree: ast.Module,
    patched_lines: list[str],
    hook: str,
) -> bool:
    """Both sources are identical byte for byte once our marked methods are taken out."""
    return _without_marked(original, original_tree, original_lines, hook) == _without_marked(
        patched, patched_tree, patched_lines, hook
    )


def same_ast_outside(
    original_tree: ast.Module,
    original_lines: list[str],
    patched_tree: ast.Module,
    patched_lines: list[str],
    class_name: str,
    hook: str,
) -> bool:
    """``class_name`` is the same code in both once our marked method is taken out (black's check)."""
    before = top_level_classes(original_tree).get(class_name)
    after = top_level_classes(patched_tree).get(class_name)
    if before is None or after is None:
        return False
    return _class_dump(before, original_lines, hook) == _class_dump(after, patched_lines, hook)


def _parse(source: bytes, path: Path) -> ast.Module:
    try:
        return ast.parse(source, filename=str(path))
    except PARSE_ERRORS as exc:
        raise _refuse(path, f"does not parse ({parse_problem(exc)})") from exc


def _marked_methods(tree: ast.Module, lines: list[str], hook: str) -> list[ast.FunctionDef]:
    return [
        statement
        for node in tree.body
        if isinstance(node, ast.ClassDef)
        for statement in node.body
        if isinstance(statement, ast.FunctionDef) and statement.name == hook and marker_of(statement, lines)
    ]


def _without_marked(source: bytes, tree: ast.Module, lines: list[str], hook: str) -> bytes:
    """``source`` without our marked methods and the blank or comment lines right above them."""
    raw = source.splitlines(keepends=True)  # \n, \r\n and \r, as the tokenizer counts lines
    dropped: set[int] = set()
    for method in _marked_methods(tree, lines, hook):
        dropped.update(block_lines(method, lines))
    kept = b"".join(line for index, line in enumerate(raw) if index not in dropped)
    if raw and len(raw) - 1 in dropped and not raw[-1].endswith((b"\n", b"\r")):
        # Our block ends a file that has no final line break: the break before it is ours too.
        kept = kept[:-2] if kept.endswith(b"\r\n") else kept[:-1]
    return kept


def _class_dump(node: ast.ClassDef, lines: list[str], hook: str) -> str:
    """The class's AST dump without its marked hook method."""
    marked = {id(m) for m in _marked_methods(ast.Module(body=[node], type_ignores=[]), lines, hook)}
    kept = [statement for statement in node.body if id(statement) not in marked]
    return ast.dump(ast.ClassDef(
        name=node.name,
        bases=node.bases,
        keywords=node.keywords,
        body=kept,
        decorator_list=node.decorator_list,
        **({"type_params": node.type_params} if hasattr(node, "type_params") else {}),
    ))  # fmt: skip


def _refuse(path: Path, problem: str) -> ValidationError:
    return ValidationError(
        f"refusing to write: the patched file {problem}; nothing was changed. "
        "Please report this SGLang layout to eagle3-patch",
        path=path,
    )
