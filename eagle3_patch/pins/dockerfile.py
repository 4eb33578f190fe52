"""Dockerfiles: the sglang each build stage ends up with.

A stage's sglang comes from its base image (``FROM lmsysorg/sglang:v0.5.21``),
from ``pip install`` / ``uv pip install`` in a ``RUN``, or from a checkout of
sglang's repository installed from its ``python/`` folder (``git clone --branch
v0.5.8 ... && pip install -e "python[all]"``). An install replaces the image's
sglang: both are reported, the install is judged. ``ARG``/``ENV`` defaults are
substituted, and each finding carries the line its text is on, inside a
multi-line ``RUN`` too.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Iterator
from dataclasses import replace
from typing import NamedTuple

from eagle3_patch.pins.pin import Pin, requirement_pin
from eagle3_patch.pins.requirement import NAME_A_TAG, at_ref, is_sglang_repository, moving_ref, release_of_ref
from eagle3_patch.reading import read_text_lenient

#: Patterns used only on rare text are strings, compiled (and cached by ``re``) on first use: start-up counts.
_NAMES_SGLANG = r"(?i)sglang(\[[^\]]*\])?(\W|$)"
_VARIABLE = re.compile(r"\$\{(?P<braced>\w+)(?::?-(?P<default>[^}]*))?\}|\$(?P<plain>\w+)")
#: After a text's last ``}`` no ``${...}`` can end, so only ``$NAME`` is looked for there: the default's
#: ``[^}]*`` would otherwise run to the end from every ``${NAME:-`` (quadratic in a line of them).
_PLAIN_VARIABLE = r"\$(?P<plain>\w+)"
#: One piece of a shell word as shlex's POSIX mode reads it: plain characters, a backslash escape,
#: a single- or double-quoted part, or blanks between words. Matched only where the last one ended.
_SHELL_PIECE = r"""(?s)[^ \t\r\n'"\\]+|\\(.)|'([^']*)'|"((?:[^"\\]|\\.)*)"|[ \t\r\n]+"""
#: Shell words (quotes kept, for split_words) and the operators between commands.
_SHELL_TOKEN = re.compile(
    r"""(?P<operator>&&|\|\||[;&|()])|(?P<word>(?:[^\s'"\\;&|()]|\\.|'[^']*'|"(?:[^"\\]|\\.)*")+)"""
)
#: A heredoc's start, ``<<EOF``, ``<<-'EOF'``: its body runs until a line holding only the delimiter.
_HEREDOC = r"<<(-?)[ \t]*([\"']?)([A-Za-z_][\w.-]*)\2"
#: A heredoc body is read as shell only when the RUN runs it with no program or with a shell.
_SHELLS = frozenset(["bash", "sh", "dash", "zsh", "ash"])
_PIP = re.compile(r"(?:.*/)?pip(?:\d+(?:\.\d+)?)?")
#: pip and uv options that take a value (the next word), so that value is no requirement.
_PIP_VALUE_OPTIONS = frozenset(
    [
        "-r",
        "--requirement",
        "-c",
        "--constraint",
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
        "--index",
        "--default-index",
        "--prerelease",
        "--resolution",
        "--exclude-newer",
        "--torch-backend",
    ]
)
_GIT_VALUE_OPTIONS = frozenset(["-C", "-c", "--git-dir", "--work-tree", "--namespace"])
_CLONE_VALUE_OPTIONS = frozenset(
    [
        "-b",
        "--branch",
        "--revision",
        "--depth",
        "-o",
        "--origin",
        "-c",
        "--config",
        "--reference",
        "--reference-if-able",
        "--filter",
        "-j",
        "--jobs",
        "--template",
        "--separate-git-dir",
        "-u",
        "--upload-pack",
        "--shallow-since",
        "--shallow-exclude",
        "--server-option",
        "--bundle-uri",
    ]
)
#: The clone options whose value is the ref checked out.
_CLONE_REF_OPTIONS = frozenset(["-b", "--branch", "--revision"])
_CHECKOUT_VALUE_OPTIONS = frozenset(["-b", "-B", "-c", "-C", "--orphan", "--conflict"])
#: The official image's tags: ``v0.5.10.post1``, ``v0.5.10.post1-runtime``, ``v0.4.10.post2-cu126``.
_OFFICIAL_TAG = r"^v?(\d+\.\d+\.\d+(?:\.post\d+)?)(?:-[\w.]+)*$"
#: A third-party image whose tag names the sglang it carries: ``app-...-sglang0.5.2-...``.
_EMBEDDED = r"(?i)sglang[-_]?v?(\d+\.\d+\.\d+(?:\.post\d+)?)(?![\d.])"


