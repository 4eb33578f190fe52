"""setuptools' files: ``setup.py`` (read with ``ast``, never run) and ``setup.cfg``.

Only ``install_requires`` and ``extras_require`` are read: the requirements a
package installs. In setup.py, a name bound at module level
(``install_requires=REQUIRED``, ``extras_require=extras`` whose values are
names too) is followed, three names deep; lists may be concatenated.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from eagle3_patch.pins.pin import Pin, requirement_pin
from eagle3_patch.reading import read_regular_bytes, read_text_lenient

if TYPE_CHECKING:
    import ast

_KEYWORDS = ("install_requires", "extras_require")


def setup_py_pins(path: str) -> list[Pin]:
    """The sglang requirements in a setup.py's ``setup(install_requires=..., extras_require=...)``."""
    import ast  # only for setup.py files: the hook's usual path does without it

    try:
        tree = ast.parse(_python_source(read_regular_bytes(path)), filename=path)
    except (SyntaxError, ValueError):
        return []
    except (RecursionError, MemoryError) as exc:  # the parser's stack: a chain of + or unary operators thousands long
        from eagle3_patch.pins.readers import TOO_DEEP_FOR_PYTHON, UnreadableFile

        raise UnreadableFile(path, TOO_DEEP_FOR_PYTHON) from exc
    bound = {
        target.id: node.value
        for node in tree.body
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name)
    }
    pins = []
    followed: set[tuple[str, int]] = set()
    for call in ast.walk(tree):
        if not (isinstance(call, ast.Call) and _called_name(call.func) == "setup"):
            continue
        for keyword in call.keywords:
            if keyword.arg in _KEYWORDS:
                for constant in _strings(keyword.value, bound, hops=3, followed=followed):
                    pins.extend(_found(requirement_pin(path, constant.lineno, str(constant.value), "setup.py")))
    return pins


def _python_source(data: bytes) -> str:
    """setup.py's text as Python decodes it (PEP 263): a UTF-8 byte order mark, else a coding comment in the
    first two lines, else UTF-8; undecodable bytes are replaced, and a declaration Python refuses reads as UTF-8."""
    import io
    import tokenize

    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        return data.decode(encoding, errors="replace")
    except (SyntaxError, LookupError, UnicodeError):
        return data.decode("utf-8", errors="replace")


def _called_name(node: ast.expr) -> str:
    import ast

    if isinstance(node, ast.Name):
        return node.id
    return node.attr if isinstance(node, ast.Attribute) else ""


def _strings(
    node: ast.expr, bound: dict[str, ast.expr], *, hops: int, followed: set[tuple[str, int]]
) -> Iterator[ast.Constant]:
    """The string constants a requirements expression is built from (lists, dicts, ``+``, names bound above).

    In source order, with a stack, not recursion: a chain of ``+`` as long as ``ast`` accepts is
    no deeper here. A name is followed once at each depth in a file (``followed``, shared by the
    calls for one file): lists of names of lists of names cost their size, not its product. A
    requirement that a name already followed led to is not found again (the hook reported it once anyway).
    """
    import ast

    stack: list[tuple[ast.expr, int]] = [(node, hops)]
    while stack:
        node, hops = stack.pop()
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node
        elif isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            elements = [element.value if isinstance(element, ast.Starred) else element for element in node.elts]
            stack.extend((element, hops) for element in reversed(elements))
        elif isinstance(node, ast.Dict):
            stack.extend((value, hops) for value in reversed(node.values))
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            stack.extend([(node.right, hops), (node.left, hops)])
        elif isinstance(node, ast.Name) and hops and node.id in bound and (node.id, hops) not in followed:
            followed.add((node.id, hops))  # hops: a cycle ends
            stack.append((bound[node.id], hops - 1))


def setup_cfg_pins(path: str) -> list[Pin]:
    """The sglang requirements in setup.cfg's ``[options] install_requires`` and ``[options.extras_require]``.

    ``install_requires = file: requirements.txt`` is followed into that file.
    """
    from eagle3_patch.pins.readers import requirements_file_pins  # the requirements reader, for ``file:``

    section, option = "", ""
    pins: list[Pin] = []
    for number, raw in enumerate(read_text_lenient(path).splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped[0] in "#;":
            continue
        if stripped.startswith("[") and stripped.endswith("]"):
            section, option = stripped[1:-1].strip().lower(), ""
            continue
        value = stripped
        if not raw[0].isspace():
            option, value = _cfg_option(stripped)
        wanted = (section == "options" and option == "install_requires") or section == "options.extras_require"
        comment = re.search(r"\s[#;]", value)  # a trailing comment; one blank before it is enough
        value = (value[: comment.start()] if comment else value).strip()
        if not wanted or not value:
            continue
        if value.startswith("file:"):
            for name in value[len("file:") :].split(","):
                pins.extend(requirements_file_pins(os.path.join(os.path.dirname(path), name.strip())))
            continue
        pins.extend(_found(requirement_pin(path, number, value, "setup.cfg")))
    return pins


def _cfg_option(line: str) -> tuple[str, str]:
    """``name = value`` or ``name: value`` (a stripped line): the lowered name and the value; ("", "") if neither.

    Plain string scanning: the pattern it replaces tried the blanks after every character of a long name.
    """
    separator = min((found for found in (line.find("="), line.find(":")) if found >= 0), default=-1)
    if separator <= 0:
        return "", ""
    return line[:separator].rstrip().lower(), line[separator + 1 :].lstrip()


def _found(pin: Pin | None) -> list[Pin]:
    return [] if pin is None else [pin]
