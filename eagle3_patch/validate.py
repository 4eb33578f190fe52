"""Stage 5: prove a patched source is the original plus our methods, before any write.

As black's safe mode does: the new source must parse and compile, every target
class must define the hook exactly once (ours, marked), and the module's AST with
our marked methods removed must dump identical to the original's with the same
removal. Comments and blank lines are not in the AST; the round-trip tests check
those bytes.
"""

from __future__ import annotations

import ast
from pathlib import Path

from eagle3_patch.classify import last_method, marker_of, source_lines, top_level_classes
from eagle3_patch.errors import UnsupportedError


class ValidationError(UnsupportedError):
    """Our own output failed a check: nothing is written, and the layout is refused."""


def validate_patch(original: bytes, patched: bytes, *, path: Path, classes: tuple[str, ...], hook: str) -> None:
    """Raise ValidationError unless ``patched`` is ``original`` plus one marked hook per class."""
    patched_tree = _parse(patched, path)
    try:
        compile(patched_tree, str(path), "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as exc:
        raise _refuse(path, f"does not compile ({exc})") from exc
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
            raise _refuse(path, f"{name}.{hook} lacks the [EAGLE3-PATCH] marker")
    before = _dump_without_marked(_parse(original, path), source_lines(original), hook)
    after = _dump_without_marked(patched_tree, lines, hook)
    if before != after:
        raise _refuse(path, "changes code outside the inserted methods")


def _parse(source: bytes, path: Path) -> ast.Module:
    try:
        return ast.parse(source, filename=str(path))
    except (SyntaxError, ValueError) as exc:
        raise _refuse(path, f"does not parse ({exc})") from exc


def _dump_without_marked(tree: ast.Module, lines: list[str], hook: str) -> str:
    """The module's AST dump with every marked hook method of a top-level class removed."""
    body = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            marked = last_method(node, hook)
            kept = [s for s in node.body if not (s is marked and marker_of(marked, lines) is not None)]
            node = ast.ClassDef(
                name=node.name,
                bases=node.bases,
                keywords=node.keywords,
                body=kept,
                decorator_list=node.decorator_list,
                **({"type_params": node.type_params} if hasattr(node, "type_params") else {}),
            )
        body.append(node)
    return ast.dump(ast.Module(body=body, type_ignores=tree.type_ignores))


def _refuse(path: Path, problem: str) -> ValidationError:
    return ValidationError(
        f"refusing to write: the patched file {problem}; nothing was changed. "
        "Please report this SGLang layout to eagle3-patch",
        path=path,
    )