class Variables(dict[str, tuple[str, int]]):
    """ARG/ENV name -> (value, the line it is set on), and how many characters substitution may still add.

    ``ENV A=$A$A`` on each line doubles ``A`` (Docker does it too): forty such lines would fill any
    memory. Past the budget (eight times the file, at least 64 KiB) a reference is left as written,
    so a requirement built from it reads as one whose version comes from a variable.
    """

    def __init__(self, budget: int) -> None:
        super().__init__()
        self.budget = budget


class _Instruction(NamedTuple):
    """One Dockerfile instruction, continuation lines joined, and where each of its lines starts."""

    keyword: str
    arguments: str
    #: (offset in ``arguments``, physical line number) for each physical line it spans.
    marks: tuple[tuple[int, int], ...]

    @property
    def line(self) -> int:
        return self.marks[0][1]

    def line_at(self, offset: int) -> int:
        """The physical line holding ``arguments[offset]`` (a binary search: marks are in offset order)."""
        low, high = 0, len(self.marks)
        while low < high:
            middle = (low + high) // 2
            if self.marks[middle][0] <= offset:
                low = middle + 1
            else:
                high = middle
        return self.marks[max(low - 1, 0)][1]


class _Word(NamedTuple):
    """A shell word after substitution, the line it is written on, and the variables that went into it."""

    text: str
    line: int
    sources: tuple[tuple[str, int], ...] = ()
    operator: bool = False


class _Checkout(NamedTuple):
    """A clone of sglang's repository in this stage, at the ref given (None: the default branch)."""

    url: _Word
    ref: _Word | None
    #: The install arguments that name its python/ folder (in every branch of a shell ``if``), added to in place.
    installs: list[_Word]


class _Stage:
    """What one build stage has read so far (the reader's working state, never returned)."""

    __slots__ = ("base", "checkout", "earlier_checkouts", "installs", "workdir")

    def __init__(self, base: Pin | None = None) -> None:
        self.base = base
        self.installs: list[Pin] = []
        self.checkout: _Checkout | None = None
        self.earlier_checkouts: list[_Checkout] = []
        self.workdir = "/"

    def start_checkout(self, checkout: _Checkout) -> None:
        """A new clone, or a new ref of the current one: an installed checkout is kept for reporting."""
        if self.checkout is not None and self.checkout.installs:
            self.earlier_checkouts.append(self.checkout)
        self.checkout = checkout

    def pins(self, path: str) -> list[Pin]:
        """The stage's findings: an install replaces the base image's sglang (both reported)."""
        checkouts = [c for c in [*self.earlier_checkouts, self.checkout] if c is not None and c.installs]
        installed = sorted([*self.installs, *(_checkout_pin(path, c) for c in checkouts)], key=lambda pin: pin.line)
        if self.base is None:
            return installed
        if not installed:
            return [self.base]
        first = min([pin.line for pin in self.installs] + [c.installs[0].line for c in checkouts])
        return [replace(self.base, replaced_by=first), *installed]


def dockerfile_pins(path: str) -> list[Pin]:
    """Every sglang a Dockerfile's stages get from base images, pip installs and checkouts."""
    text = read_text_lenient(path)
    variables = Variables(budget=max(8 * len(text), 1 << 16))
    stage_names: set[str] = set()
    stage = _Stage()
    pins: list[Pin] = []
    for instruction in _instructions(text):
        keyword = instruction.keyword
        if keyword in ("ARG", "ENV"):
            variables.update(_assignments(instruction, variables, env=keyword == "ENV"))
        elif keyword == "FROM":
            pins.extend(stage.pins(path))
            stage = _Stage(base=_base_image_pin(path, instruction, variables, stage_names))
        elif keyword == "WORKDIR":
            folder = _substitute(instruction.arguments.strip(), variables)[0].strip("'\"")
            stage.workdir = posixpath.normpath(posixpath.join(stage.workdir, folder))
        elif keyword == "RUN":
            _read_run(path, instruction, variables, stage)
    pins.extend(stage.pins(path))
    return pins


