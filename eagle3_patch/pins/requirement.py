"""Read a PEP 508 requirement on sglang, and the version it pins.

The common shapes (``name[extras]==version ; marker`` with a marker of
comparisons joined by and/or) are read by one regular expression; anything
else goes to packaging's parsers (``pep508``), imported only then: their import
is 77 ms, a third of the hook's start-up (tests hold the two readers to the
same answers).
"""

from __future__ import annotations

import re
from types import ModuleType
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from packaging.version import Version

PACKAGE = "sglang"
_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
#: No two ``[ \t]*`` stand side by side (the blanks after the extras belong to them): a run of blanks that
#: fails to match is then tried once, not once per way of sharing it out, so matching is linear in the text.
_SIMPLE_REQUIREMENT = re.compile(
    rf"[ \t]*(?P<name>{_NAME})[ \t]*"
    rf"(?:\[[ \t]*(?:{_NAME}[ \t]*(?:,[ \t]*{_NAME}[ \t]*)*)?\][ \t]*)?"
    r"(?:==[ \t]*(?P<version>[A-Za-z0-9.!+_-]+)[ \t]*)?(?:;(?P<marker>.*))?"
)
_MARKER_VALUE = (
    r"(?:python_(?:full_)?version|os[._]name|sys[._]platform|platform_(?:release|system)"
    r"|platform[._](?:version|machine|python_implementation)|python_implementation|implementation_(?:name|version)"
    r"|extras?|dependency_groups|'[^']*'|\"[^\"]*\")"
)
_MARKER_TEST = re.compile(rf"{_MARKER_VALUE}[ \t]*(?:===|==|~=|!=|<=|>=|<|>|not[ \t]+in\b|in\b)[ \t]*{_MARKER_VALUE}")
#: A split starts only at the first blank of a run (the lookbehind), so a long run is not tried from each blank.
_MARKER_JOIN = re.compile(r"(?<![ \t])[ \t]+(?:and|or)[ \t]+")
#: Normalized PEP 440 versions (each one valid); other spellings go to packaging.version.
_PLAIN_VERSION = re.compile(r"[0-9]+(?:\.[0-9]+)*(?:(?:a|b|rc)[0-9]+)?(?:\.post[0-9]+)?(?:\.dev[0-9]+)?")


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
    found = _pep508().exact_version(text, PACKAGE)
    return SglangRequirement(found[0]) if found is not None else None


def _is_plain_marker(text: str | None) -> bool:
    """No marker, or comparisons joined by and/or (a split inside a quoted value fails, never passes)."""
    if text is None:
        return True
    return all(_MARKER_TEST.fullmatch(test) for test in _MARKER_JOIN.split(text.strip(" \t")))


def _is_version(text: str | None) -> bool:
    """A valid PEP 440 version (or none given); the usual normalized spellings need no parser."""
    return text is None or _PLAIN_VERSION.fullmatch(text) is not None or parsed_version(text) is not None


def parsed_version(text: str) -> Version | None:
    """``text`` as a PEP 440 version, or None."""
    version: Version | None = _pep508().parsed_version(text)
    return version


#: Patterns used only on rare text are strings, compiled (and cached by ``re``) on first use: start-up counts.
#: A release tag of sglang's repository: ``v0.5.8``, ``v0.4.6.post5`` (``tags/`` and ``refs/tags/`` allowed);
#: its tags all start with ``v``, so ``0.4.9.post6`` names no release (a checkout of it fails or falls back).
_RELEASE_TAG = r"(?:refs/)?(?:tags/)?v(\d+\.\d+\.\d+(?:\.post\d+)?)"


class GitReference(NamedTuple):
    """A git URL of sglang's repository: the ref it names ("" for none) and the release a tag pins."""

    ref: str
    version: str | None

    @property
    def note(self) -> str:
        """What the finding says about where its version comes from (or why there is none)."""
        if self.version is not None:
            return "the git tag of sglang's repository"
        return f"sglang's repository at {moving_ref(self.ref)}; {NAME_A_TAG}"


