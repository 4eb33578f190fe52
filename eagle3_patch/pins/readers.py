"""One reader per kind of file that pins sglang, registered in ``READERS``.

Requirements and constraints files (with -r/-c includes), pyproject.toml,
setup.py and setup.cfg (``setup_files``), Dockerfiles (``dockerfile``) and
uv/poetry lock files. A file is known by its name, case-insensitively; a file
named on the command line under another name is known by its content, and one
that fits no kind is an error, never a silent pass. A new shape is a new reader
and one row in the table.
"""

from __future__ import annotations

import codecs
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from types import ModuleType
from typing import Any

from eagle3_patch.pins.dockerfile import dockerfile_pins
from eagle3_patch.pins.pin import Pin, requirement_pin
from eagle3_patch.pins.requirement import PACKAGE, canonical_name, git_table_reference, wheel_version
from eagle3_patch.reading import NotRegularFileError, read_regular_bytes, read_text_lenient

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

_COMMENT = re.compile(r"(^|\s)#.*$")
_INCLUDE_OPTIONS = ("-r", "--requirement", "-c", "--constraint")
#: A line a requirements file may hold: an option, a requirement (any project), a URL or a path.
#: (The blanks after the extras belong to them: two ``\s*`` side by side made a failing match quadratic.)
_REQUIREMENTS_LINE = re.compile(
    r"-.*|[A-Za-z0-9][\w.-]*\s*(\[[^\]]*\]\s*)?([<>=!~@;].*|\(\s*[<>=!~].*)?|(git\+|https?:|file:|\.{0,2}/)\S*"
)

#: The byte order marks of a requirements file and their codecs, as pip reads them (``auto_decode``), except
#: the order: pip looks for UTF-16's two bytes first, which begin UTF-32 LE's mark, and so reads a UTF-32 LE
#: file as UTF-16 (a NUL before each character, no requirement it can parse); the longer marks come first here.
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
#: pip's (and PEP 263's) ``# -*- coding: latin-1 -*-``, in a line that starts with ``#``.
_CODING = rb"coding[:=]\s*([-\w.]+)"

#: A Dockerfile's ``FROM [--platform=X] IMAGE [AS NAME]`` (and not Python's ``from x import y``).
_FROM_LINE = re.compile(r"^[ \t]*FROM([ \t]+--\S+)*[ \t]+\S+([ \t]+AS[ \t]+\S+)?[ \t]*$", re.MULTILINE | re.IGNORECASE)


