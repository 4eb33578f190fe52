"""One reader per kind of file that pins sglang, registered in ``READERS``.

Requirements and constraints files (with -r/-c includes), pyproject.toml,
Dockerfiles (``pip install`` and ``uv pip install`` lines, and base images
named in ``FROM``; ``ARG``/``ENV`` defaults substituted) and uv/poetry lock files. A new shape is a new reader
and one row in the table.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from eagle3_patch.pins.requirement import PACKAGE, canonical_name, git_tag_version, parse_requirement, wheel_version
from eagle3_patch.reading import read_text_lenient

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

_COMMENT = re.compile(r"(^|\s)#.*$")
_NAMES_SGLANG = re.compile(r"sglang(\[[^\]]*\])?(\W|$)", re.IGNORECASE)
_VARIABLE = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}|\$(\w+)")
_INCLUDE_OPTIONS = ("-r", "--requirement", "-c", "--constraint")
_PIP_VALUE_OPTIONS = frozenset(
    [
        "-r",
        "--requirement",
        "-c",
        "--constraint",
        "-e",
        "--editable",
        "-i",
        "--index-url",
        "--extra-index-url",
        "-f",
        "--find-links",
        "-t",
        "--target",
        "--prefix",
        "--root",
        "--src",
        "--upgrade-strategy",
        "--python-version",
        "--platform",
        "--implementation",
        "--abi",
        "--trusted-host",
        "--cache-dir",
        "--log",
        "--progress-bar",
        "--only-binary",
        "--no-binary",
        "--python",
        "-p",
        "--index-strategy",
        "--keyring-provider",
        "--config-settings",
        "-C",
        "--report",
    ]
)


@dataclass(frozen=True)
class Pin:
    """One sglang requirement found in a file."""

    #: As given or found (a string: the hook never needs pathlib, a tenth of its start-up).
    path: str
    line: int
    #: The requirement as written (variables substituted), e.g. ``sglang[all]==0.5.21``.
    text: str
    #: The exact version pinned, or None (a range, no version, an editable checkout).
    version: str | None
    #: requirements, pyproject, dockerfile, uv.lock or poetry.lock.
    source: str
    note: str = ""


def file_kind(path: str | os.PathLike[str]) -> str | None:
    """Which reader understands ``path``, from its name; None for files pins does not read."""
    name = os.path.basename(path)
    lowered = name.lower()
    return next((kind for kind, matches, _ in READERS if matches(name, lowered)), None)


def find_pins(given: str | os.PathLike[str]) -> list[Pin]:
    """Every sglang requirement in ``given`` (and in files it includes with -r/-c)."""
    path = os.fspath(given)
    kind = file_kind(path)
    return next((list(read(path)) for name, _, read in READERS if name == kind), [])


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """Lines with backslash continuations joined, each with the number of its first line."""
    buffer, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not buffer:
            start = number
        if raw.rstrip().endswith("\\"):
            buffer += raw.rstrip()[:-1] + " "
            continue
        yield start, buffer + raw
        buffer = ""
    if buffer:
        yield start, buffer


def _requirements_pins(path: str, *, seen: set[str]) -> Iterator[Pin]:
    real = os.path.realpath(path)
    if real in seen or not os.path.isfile(path):
        return
    seen.add(real)
    for number, line in _logical_lines(read_text_lenient(path)):
        line = _COMMENT.sub("", line).strip()
        if not line:
            continue
        if line.startswith("-"):
            yield from _requirements_option(path, number, line, seen)
            continue
        text = re.split(r"\s+-", line, maxsplit=1)[0].strip()  # drop per-line options (--hash=...)
        tagged = git_tag_version(text)
        if tagged is not None:
            yield Pin(path, number, text, tagged, "requirements", "the git tag of sglang's repository")
            continue
        requirement = parse_requirement(text)
        if requirement is not None:
            yield Pin(path, number, text, requirement.version, "requirements")
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
        yield Pin(path, number, argument, None, "requirements", note="editable install from a checkout")


def _pyproject_pins(path: str) -> list[Pin]:
    text = read_text_lenient(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return []
    lines = text.splitlines()
    project = data.get("project", {})
    tool = data.get("tool", {})
    strings: list[str] = list(project.get("dependencies", []))
    for group in project.get("optional-dependencies", {}).values():
        strings.extend(group)
    for group in data.get("dependency-groups", {}).values():
        strings.extend(item for item in group if isinstance(item, str))
    uv = tool.get("uv", {})
    for key in ("dev-dependencies", "constraint-dependencies", "override-dependencies"):
        strings.extend(uv.get(key, []))
    pins = []
    used: set[int] = set()
    for text_requirement in strings:
        requirement = parse_requirement(text_requirement)
        if requirement is not None:
            number = _line_of(lines, f'"{text_requirement}"', used) or _line_of(lines, f"'{text_requirement}'", used)
            pins.append(Pin(path, number or 1, text_requirement, requirement.version, "pyproject"))
    poetry = tool.get("poetry", {})
    tables = [("tool.poetry.dependencies", poetry.get("dependencies", {}))]
    tables.append(("tool.poetry.dev-dependencies", poetry.get("dev-dependencies", {})))
    tables += [
        (f"tool.poetry.group.{g}.dependencies", t.get("dependencies", {})) for g, t in poetry.get("group", {}).items()
    ]
    for header, table in tables:
        for name, value in table.items():
            if canonical_name(name) != PACKAGE:
                continue
            constraint = value.get("version", "") if isinstance(value, dict) else str(value)
            version = constraint.lstrip("=").strip() if re.fullmatch(r"=*\s*\d[\w.]*", constraint) else None
            start = _line_of(lines, f"[{header}]", set()) or 1
            number = next(
                (
                    n
                    for n in range(start, len(lines) + 1)
                    if re.match(rf'\s*["\']?{re.escape(name)}["\']?\s*=', lines[n - 1])
                ),
                start,
            )
            pins.append(Pin(path, number, f"{name} = {constraint!r}", version, "pyproject"))
    return pins


def _dockerfile_pins(path: str) -> list[Pin]:
    variables: dict[str, tuple[str, int]] = {}
    pins = []
    text = read_text_lenient(path)
    lines = [(n, line) for n, line in _logical_lines(text) if not line.lstrip().startswith("#")]
    for number, line in lines:
        instruction, _, rest = line.strip().partition(" ")
        instruction = instruction.upper()
        if instruction in ("ARG", "ENV"):
            variables.update(_assignments(rest, number, env=instruction == "ENV"))
        elif instruction == "FROM":
            pins.extend(_base_image_pin(path, number, rest, variables))
        elif instruction == "RUN":
            pins.extend(_run_pins(path, number, rest, variables))
    return pins


#: The official image's tags: ``v0.5.10.post1``, ``v0.5.10.post1-runtime``, ``v0.4.10.post2-cu126``.
_OFFICIAL_TAG = re.compile(r"^v?(\d+\.\d+\.\d+(?:\.post\d+)?)(?:-[\w.]+)*$")
#: A third-party image whose tag names the sglang it carries: ``app-...-sglang0.5.2-...``.
_EMBEDDED = re.compile(r"sglang[-_]?v?(\d+\.\d+\.\d+(?:\.post\d+)?)(?![\d.])", re.IGNORECASE)


def _base_image_pin(path: str, number: int, rest: str, variables: dict[str, tuple[str, int]]) -> list[Pin]:
    """``FROM [--platform=..] IMAGE [AS name]``: the sglang version the base image carries.

    An image named ``sglang`` (``lmsysorg/sglang`` and rebuilds of it) names its
    release in the tag; other images count only when their tag names
    ``sglang<version>``. A moving tag (``dev``, ``latest``, none) is unpinned.
    """
    words = [w for w in rest.split() if not w.startswith("--")]
    if not words:
        return []
    image = _VARIABLE.sub(lambda m: _variable(m, variables), words[0])
    reference = image.split("@", 1)[0]  # a digest pins bytes, not a name we can judge
    name, _, tag = reference.rpartition(":") if ":" in reference.rsplit("/", 1)[-1] else (reference, "", "")
    named = [n for groups in _VARIABLE.findall(words[0]) for n in (groups[0], groups[2]) if n]
    source = next((n for n in named if n in variables), None)
    note = f"the base image, from {source} set on line {variables[source][1]}" if source else "the base image"
    if name.rsplit("/", 1)[-1] == "sglang":  # lmsysorg/sglang and its rebuilds (slimerl/sglang)
        official = _OFFICIAL_TAG.match(tag)
        if official is None:
            return [Pin(path, number, image, None, "dockerfile", f"{note}; a moving tag: pin a release tag")]
        return [Pin(path, number, image, official.group(1), "dockerfile", note)]
    embedded = _EMBEDDED.search(tag)
    if embedded is not None:
        return [Pin(path, number, image, embedded.group(1), "dockerfile", note)]
    return []


def _variable(match: re.Match[str], variables: dict[str, tuple[str, int]]) -> str:
    name = match.group(1) or match.group(3)
    if name in variables:
        return variables[name][0]
    return match.group(2) if match.group(2) is not None else match.group(0)


def _assignments(rest: str, number: int, *, env: bool) -> dict[str, tuple[str, int]]:
    try:
        words = shlex.split(rest)
    except ValueError:
        return {}
    if env and len(words) >= 2 and "=" not in words[0]:
        return {words[0]: (" ".join(words[1:]), number)}  # legacy form: ENV NAME value
    return {name: (value, number) for name, sep, value in (w.partition("=") for w in words) if sep}


def _run_pins(path: str, number: int, command: str, variables: dict[str, tuple[str, int]]) -> list[Pin]:
    command = command.strip()
    used: list[str] = []
    if command.startswith("["):
        try:
            words = [str(w) for w in json.loads(command)]
        except ValueError:
            return []
    else:

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1) or match.group(3)
            if name in variables:
                used.append(name)
                return variables[name][0]
            return match.group(2) if match.group(2) is not None else match.group(0)

        try:
            words = shlex.split(_VARIABLE.sub(substitute, command).replace(";", " ; "))
        except ValueError:
            return []
    pins = []
    for segment in _commands(words):
        for word in _pip_install_arguments(segment):
            if "$" in word and _NAMES_SGLANG.match(word):
                note = "its version comes from a variable with no default here"
                pins.append(Pin(path, number, word, None, "dockerfile", note))
                continue
            tagged = git_tag_version(word)
            if tagged is not None:
                pins.append(Pin(path, number, word, tagged, "dockerfile", "the git tag of sglang's repository"))
                continue
            requirement = parse_requirement(word)
            if requirement is None:
                continue
            source = next((name for name in used if variables[name][0] in word), None)
            note = f"version from {source} set on line {variables[source][1]}" if source else ""
            pins.append(Pin(path, number, word, requirement.version, "dockerfile", note))
    return pins


def _commands(words: list[str]) -> Iterator[list[str]]:
    segment: list[str] = []
    for word in words:
        if word in ("&&", "||", ";", "|"):
            yield segment
            segment = []
        else:
            segment.append(word)
    yield segment


def _pip_install_arguments(words: list[str]) -> Iterator[str]:
    """The requirement arguments of a ``pip install`` / ``uv pip install`` command.

    Options may stand between ``pip`` and ``install`` (``python -m pip --no-cache-dir install``).
    """
    for start, runner in enumerate(words):
        if not (runner in ("pip", "pip3") or runner.endswith(("/pip", "/pip3"))):
            continue
        index = start + 1
        while index < len(words) and words[index].startswith("-"):
            index += 2 if words[index] in _PIP_VALUE_OPTIONS else 1
        if index >= len(words) or words[index] != "install":
            continue
        skip = False
        for argument in words[index + 1 :]:
            if skip:
                skip = False
            elif argument.startswith("-"):
                skip = argument in _PIP_VALUE_OPTIONS
            else:
                yield argument
        return


def _lock_pins(path: str, kind: str) -> list[Pin]:
    text = read_text_lenient(path)
    try:
        packages = tomllib.loads(text).get("package", [])
    except tomllib.TOMLDecodeError:
        return []
    lines = text.splitlines()
    return [
        Pin(
            path,
            _line_of(lines, f'name = "{package["name"]}"', set()) or 1,
            f"sglang=={package.get('version')}",
            package.get("version"),
            kind,
        )  # fmt: skip
        for package in packages
        if isinstance(package, dict) and canonical_name(str(package.get("name", ""))) == PACKAGE
    ]


def _line_of(lines: list[str], needle: str, used: set[int]) -> int:
    """The first line holding ``needle`` not yet claimed by an earlier finding (0: none)."""
    for number, line in enumerate(lines, start=1):
        if needle in line and number not in used:
            used.add(number)
            return number
    return 0


def _requirements_file(path: str) -> Iterator[Pin]:
    return _requirements_pins(path, seen=set())


#: (kind, does a file name (as given, lowered) belong to it, its reader); the first match wins.
READERS: tuple[tuple[str, Callable[[str, str], bool], Callable[[str], Iterator[Pin] | list[Pin]]], ...] = (
    ("pyproject", lambda name, lowered: name == "pyproject.toml", _pyproject_pins),
    ("uv.lock", lambda name, lowered: name == "uv.lock", lambda path: _lock_pins(path, "uv.lock")),
    ("poetry.lock", lambda name, lowered: name == "poetry.lock", lambda path: _lock_pins(path, "poetry.lock")),
    (
        "dockerfile",
        lambda name, lowered: (
            lowered.startswith(("dockerfile", "containerfile")) or lowered.endswith((".dockerfile", ".containerfile"))
        ),
        _dockerfile_pins,
    ),
    ("requirements", lambda name, lowered: lowered.endswith((".txt", ".in")), _requirements_file),
)