def git_reference(text: str) -> GitReference | None:
    """The ref of the sglang repository URL in ``text``; None when it holds no such URL.

    A git URL of an sglang repository (sgl-project's or a fork), a name before it or not:
    ``git+https://github.com/sgl-project/sglang.git@v0.5.6.post2#subdirectory=python``. In a word
    (no whitespace), from its first ``git+``, the first path part ``/sglang`` (``.git`` and ``/`` may
    follow, any case) that ends the word or is followed by ``@ref``, ``#`` or ``&``. Plain string
    scanning, each character looked at a bounded number of times: a pattern searched from every
    ``git+`` took time quadratic in the length of a line of them.
    """
    lowered = text.translate(_ASCII_LOWER)  # str.lower() may change the length (U+0130), so offsets would not map
    start = lowered.find("git+")
    blank_after = re.compile(_BLANK).search  # compiled on first use, then cached by re
    while start >= 0:
        blank = blank_after(text, start)
        end = blank.start() if blank is not None else len(text)
        part = lowered.find("/sglang", start + len("git+"), end)
        while part >= 0:
            ref = _ref_after_repository(text, lowered, part + len("/sglang"), end)
            if ref is not None:
                return reference_of(ref)
            part = lowered.find("/sglang", part + 1, end)
        start = lowered.find("git+", end)  # a later git+ in the same word finds nothing the first did not
    return None


_ASCII_LOWER = {upper: upper + 32 for upper in range(ord("A"), ord("Z") + 1)}
_BLANK = r"\s"


def _ref_after_repository(text: str, lowered: str, after: int, end: int) -> str | None:
    """After ``/sglang`` at ``text[after]``, inside a word ending at ``end``: the ref ("" for none), or None.

    ``.git`` and then ``/`` are taken when there, else left; then ``@ref`` (up to ``#``, ``&`` or the
    word's end), or nothing before ``#``, ``&`` or the word's end; anything else is no repository URL.
    """
    for suffix in ((after + len(".git"),) if lowered.startswith(".git", after) else ()) + (after,):
        for at in ((suffix + 1,) if text.startswith("/", suffix) else ()) + (suffix,):
            if text.startswith("@", at) and at + 1 < end and text[at + 1] not in "#&":
                stops = [found for found in (text.find("#", at, end), text.find("&", at, end)) if found >= 0]
                return text[at + 1 : min(stops, default=end)]
            if at == end or text[at] in "#&":
                return ""
    return None


def reference_of(ref: str) -> GitReference:
    """``ref`` of sglang's repository, with the release it names (a release tag) or None."""
    return GitReference(ref, release_of_ref(ref))


def git_table_reference(table: object) -> tuple[str, GitReference] | None:
    """A TOML table naming sglang's repository (a uv source, a Poetry dependency): ``url@ref`` and its reference.

    ``{ git = "https://github.com/sgl-project/sglang", tag = "v0.5.21" }``; ``rev`` or ``branch`` in place of ``tag``.
    """
    if not (isinstance(table, dict) and isinstance(table.get("git"), str) and is_sglang_repository(table["git"])):
        return None
    ref = str(table.get("tag") or table.get("rev") or table.get("branch") or "")
    return at_ref(table["git"], ref), reference_of(ref)


def at_ref(url: str, ref: str) -> str:
    """How a finding shows a repository at a ref: ``url@ref``, or the URL alone for no ref."""
    return f"{url}@{ref}" if ref else url


#: A clone URL of an sglang repository (sgl-project's or a fork): its last path part is sglang.
_SGLANG_REPOSITORY = r"(?i)(?:^|[/:])sglang(?:\.git)?/?$"


def is_sglang_repository(url: str) -> bool:
    """Is ``url`` (``https://github.com/sgl-project/sglang.git``, ``git@github.com:me/sglang``) an sglang repository?"""
    return re.search(_SGLANG_REPOSITORY, url) is not None


def release_of_ref(ref: str) -> str | None:
    """The release a git ref of sglang's repository names: a release tag gives one; a branch or commit none."""
    tag = re.fullmatch(_RELEASE_TAG, ref)
    return tag.group(1) if tag is not None else None


def moving_ref(ref: str) -> str:
    """What a git ref that is not a release tag names: a branch, a commit, or the default branch."""
    if not ref:
        return "the default branch"
    if re.fullmatch(r"\d+\.\d+\.\d+(?:\.post\d+)?", ref):
        return f"ref {ref}, which is no release tag (sglang's are v{ref})"
    if re.fullmatch(r"[0-9a-f]{7,40}", ref):
        return f"commit {ref}"
    return f"branch {ref}"


#: What to do about a git ref that names no release.
NAME_A_TAG = "name a release tag (vX.Y.Z) the hook can judge"


def canonical_name(name: str) -> str:
    """The PEP 503 normal form of a project name (``SGLang`` and ``sglang`` are one project)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def wheel_version(location: str) -> str | None:
    """The version in an sglang wheel's file name (``location``: the name, a path or a URL)."""
    file_name = location.rsplit("/", 1)[-1]
    if not file_name.lower().startswith(PACKAGE):
        return None
    version: str | None = _pep508().wheel_version(file_name, PACKAGE)
    return version


def _pep508() -> ModuleType:
    from eagle3_patch.pins import pep508  # packaging: see the module docstring

    return pep508