class UnreadableFile(Exception):
    """A file given to pins that cannot be read, or read as any kind it knows."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def file_kind(path: str | os.PathLike[str]) -> str | None:
    """Which reader understands ``path``, from its name; None for files pins does not read."""
    lowered = os.path.basename(path).lower()
    return next((kind for kind, matches, _ in READERS if matches(lowered)), None)


def find_pins(given: str | os.PathLike[str]) -> list[Pin]:
    """Every sglang requirement in ``given`` (and in files it includes); its kind from its name, else its content.

    Raises ``UnreadableFile`` when it cannot be read, or fits no kind.
    """
    path = os.fspath(given)
    try:
        kind = file_kind(path) or guess_kind(read_requirements_text(path), path=path)
        if kind is None:
            raise UnreadableFile(
                path,
                "not a requirements file, pyproject.toml, setup.py, setup.cfg, Dockerfile or lock file; "
                "pass only those (or narrow the hook's files pattern)",
            )
        return next(list(read(path)) for name, _, read in READERS if name == kind)
    except NotRegularFileError as exc:  # a FIFO, a socket, a device: refused before a read that could block
        raise UnreadableFile(
            str(exc.filename),
            f"{exc.strerror}; pins reads only regular files: pass the file itself, or leave this path out",
        ) from exc
    except OSError as exc:
        where = exc.filename if isinstance(exc.filename, str) else path  # an included file, or this one
        raise UnreadableFile(where, f"cannot read it ({exc.strerror or exc}); check its permissions") from exc


def read_requirements_text(path: str) -> str:
    """A requirements or constraints file's text, decoded as pip decodes it; undecodable bytes replaced.

    A byte order mark (UTF-8, UTF-16 or UTF-32, either order: ``pip freeze >`` in Windows
    PowerShell 5 writes UTF-16 LE), else a coding comment in one of the first two lines, else
    UTF-8 (pip: the locale's encoding, which is UTF-8 on Linux, macOS and in images; a fixed
    answer here, so the hook says the same on every machine).
    """
    data = read_regular_bytes(path)
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return data[len(bom) :].decode(codec, errors="replace")
    first, _, rest = data.partition(b"\n")
    for line in (first, rest.partition(b"\n")[0]):
        declared = re.search(_CODING, line) if line.startswith(b"#") else None
        if declared is not None:
            codec = declared.group(1).decode("ascii")
            try:
                return data.decode(codec, errors="replace")
            except (LookupError, UnicodeError) as exc:  # no such codec, or not one for text (pip fails on it too)
                raise UnreadableFile(
                    path,
                    f"its coding comment names {codec!r}, which is no text encoding Python (or pip) can read it with; "
                    "name one such as utf-8, or remove the comment",
                ) from exc
    return data.decode("utf-8", errors="replace")


def guess_kind(text: str, *, path: str = "<text>") -> str | None:
    """The kind of a file whose name says nothing, from what it holds; None when it fits none.

    ``UnreadableFile`` (naming ``path``) when it is TOML or Python nested too deeply to parse.
    """
    data = load_toml(path, text) or {}
    if isinstance(data.get("package"), list):
        metadata = data.get("metadata", {})
        return "poetry.lock" if isinstance(metadata, dict) and "content-hash" in metadata else "uv.lock"
    if data.keys() & {"project", "tool", "build-system", "dependency-groups"}:
        return "pyproject"
    if _FROM_LINE.search(text):
        return "dockerfile"
    if re.search(r"^\[(options|metadata)(\.[\w.]+)?\][ \t]*$", text, re.MULTILINE):
        return "setup.cfg"
    if re.search(r"\bsetup\s*\(", text) and _is_python(path, text):
        return "setup.py"
    lines = (_COMMENT.sub("", line).strip() for _, line in _logical_lines(text))
    if all(_REQUIREMENTS_LINE.fullmatch(line) for line in lines if line):
        return "requirements"
    return None


def _is_python(path: str, text: str) -> bool:
    import ast  # only when guessing a setup.py

    try:
        ast.parse(text)
    except (SyntaxError, ValueError):
        return False
    except (RecursionError, MemoryError) as exc:
        raise UnreadableFile(path, TOO_DEEP_FOR_PYTHON) from exc
    return True


#: Why a file nested past what Python's parsers follow is refused, and what to do (exit 2, like any unreadable file).
TOO_DEEP_FOR_TOML = "nested too deeply for Python's TOML reader (arrays or inline tables thousands deep); flatten them"
TOO_DEEP_FOR_PYTHON = (
    "nested too deeply for Python's parser (an expression thousands of operators or brackets deep), "
    "so Python could not run it either; shorten it"
)


def load_toml(path: str, text: str) -> dict[str, Any] | None:
    """``text`` read as TOML; None when it is no TOML, ``UnreadableFile`` when it nests past tomllib's recursion."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return None
    except RecursionError as exc:
        raise UnreadableFile(path, TOO_DEEP_FOR_TOML) from exc


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """Lines with backslash continuations joined, each with the number of its first line."""
    pieces: list[str] = []  # joined once at the end: adding to a string could copy it once per line
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not pieces:
            start = number
        if raw.rstrip().endswith("\\"):
            pieces.append(raw.rstrip()[:-1] + " ")
            continue
        pieces.append(raw)
        yield start, "".join(pieces)
        pieces = []
    if pieces:
        yield start, "".join(pieces)


def _requirements_pins(path: str, *, seen: set[str]) -> Iterator[Pin]:
    real = os.path.realpath(path)
    if real in seen:
        return
    seen.add(real)
    try:
        text = read_requirements_text(path)
    except (FileNotFoundError, NotADirectoryError):
        return  # a missing file has none; one that is there but no regular file is refused (NotRegularFileError)
    for number, line in _logical_lines(text):
        line = _COMMENT.sub("", line).strip()
        if not line:
            continue
        if line.startswith("-"):
            yield from _requirements_option(path, number, line, seen)
            continue
        option = re.search(r"\s-", line)  # drop per-line options (--hash=...); one blank before the dash is enough
        text = line[: option.start()].strip() if option else line
        pin = requirement_pin(path, number, text, "requirements")
        if pin is not None:
            yield pin
        elif text.endswith(".whl") and (version := wheel_version(text)):
            yield Pin(path, number, text, version, "requirements")


def _requirements_option(path: str, number: int, line: str, seen: set[str]) -> Iterator[Pin]:
    flag, *rest = line.split(None, 1)
    argument = rest[0].strip() if rest else ""
    if flag.startswith("--") and "=" in flag:
        flag, _, argument = flag.partition("=")
    elif flag[:2] in ("-r", "-c", "-e") and len(flag) > 2:
        flag, argument = flag[:2], flag[2:]
    if flag in _INCLUDE_OPTIONS and argument:
        yield from _requirements_pins(os.path.join(os.path.dirname(path), argument), seen=seen)
    elif flag in ("-e", "--editable") and PACKAGE in argument.lower():
        pin = requirement_pin(path, number, argument, "requirements")
        yield pin or Pin(path, number, argument, None, "requirements", note="editable install from a checkout")


