"""Find the SGLang versions a deployment repository pins, and judge them against the verified table.

For the pre-commit hook: a pin bump to a release eagle3-patch has not been proven
on must fail the commit, before a Docker build fails or a server silently
captures nothing. Reads requirements and constraints files (with -r/-c
includes), pyproject.toml, Dockerfiles (``pip install`` and ``uv pip install``
lines, ``ARG``/``ENV`` defaults substituted) and uv/poetry lock files. No
network unless the caller asks for ``judge_from_code``.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, NamedTuple

from eagle3_patch.verified import VerifiedRelease, load_verified

if TYPE_CHECKING:
    from packaging.version import Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

PACKAGE = "sglang"
PATCH, NATIVE, UNSUPPORTED, UNKNOWN, UNPINNED = "patch", "native", "unsupported", "unknown", "unpinned"
#: Verdicts that fail the hook (UNPINNED unless --allow-unpinned).
FAILING = (UNSUPPORTED, UNKNOWN, UNPINNED)

#: The files the pre-commit hook is given (the same pattern as ``files`` in .pre-commit-hooks.yaml).
HOOK_FILES = re.compile(
    r"(^|/)((requirements|constraints)[^/]*\.txt|[^/]*\.in|pyproject\.toml|(Dockerfile|Containerfile)[^/]*"
    r"|[^/]*\.(Dockerfile|Containerfile)|uv\.lock|poetry\.lock)$"
)
_SKIPPED_FOLDERS = frozenset({"node_modules", "site-packages", "__pycache__", "venv", "build", "dist"})
_COMMENT = re.compile(r"(^|\s)#.*$")
_NAMES_SGLANG = re.compile(r"sglang(\[[^\]]*\])?(\W|$)", re.IGNORECASE)
_VARIABLE = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}|\$(\w+)")
#: The common requirement shapes, read without loading packaging's full PEP 508
#: parser (a third of the hook's start-up): ``name[extras]==version ; marker``
#: where the marker is comparisons joined by ``and``/``or``. Anything else goes to packaging.
_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
_SIMPLE_REQUIREMENT = re.compile(
    rf"[ \t]*(?P<name>{_NAME})[ \t]*"
    rf"(?:\[[ \t]*(?:{_NAME}[ \t]*(?:,[ \t]*{_NAME}[ \t]*)*)?\])?"
    r"[ \t]*(?:==[ \t]*(?P<version>[A-Za-z0-9.!+_-]+)[ \t]*)?(?:;(?P<marker>.*))?"
)
_MARKER_VALUE = (
    r"(?:python_(?:full_)?version|os[._]name|sys[._]platform|platform_(?:release|system)"
    r"|platform[._](?:version|machine|python_implementation)|python_implementation|implementation_(?:name|version)"
    r"|extras?|dependency_groups|'[^']*'|\"[^\"]*\")"
)
_MARKER_TEST = re.compile(rf"{_MARKER_VALUE}[ \t]*(?:===|==|~=|!=|<=|>=|<|>|not[ \t]+in\b|in\b)[ \t]*{_MARKER_VALUE}")
_MARKER_JOIN = re.compile(r"[ \t]+(?:and|or)[ \t]+")
#: Normalized PEP 440 versions (each one valid); other spellings go to packaging.version.
_PLAIN_VERSION = re.compile(r"[0-9]+(?:\.[0-9]+)*(?:(?:a|b|rc)[0-9]+)?(?:\.post[0-9]+)?(?:\.dev[0-9]+)?")
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


@dataclass(frozen=True)
class Finding:
    pin: Pin
    verdict: str
    advice: str
    #: True when the verdict comes from classifying the downloaded wheel (--fetch).
    from_code: bool = False

    def line(self) -> str:
        """``path:line: requirement: verdict — what to do`` (the hook's output)."""
        shown = f"sglang=={self.pin.version}" if self.pin.version else self.pin.text
        note = f" ({self.pin.note})" if self.pin.note else ""
        return f"{self.pin.path}:{self.pin.line}: {shown}{note}: {self.verdict} — {self.advice}"


def discover(root: str | os.PathLike[str]) -> list[str]:
    """The files under ``root`` the hook would be given, never entering hidden or environment folders."""
    top = os.fspath(root)
    found = []
    for folder, folders, files in os.walk(top):
        folders[:] = [f for f in folders if not f.startswith(".") and f not in _SKIPPED_FOLDERS]
        relative = os.path.relpath(folder, top).replace(os.sep, "/")
        for name in files:
            posix = name if relative == "." else f"{relative}/{name}"
            path = os.path.join(folder, name)
            if HOOK_FILES.search(posix) and os.path.isfile(path):
                found.append(os.path.normpath(path))
    return sorted(found, key=lambda path: path.split(os.sep))


def file_kind(path: str | os.PathLike[str]) -> str | None:
    """Which reader understands ``path``, from its name; None for files pins does not read."""
    name = os.path.basename(path)
    lowered = name.lower()
    if name == "pyproject.toml":
        return "pyproject"
    if name in ("uv.lock", "poetry.lock"):
        return name
    if lowered.startswith(("dockerfile", "containerfile")) or lowered.endswith((".dockerfile", ".containerfile")):
        return "dockerfile"
    if lowered.endswith((".txt", ".in")):
        return "requirements"
    return None


def scan(paths: list[str] | list[os.PathLike[str]]) -> list[Pin]:
    """Every sglang requirement in ``paths``, each reported once (a file may also be included by another)."""
    pins: dict[tuple[str, int, str], Pin] = {}
    for path in paths:
        for pin in find_pins(path):
            pins.setdefault((os.path.realpath(pin.path), pin.line, pin.text), pin)
    return list(pins.values())


def find_pins(given: str | os.PathLike[str]) -> list[Pin]:
    """Every sglang requirement in ``given`` (and in files it includes with -r/-c)."""
    path = os.fspath(given)
    kind = file_kind(path)
    if kind == "requirements":
        return list(_requirements_pins(path, seen=set()))
    if kind == "pyproject":
        return _pyproject_pins(path)
    if kind == "dockerfile":
        return _dockerfile_pins(path)
    if kind in ("uv.lock", "poetry.lock"):
        return _lock_pins(path, kind)
    return []


def judge(pin: Pin, verified: tuple[VerifiedRelease, ...] | None = None) -> Finding:
    """The verdict of the verified table on ``pin``."""
    if pin.version is None:
        return Finding(
            pin,
            UNPINNED,
            "pin an exact release (e.g. sglang==0.5.21) so the patch is proven on it, or --allow-unpinned",
        )
    release = _verified(pin.version, verified if verified is not None else load_verified())
    if release is None:
        from packaging.version import Version

        newest = max((r.version for r in load_verified()), key=Version, default="none")
        return Finding(
            pin,
            UNKNOWN,
            f"not in eagle3-patch's verified table (newest verified: {newest}); run `eagle3-patch pins --fetch` "
            "to classify it from its code, or upgrade eagle3-patch",
        )
    return Finding(pin, release.verdict, _ADVICE[release.verdict])


def judge_from_code(finding: Finding) -> Finding:
    """For an unknown pin: download the wheel, classify it and dry-run the patch (network)."""
    import tempfile
    from pathlib import Path

    from eagle3_patch.classify import classify_install
    from eagle3_patch.errors import Eagle3PatchError
    from eagle3_patch.fetch import FetchError, extract_release, fetch_wheel
    from eagle3_patch.locate import locate_root
    from eagle3_patch.plan import plan_apply
    from eagle3_patch.spec import load_spec
    from eagle3_patch.states import NATIVE as NATIVE_STATE
    from eagle3_patch.states import UNPATCHED

    version = finding.pin.version
    if finding.verdict != UNKNOWN or version is None:
        return finding
    try:
        with tempfile.TemporaryDirectory(prefix="eagle3-patch-pins-") as site:
            extract_release(fetch_wheel(version), Path(site))
            report = classify_install(locate_root(Path(site), found_by="pins --fetch"), load_spec())
            if report.state == UNPATCHED:
                plan_apply(report, load_spec())  # transform and validate in memory; writes nothing
    except FetchError as exc:
        return replace(finding, advice=f"{exc}; pin a release from the verified table")
    except Eagle3PatchError as exc:
        return Finding(finding.pin, UNSUPPORTED, f"its code cannot be patched: {exc}", from_code=True)
    if report.state == UNPATCHED:
        advice = "classified from its code and dry-run patched (not in the verified table); run eagle3-patch apply"
        return Finding(finding.pin, PATCH, advice, from_code=True)
    if report.state == NATIVE_STATE:
        return Finding(finding.pin, NATIVE, "classified from its code: " + _ADVICE[NATIVE], from_code=True)
    return Finding(finding.pin, UNSUPPORTED, f"classified from its code: {report.reason}", from_code=True)


_ADVICE = {
    PATCH: "verified; run `eagle3-patch apply && eagle3-patch check` after installing it",
    NATIVE: "ships the EAGLE-3 hook itself; eagle3-patch changes nothing",
    UNSUPPORTED: "cannot serve EAGLE-3 on Qwen3.5; pin 0.5.11-0.5.21 (with eagle3-patch apply) or 0.5.22 or newer",
}


def _verified(version: str, table: tuple[VerifiedRelease, ...]) -> VerifiedRelease | None:
    """The row for ``version``; spelt as the table spells it, no version parsing is needed."""
    exact = next((r for r in table if r.version == version), None)
    if exact is not None:
        return exact
    wanted = _parsed_version(version)
    if wanted is None:
        return None
    return next((r for r in table if _parsed_version(r.version) == wanted), None)


class SglangRequirement(NamedTuple):
    """A PEP 508 requirement on sglang, reduced to what the hook judges (a tuple: cheap to define)."""

    #: The single release it allows, or None (a range, no version, a URL that is not a wheel).
    version: str | None


def parse_requirement(text: str) -> SglangRequirement | None:
    """``text`` read as a PEP 508 requirement; None unless it is a valid one naming sglang.

    The common shapes are read by one regular expression; the rest by
    packaging's parser, imported only then (tests hold the two to the same answers).
    """
    if PACKAGE not in text.lower():  # every spelling of the name contains it
        return None
    simple = _SIMPLE_REQUIREMENT.fullmatch(text)
    if simple is not None and _is_version(simple["version"]) and _is_plain_marker(simple["marker"]):
        if canonical_name(simple["name"]) != PACKAGE:
            return None
        return SglangRequirement(simple["version"])
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        requirement = Requirement(text)
    except InvalidRequirement:
        return None
    if canonical_name(requirement.name) != PACKAGE:
        return None
    for spec in requirement.specifier:
        if spec.operator in ("==", "===") and "*" not in spec.version:
            return SglangRequirement(spec.version)
    if requirement.url and requirement.url.endswith(".whl"):
        return SglangRequirement(_wheel_version(requirement.url))
    return SglangRequirement(None)


def _is_plain_marker(text: str | None) -> bool:
    """No marker, or comparisons joined by and/or (a split inside a quoted value fails, never passes)."""
    if text is None:
        return True
    return all(_MARKER_TEST.fullmatch(test) for test in _MARKER_JOIN.split(text.strip(" \t")))


def _is_version(text: str | None) -> bool:
    """A valid PEP 440 version (or none given); the usual normalized spellings need no parser."""
    return text is None or _PLAIN_VERSION.fullmatch(text) is not None or _parsed_version(text) is not None


def _parsed_version(text: str) -> Version | None:
    """``text`` as a PEP 440 version (packaging.version is imported on first need), or None."""
    from packaging.version import InvalidVersion, Version

    try:
        return Version(text)
    except InvalidVersion:
        return None


def canonical_name(name: str) -> str:
    """The PEP 503 normal form of a project name (``SGLang`` and ``sglang`` are one project)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _wheel_version(location: str) -> str | None:
    """The version in an sglang wheel's file name (``location``: the name, a path or a URL)."""
    file_name = location.rsplit("/", 1)[-1]
    if not file_name.lower().startswith(PACKAGE):
        return None
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename

    try:
        name, version, _, _ = parse_wheel_filename(file_name)
    except InvalidWheelFilename:
        return None
    return str(version) if name == PACKAGE else None


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


def _read(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as file:
        return file.read()


def _requirements_pins(path: str, *, seen: set[str]) -> Iterator[Pin]:
    real = os.path.realpath(path)
    if real in seen or not os.path.isfile(path):
        return
    seen.add(real)
    for number, line in _logical_lines(_read(path)):
        line = _COMMENT.sub("", line).strip()
        if not line:
            continue
        if line.startswith("-"):
            yield from _requirements_option(path, number, line, seen)
            continue
        text = re.split(r"\s+-", line, maxsplit=1)[0].strip()  # drop per-line options (--hash=...)
        requirement = parse_requirement(text)
        if requirement is not None:
            yield Pin(path, number, text, requirement.version, "requirements")
        elif text.endswith(".whl") and (version := _wheel_version(text)):
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
    text = _read(path)
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
    text = _read(path)
    lines = [(n, line) for n, line in _logical_lines(text) if not line.lstrip().startswith("#")]
    for number, line in lines:
        instruction, _, rest = line.strip().partition(" ")
        instruction = instruction.upper()
        if instruction in ("ARG", "ENV"):
            variables.update(_assignments(rest, number, env=instruction == "ENV"))
        elif instruction == "RUN":
            pins.extend(_run_pins(path, number, rest, variables))
    return pins


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
        import json

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
    """The requirement arguments of a ``pip install`` / ``uv pip install`` command."""
    for index, word in enumerate(words[1:], start=1):
        runner = words[index - 1]
        if word == "install" and (runner in ("pip", "pip3") or runner.endswith(("/pip", "/pip3"))):
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
    text = _read(path)
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