def _instructions(text: str) -> Iterator[_Instruction]:
    """Instructions with continuations joined, and any heredoc body (``RUN <<EOF``) after a newline.

    Comment and blank lines inside an instruction are dropped, as Docker does.
    """
    lines = text.splitlines()
    # Pieces are joined once per instruction: adding to a string could copy it once per line.
    pieces: list[str] = []
    length = 0  # of the pieces so far
    marks: list[tuple[int, int]] = []
    index = 0
    while index < len(lines):
        raw = lines[index]
        index += 1
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        marks.append((length, index))
        if stripped.endswith("\\"):
            pieces.append(raw.rstrip()[:-1] + " ")
            length += len(pieces[-1])
            continue
        pieces.append(raw)
        whole, spans = "".join(pieces), marks
        pieces, length, marks = [], 0, []
        body: list[str] = []
        size = len(whole)
        for _dash, _quote, delimiter in re.findall(_HEREDOC, whole) if "<<" in whole else []:
            while index < len(lines) and lines[index].strip() != delimiter:
                spans.append((size + 1, index + 1))
                body.append("\n" + lines[index])
                size += len(body[-1])
                index += 1
            index += 1  # the delimiter line
        yield _instruction(whole + "".join(body), spans)
    if pieces:
        yield _instruction("".join(pieces), marks)


def _instruction(text: str, marks: list[tuple[int, int]]) -> _Instruction:
    head = re.match(r"\s*(\S+)\s*", text)
    start = head.end() if head else 0
    keyword = head.group(1).upper() if head else ""
    return _Instruction(keyword, text[start:], tuple((offset - start, line) for offset, line in marks))


def _substitute(text: str, variables: Variables) -> tuple[str, tuple[tuple[str, int], ...]]:
    """``text`` with known ARG/ENV values (or ``${NAME:-default}``) put in, and the variables used.

    Within the budget of ``variables``; past it a reference is left as written.
    """
    if "$" not in text:
        return text, ()
    used: list[tuple[str, int]] = []

    def value(match: re.Match[str]) -> str:
        found = match.groupdict()
        name = found.get("braced") or found["plain"]
        if name in variables and len(variables[name][0]) <= variables.budget:
            variables.budget -= len(variables[name][0])
            used.append((name, variables[name][1]))
            return variables[name][0]
        default = found.get("default")
        return default if default is not None and name not in variables else match.group(0)

    braces = text.rfind("}") + 1
    return _VARIABLE.sub(value, text[:braces]) + re.sub(_PLAIN_VARIABLE, value, text[braces:]), tuple(used)


def split_words(text: str) -> list[str]:
    """``text`` split into words as ``shlex.split`` does (POSIX rules); ValueError for an open quote or escape.

    Linear in the text: shlex adds to its word one character at a time, a copy each, so one
    long word took time quadratic in its length (12 s for 1 MB). Tests hold the two to the same answers.
    """
    words: list[str] = []
    parts: list[str] = []
    quoted = False
    position = 0
    pieces = re.compile(_SHELL_PIECE)  # cached by re after the first time
    while position < len(text):
        piece = pieces.match(text, position)
        if piece is None:
            raise ValueError(f"no closing quotation or escaped character after offset {position}")
        position = piece.end()
        first = piece.group(0)[0]
        if first in " \t\r\n":
            if parts or quoted:
                words.append("".join(parts))
            parts, quoted = [], False
        elif first == "\\":
            parts.append(piece.group(1))
        elif first == "'":
            parts.append(piece.group(2))
            quoted = True
        elif first == '"':
            parts.append(re.sub(r'\\(["\\])', r"\1", piece.group(3)))  # in double quotes only these are escaped
            quoted = True
        else:
            parts.append(piece.group(0))
    if parts or quoted:
        words.append("".join(parts))
    return words


def _assignments(instruction: _Instruction, variables: Variables, *, env: bool) -> dict[str, tuple[str, int]]:
    """``ARG``/``ENV`` definitions, with the variables already known put into their values (as Docker does)."""
    try:
        words = split_words(instruction.arguments)
    except ValueError:
        return {}
    if env and len(words) >= 2 and "=" not in words[0]:
        pairs = [(words[0], " ".join(words[1:]))]  # legacy form: ENV NAME value
    else:
        pairs = [(name, value) for name, sep, value in (w.partition("=") for w in words) if sep]
    return {name: (_substitute(value, variables)[0], instruction.line) for name, value in pairs}