def requirements_file_pins(path: str) -> Iterator[Pin]:
    """A requirements file's pins (also setup.cfg's ``file:`` references); a missing file has none.

    Includes are followed recursively, as pip follows them: a chain too long for Python's
    recursion limit (pip fails on it too) is an ``UnreadableFile`` naming this file.
    """
    try:
        yield from _requirements_pins(path, seen=set())
    except RecursionError as exc:
        raise UnreadableFile(
            path, "its -r/-c includes nest too deeply to follow (pip cannot either); shorten the chain"
        ) from exc


def _pyproject_pins(path: str) -> list[Pin]:
    text = read_text_lenient(path)
    data = load_toml(path, text)
    if data is None:
        return []
    lines = text.splitlines()
    typed = _Typed(path)
    project = typed.table(data, "project")
    tool = typed.table(data, "tool")
    strings: list[str] = typed.strings(project, "dependencies", "project.dependencies")
    for name, group in typed.table(project, "optional-dependencies", "project.optional-dependencies").items():
        strings.extend(typed.strings({name: group}, name, f"project.optional-dependencies.{name}"))
    for group in typed.table(data, "dependency-groups").values():
        strings.extend(item for item in (group if isinstance(group, list) else []) if isinstance(item, str))
    uv = typed.table(tool, "uv", "tool.uv")
    for key in ("dev-dependencies", "constraint-dependencies", "override-dependencies"):
        strings.extend(typed.strings(uv, key, f"tool.uv.{key}"))
    source = _uv_git_source(path, lines, typed.table(uv, "sources", "tool.uv.sources"))
    pins = [] if source is None else [source]
    quoted = _QuotedStrings(lines)
    for text_requirement in strings:
        pin = requirement_pin(path, 1, text_requirement, "pyproject")
        if pin is not None and not (source is not None and pin.version is None):  # the source gives its version
            pins.append(replace(pin, line=quoted.claim(text_requirement) or 1))
    poetry = typed.table(tool, "poetry", "tool.poetry")
    tables = [("tool.poetry.dependencies", typed.table(poetry, "dependencies", "tool.poetry.dependencies"))]
    tables.append(
        ("tool.poetry.dev-dependencies", typed.table(poetry, "dev-dependencies", "tool.poetry.dev-dependencies"))
    )
    for g, t in typed.table(poetry, "group", "tool.poetry.group").items():
        header = f"tool.poetry.group.{g}.dependencies"
        tables.append((header, typed.table(typed.table({g: t}, g, f"tool.poetry.group.{g}"), "dependencies", header)))
    for header, table in tables:
        for name, value in table.items():
            if canonical_name(name) == PACKAGE:
                pins.append(_poetry_pin(path, lines, header, name, value))
    return pins


class _Typed:
    """TOML values of the type their specification gives, or one line naming the key (exit 2), never a crash.

    pip, uv and poetry refuse such a file as well; reading past the wrong type
    could hide a pin, so the hook does not guess.
    """

    def __init__(self, path: str) -> None:
        self.path = path

    def table(self, data: dict[str, Any], key: str, where: str = "") -> dict[str, Any]:
        value = data.get(key, {})
        if not isinstance(value, dict):
            raise self._wrong(where or key, value, "a table")
        return value

    def strings(self, data: dict[str, Any], key: str, where: str) -> list[str]:
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self._wrong(where, value, "an array of strings")
        return value

    def _wrong(self, where: str, value: object, wanted: str) -> UnreadableFile:
        kind = type(value).__name__
        return UnreadableFile(
            self.path, f"`{where}` is {kind} {value!r:.40}, not {wanted}; fix it (pip and uv refuse it too)"
        )


def _poetry_pin(path: str, lines: list[str], header: str, name: str, value: object) -> Pin:
    """``sglang = "0.5.21"``, ``{version = "..."}`` or ``{git = "...sglang.git", tag = "v0.5.16"}``."""
    number = _key_line(lines, header, name)
    git = git_table_reference(value)
    if git is not None:
        text, reference = git
        return Pin(path, number, text, reference.version, "pyproject", reference.note)
    constraint = str(value.get("version", "")) if isinstance(value, dict) else str(value)
    version = constraint.lstrip("=").strip() if re.fullmatch(r"=*\s*\d[\w.]*", constraint) else None
    return Pin(path, number, f"{name} = {constraint!r}", version, "pyproject")


