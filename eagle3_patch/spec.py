"""Stage 2: load what to change (anchors/targets.toml) into frozen dataclasses.

Targets, anchors and templates are data, shipped in the wheel as
``eagle3_patch.anchors``, so a new SGLang layout is a data change reviewed as
such, not a code change. The verified-release table is in ``verified.py``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import cache

from eagle3_patch.anchors import data
from eagle3_patch.errors import SpecError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib


ROLES = ("decoder", "wrapper")


@dataclass(frozen=True)
class Template:
    """One method eagle3-patch inserts, as source text (LF newlines, 4-space indent)."""

    name: str
    version: int
    source: str

    @property
    def ident(self) -> str:
        return f"{self.name}-v{self.version}"


@dataclass(frozen=True)
class Anchor:
    """Where a method goes: after the last definition of ``method``, or at the class end."""

    method: str | None

    @classmethod
    def parse(cls, text: str) -> Anchor:
        if text == "end":
            return cls(method=None)
        kind, _, method = text.partition(":")
        if kind != "after" or not method.isidentifier():
            raise SpecError(f"bad anchor {text!r}: use 'after:METHOD' or 'end'")
        return cls(method=method)

    def __str__(self) -> str:
        return "end of class" if self.method is None else f"after {self.method}"


@dataclass(frozen=True)
class ClassSpec:
    name: str
    role: str
    template: str
    required: bool
    anchors: tuple[Anchor, ...]
    #: "file.py:Class" of the decoder a wrapper delegates to.
    decoder: str | None = None


@dataclass(frozen=True)
class FileSpec:
    name: str
    required: bool
    classes: tuple[ClassSpec, ...]


@dataclass(frozen=True)
class PatchSpec:
    hook: str
    capture_flag: str
    files: tuple[FileSpec, ...]
    reference_files: tuple[str, ...]
    templates: tuple[Template, ...]

    def template(self, name: str) -> Template:
        for template in self.templates:
            if template.name == name:
                return template
        raise SpecError(f"no template named {name!r}")


@cache
def load_spec() -> PatchSpec:
    """The targets and templates shipped with this version of eagle3-patch."""
    return spec_from_toml(_read_data("targets.toml"))


def spec_from_toml(text: str) -> PatchSpec:
    data = tomllib.loads(text)
    templates = tuple(
        Template(
            name=name,
            version=int(entry["version"]),
            source=entry["source"].strip("\n") + "\n",
        )
        for name, entry in data["templates"].items()
    )
    names = {t.name for t in templates}
    files = []
    for file_entry in data["files"]:
        classes = []
        for entry in file_entry["classes"]:
            if entry["role"] not in ROLES:
                raise SpecError(f"{entry['name']}: unknown role {entry['role']!r}")
            if entry["template"] not in names:
                raise SpecError(f"{entry['name']}: unknown template {entry['template']!r}")
            classes.append(
                ClassSpec(
                    name=entry["name"],
                    role=entry["role"],
                    template=entry["template"],
                    required=bool(entry.get("required", True)),
                    anchors=tuple(Anchor.parse(a) for a in entry["anchors"]),
                    decoder=entry.get("decoder"),
                )
            )
        files.append(
            FileSpec(
                name=file_entry["name"],
                required=bool(file_entry.get("required", False)),
                classes=tuple(classes),
            )
        )
    return PatchSpec(
        hook=data["hook"],
        capture_flag=data["capture_flag"],
        files=tuple(files),
        reference_files=tuple(data.get("reference_files", ())),
        templates=templates,
    )


def _read_data(name: str) -> str:
    return str(data(name).decode("utf-8"))