def _base_image_pin(path: str, instruction: _Instruction, variables: Variables, stage_names: set[str]) -> Pin | None:
    """``FROM [--platform=..] IMAGE [AS name]``: the sglang version the base image carries.

    An image named ``sglang`` (``lmsysorg/sglang`` and rebuilds of it) names its
    release in the tag; other images count only when their tag names
    ``sglang<version>``. A moving tag (``dev``, ``latest``, none) is unpinned.
    An earlier stage's name carries nothing new: its image was reported there.
    """
    words = [w for w in instruction.arguments.split() if not w.startswith("--")]
    if not words:
        return None
    image, sources = _substitute(words[0], variables)
    earlier_stage = image.lower() in stage_names
    if len(words) >= 3 and words[1].lower() == "as":
        stage_names.add(words[2].lower())
    if earlier_stage:
        return None
    reference = image.split("@", 1)[0]  # a digest pins bytes, not a name we can judge
    name, _, tag = reference.rpartition(":") if ":" in reference.rsplit("/", 1)[-1] else (reference, "", "")
    note = f"the base image, from {sources[0][0]} set on line {sources[0][1]}" if sources else "the base image"
    if name.rsplit("/", 1)[-1] == "sglang":  # lmsysorg/sglang and its rebuilds (slimerl/sglang)
        official = re.match(_OFFICIAL_TAG, tag)
        if official is None:
            moving = f"{note}; a tag that names no release (moving or nightly): pin a release tag"
            return Pin(path, instruction.line, image, None, "dockerfile", moving)
        return Pin(path, instruction.line, image, official.group(1), "dockerfile", note)
    embedded = re.search(_EMBEDDED, tag) if "sglang" in tag.lower() else None
    if embedded is not None:
        return Pin(path, instruction.line, image, embedded.group(1), "dockerfile", note)
    return None


def _shell_words(instruction: _Instruction, variables: Variables) -> list[_Word]:
    """The words of a RUN command (shell or exec form, with any heredoc body), each with its line."""
    arguments = _heredoc_as_commands(instruction.arguments)
    if arguments.lstrip().startswith("["):
        try:
            items = json.loads(arguments)
        except ValueError:
            items = None
        if isinstance(items, list):
            return [_Word(str(item), instruction.line) for item in items]
    words = []
    for match in _SHELL_TOKEN.finditer(arguments):
        line = instruction.line_at(match.start())
        if match["operator"]:
            words.append(_Word(match["operator"], line, operator=True))
            continue
        text, sources = _substitute(match["word"], variables)
        try:
            parts = split_words(text)
        except ValueError:
            parts = [text.strip("'\"")]
        words.extend(_Word(part, line, sources) for part in parts)
    return words


def _heredoc_as_commands(arguments: str) -> str:
    """A shell heredoc body as ``;``-separated commands (comment lines blanked); other programs' bodies dropped.

    Every replacement keeps the length, so offsets still map to lines.
    """
    if "\n" not in arguments:
        return arguments
    head, _, body = arguments.partition("\n")
    command = re.sub(_HEREDOC, lambda match: " " * len(match.group(0)), head)
    program = command.split()[0] if command.split() else ""
    if program and posixpath.basename(program) not in _SHELLS:
        return command
    body = body.replace("\\\n", "  ")  # a continued line in the script
    lines = [" " * len(line) if line.lstrip().startswith("#") else line for line in body.split("\n")]
    return command + ";" + ";".join(lines)


def _commands(words: list[_Word]) -> Iterator[list[_Word]]:
    segment: list[_Word] = []
    for word in words:
        if word.operator:
            yield segment
            segment = []
        else:
            segment.append(word)
    yield segment


def _read_run(path: str, instruction: _Instruction, variables: Variables, stage: _Stage) -> None:
    """Follow one RUN's commands: ``cd``, clones and checkouts of sglang, and pip installs."""
    folder = stage.workdir
    for command in _commands(_shell_words(instruction, variables)):
        texts = [word.text for word in command]
        if len(texts) >= 2 and texts[0] == "cd":
            folder = posixpath.normpath(posixpath.join(folder, texts[1]))
        elif (git := _git_start(texts)) is not None:
            _read_git(command[git + 1 :], stage)
        else:
            for word in _pip_install_arguments(command):
                checkout = stage.checkout
                if checkout is not None and _is_checkout_package(word.text, folder):
                    checkout.installs.append(word)
                elif (pin := _install_pin(path, word)) is not None:
                    stage.installs.append(pin)


def _git_start(texts: list[str]) -> int | None:
    """Where ``git`` (or ``/usr/bin/git``) stands in a command; None when it runs no git."""
    return next((i for i, text in enumerate(texts) if text == "git" or text.endswith("/git")), None)