def _uv_git_source(path: str, lines: list[str], sources: dict[str, object]) -> Pin | None:
    """``[tool.uv.sources] sglang = { git = "...sglang", tag = "v0.5.16" }``: the release it installs."""
    name, entry = next(((n, value) for n, value in sources.items() if canonical_name(n) == PACKAGE), ("", None))
    entries: Iterable[object] = entry if isinstance(entry, list) else [entry]
    for item in entries:
        git = git_table_reference(item)
        if git is not None:
            text, reference = git
            number = _line_of(lines, f"[tool.uv.sources.{name}]") or _key_line(lines, "tool.uv.sources", name)
            return Pin(path, number, text, reference.version, "pyproject", f"{reference.note}, in [tool.uv.sources]")
    return None


def _key_line(lines: list[str], header: str, key: str) -> int:
    """The line of ``key =`` in the TOML table ``[header]`` (the header's line when it is not found)."""
    start = _line_of(lines, f"[{header}]") or 1
    pattern = re.compile(rf"\s*[\"']?{re.escape(key)}[\"']?\s*=")
    return next((n for n in range(start, len(lines) + 1) if pattern.match(lines[n - 1])), start)


def _lock_pins(path: str, kind: str) -> list[Pin]:
    """Each ``[[package]]`` entry named sglang, at the line of that entry's ``name``."""
    text = read_text_lenient(path)
    data = load_toml(path, text)
    if data is None:
        return []
    packages = data.get("package", [])
    if not isinstance(packages, list):
        raise UnreadableFile(path, f"`package` is {type(packages).__name__}, not an array of tables; fix it")
    entries = _package_entry_lines(text.splitlines())
    return [
        Pin(path, line, f"sglang=={package.get('version')}", package.get("version"), kind)
        for package, line in zip(packages, entries + [1] * (len(packages) - len(entries)), strict=True)
        if isinstance(package, dict) and canonical_name(str(package.get("name", ""))) == PACKAGE
    ]


def _package_entry_lines(lines: list[str]) -> list[int]:
    """For each ``[[package]]`` table in order, the line of its ``name =`` key (the header's when absent)."""
    found: list[int] = []
    header = 0
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if stripped == "[[package]]":
            if header:
                found.append(header)
            header = number
        elif header and re.match(r"name\s*=", stripped):
            found.append(number)
            header = 0
        elif header and stripped.startswith("["):
            found.append(header)
            header = 0
    if header:
        found.append(header)
    return found


def _line_of(lines: list[str], needle: str) -> int:
    """The first line holding ``needle`` (0: none)."""
    return next((number for number, line in enumerate(lines, start=1) if needle in line), 0)


class _QuotedStrings:
    """Where each quoted string of a TOML file is written: each finding claims the next occurrence of its text.

    ``"text"`` (``text`` holding no ``"``) stands in a line exactly where ``text`` lies between two
    consecutive ``"``, and so for ``'``; one pass over the lines indexes them all, and each
    requirement's line is a look-up: searching every line for every requirement took time quadratic
    in a one-line array of them. Findings of one text get its occurrences in file order; a line may
    hold several.
    """

    def __init__(self, lines: list[str]) -> None:
        #: text -> the lines it is written on in quotes, in order, a line once per occurrence.
        self._places: dict[str, list[int]] = {}
        self._claimed: dict[str, int] = {}
        for number, line in enumerate(lines, start=1):
            for quote in "\"'":
                for between in line.split(quote)[1:-1]:
                    self._places.setdefault(between, []).append(number)

    def claim(self, text: str) -> int:
        """The line of the next unclaimed quoted ``text``; 0 when none is left."""
        places, claimed = self._places.get(text, []), self._claimed.get(text, 0)
        if claimed >= len(places):
            return 0
        self._claimed[text] = claimed + 1
        return places[claimed]


def _setup_files() -> ModuleType:
    from eagle3_patch.pins import setup_files  # only for setup.py and setup.cfg, rarer than the rest

    return setup_files


#: (kind, does a file name (lowered) belong to it, its reader); the first match wins.
READERS: tuple[tuple[str, Callable[[str], bool], Callable[[str], Iterable[Pin]]], ...] = (
    ("pyproject", lambda name: name == "pyproject.toml", _pyproject_pins),
    ("uv.lock", lambda name: name == "uv.lock", lambda path: _lock_pins(path, "uv.lock")),
    ("poetry.lock", lambda name: name == "poetry.lock", lambda path: _lock_pins(path, "poetry.lock")),
    ("setup.py", lambda name: name == "setup.py", lambda path: _setup_files().setup_py_pins(path)),
    ("setup.cfg", lambda name: name == "setup.cfg", lambda path: _setup_files().setup_cfg_pins(path)),
    (
        "dockerfile",
        lambda name: (
            name.startswith(("dockerfile", "containerfile")) or name.endswith((".dockerfile", ".containerfile"))
        ),
        dockerfile_pins,
    ),
    ("requirements", lambda name: name.endswith((".txt", ".in")), requirements_file_pins),
)