def _read_git(after_git: list[_Word], stage: _Stage) -> None:
    """``git clone [--branch REF] URL`` of sglang starts a checkout; ``git checkout REF`` moves it."""
    subcommand, arguments = None, []
    index = 0
    while index < len(after_git):
        text = after_git[index].text
        if subcommand is None and text.startswith("-"):
            index += 2 if text in _GIT_VALUE_OPTIONS else 1
            continue
        if subcommand is None:
            subcommand = text
        else:
            arguments.append(after_git[index])
        index += 1
    if subcommand == "clone":
        ref, positional = _options_and_positional(arguments, _CLONE_VALUE_OPTIONS, _CLONE_REF_OPTIONS)
        if positional and is_sglang_repository(positional[0].text):
            stage.start_checkout(_Checkout(positional[0], ref, []))
    elif subcommand in ("checkout", "switch") and stage.checkout is not None:
        _, positional = _options_and_positional(arguments, _CHECKOUT_VALUE_OPTIONS, frozenset())
        if positional:
            stage.start_checkout(_Checkout(stage.checkout.url, positional[0], []))


def _options_and_positional(
    arguments: list[_Word], value_options: frozenset[str], ref_options: frozenset[str]
) -> tuple[_Word | None, list[_Word]]:
    """The value of the last ref option, and the positional arguments (up to ``--``)."""
    ref: _Word | None = None
    positional: list[_Word] = []
    index = 0
    while index < len(arguments):
        word = arguments[index]
        option, equals, value = word.text.partition("=")
        if word.text == "--":
            break
        if word.text.startswith("-") and equals and option in value_options:
            if option in ref_options:
                ref = word._replace(text=value)
        elif word.text in value_options:
            if word.text in ref_options and index + 1 < len(arguments):
                ref = arguments[index + 1]
            index += 1
        elif not word.text.startswith("-"):
            positional.append(word)
        index += 1
    return ref, positional


def _pip_install_arguments(command: list[_Word]) -> Iterator[_Word]:
    """The requirement arguments of a ``pip install`` / ``uv pip install`` command (``-e`` values too).

    Options may stand between ``pip`` and ``install`` (``python -m pip --no-cache-dir install``).
    """
    for start, runner in enumerate(command):
        if not _PIP.fullmatch(runner.text):
            continue
        index = start + 1
        while index < len(command) and command[index].text.startswith("-"):
            index += 2 if command[index].text in _PIP_VALUE_OPTIONS else 1
        if index >= len(command) or command[index].text != "install":
            continue
        editable = False
        skip = False
        for argument in command[index + 1 :]:
            text = argument.text
            if skip:
                skip = False
            elif editable:
                editable = False
                yield argument
            elif text in ("-e", "--editable"):
                editable = True
            elif text.startswith("--editable="):
                yield argument._replace(text=text.partition("=")[2])
            elif text.startswith("-"):
                skip = text in _PIP_VALUE_OPTIONS
            else:
                yield argument
        return


def _install_pin(path: str, word: _Word) -> Pin | None:
    """The pin one install argument makes: a git URL of sglang's repository, or a requirement."""
    text = word.text
    if "$" in text and re.match(_NAMES_SGLANG, text):
        return Pin(path, word.line, text, None, "dockerfile", "its version comes from a variable with no default here")
    pin = requirement_pin(path, word.line, text, "dockerfile")
    if pin is None or pin.note or pin.version is None or not word.sources:
        return pin
    name, line = word.sources[0]
    return replace(pin, note=f"version from {name} set on line {line}")


def _is_checkout_package(text: str, folder: str) -> bool:
    """Does this install argument name sglang's ``python/`` folder (``python[all]``, ``sglang/python``, ``.``)?"""
    location = text
    if text.endswith("]"):  # extras, ``[all]``: from the first ``[`` after any earlier ``]`` (no pattern: linear)
        opening = text.find("[", text.rfind("]", 0, len(text) - 1) + 1, len(text) - 1)
        location = text[:opening] if opening >= 0 else text
    if location in (".", "./", ""):
        location = folder
    return posixpath.basename(posixpath.normpath(location)) == "python"


def _checkout_pin(path: str, checkout: _Checkout) -> Pin:
    """A checkout installed from its python/ folder: a release tag pins that release; a branch moves."""
    ref = checkout.ref.text if checkout.ref is not None else ""
    version = release_of_ref(ref)
    written = checkout.ref or checkout.url
    origin = f" from {written.sources[0][0]} set on line {written.sources[0][1]}" if written.sources else ""
    lines = sorted({word.line for word in checkout.installs})
    installed = f"installed on line{'s' if len(lines) > 1 else ''} {', '.join(map(str, lines))}"
    if version is not None:
        note = f"a checkout of tag {ref}{origin}, {installed}"
    else:
        note = f"a checkout of {moving_ref(ref)}{origin}, {installed}; {NAME_A_TAG}"
    return Pin(path, written.line, at_ref(checkout.url.text, ref), version, "dockerfile", note)
