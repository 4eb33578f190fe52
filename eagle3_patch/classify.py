"""Stage 3: say what each target class looks like, from its code, never its version.

Reads the installed files with ``ast`` (cheap, no libcst) and our ledger, and
decides, once, everything later stages act on: per class unpatched, patched,
patched-old, native, drifted, absent or unsupported; per file its bytes and,
when it carries our blocks, its original bytes and who vouches for them; then
one verdict for the whole install. A release newer than any we know is judged
by the same structural rules. Decoders are decided before the wrappers that
inherit through them, whatever order anchors/targets.toml lists them in.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, replace
from pathlib import Path

from eagle3_patch.errors import AccessError
from eagle3_patch.ledger import KEPT_SUFFIX, LEDGER_NAME, Ledger, LedgerEntry, backup_path_for, read_ledger, sha256_hex
from eagle3_patch.locate import Install
from eagle3_patch.marker import MARKER, Marker, choose_anchor, marker_of, parse_marker
from eagle3_patch.provenance import (
    BACKUP,
    BLOCKS_REMOVED,
    Original,
    find_original,
    found_nowhere_else,
    our_patch_of,
    reinstalled_hashes,
    without_our_blocks,
)
from eagle3_patch.reading import NotRegularFileError, read_backup, read_bytes_or_none
from eagle3_patch.source import (
    PARSE_ERRORS,
    SourceIndex,
    body_names,
    delegates,
    encoding_problem,
    last_method,
    mentions,
    parse_problem,
    source_lines,
)
from eagle3_patch.spec import ClassSpec, FileSpec, PatchSpec
from eagle3_patch.states import ABSENT, DRIFTED, NATIVE, PATCHED, PATCHED_OLD, UNPATCHED, UNSUPPORTED

_HOOKED = (NATIVE, PATCHED, PATCHED_OLD)


@dataclass(frozen=True)
class ClassReport:
    name: str
    role: str
    state: str
    detail: str
    #: The marker of our block in this class, when there is one.
    marker: Marker | None = None


@dataclass(frozen=True)
class FileReport:
    spec: FileSpec
    path: Path
    state: str
    classes: tuple[ClassReport, ...]
    #: The bytes read (None when the file is absent); later stages work on these.
    content: bytes | None
    detail: str = ""
    #: The file's original bytes, when it carries our blocks and something vouches for them.
    original: Original | None = None
    #: The ``ast`` of ``content`` when classifying parsed it (validation reuses it).
    tree: ast.Module | None = None
    #: Our backup lies beside a file that carries nothing of ours (a reinstall or an
    #: upgrade): no longer needed, so apply and revert remove it, or keep it as
    #: ``*.eagle3-kept`` when ``backup_unique``.
    stale_backup: bool = False
    #: The backup's bytes are nowhere else (not the file, not a release file pip or
    #: the verified table knows): it is never deleted, only kept under another name.
    backup_unique: bool = False

    @property
    def sha256(self) -> str | None:
        return sha256_hex(self.content) if self.content is not None else None

    @property
    def backup_path(self) -> Path:
        return backup_path_for(self.path)

    @property
    def carries_ours(self) -> bool:
        return any(c.marker is not None for c in self.classes)


@dataclass(frozen=True)
class InstallReport:
    install: Install
    state: str
    files: tuple[FileReport, ...]
    #: Why the install is unsupported or drifted; empty otherwise.
    reason: str
    ledger: Ledger | None
    #: Side remarks for the user (an unreadable ledger, a stale backup); never change the state.
    notes: tuple[str, ...] = ()

    @property
    def ledger_path(self) -> Path:
        return self.install.models_dir / LEDGER_NAME


@dataclass(frozen=True)
class _Look:
    """What classifying a file needs besides the file: the ledger, base classes, earlier parses."""

    install: Install
    spec: PatchSpec
    ledger: Ledger | None
    index: SourceIndex
    #: File name -> (bytes, ast) from an earlier report of this install.
    earlier: dict[str, tuple[bytes | None, ast.Module]]

    def entry(self, file_name: str) -> LedgerEntry | None:
        return self.ledger.get(file_name) if self.ledger else None


def classify_install(install: Install, spec: PatchSpec, *, earlier: InstallReport | None = None) -> InstallReport:
    """Read the install's target files and say, per class and overall, what state they are in.

    ``earlier``: a report of this install from moments ago; a file whose bytes
    are still the same is not parsed again (its ``ast`` depends on nothing
    else), so deciding once more under the lock costs little.
    """
    ledger, ledger_problem = read_ledger(install.models_dir / LEDGER_NAME)
    look = _Look(
        install,
        spec,
        ledger,
        SourceIndex.for_spec(install.models_dir, spec),
        {f.spec.name: (f.content, f.tree) for f in earlier.files if f.tree is not None} if earlier else {},
    )
    decided: dict[str, str] = {}  # "file.py:Class" -> state, filled decoders first
    by_name = {f.name: _classify_file(look, f, decided) for f in sorted(spec.files, key=_wrappers_last)}
    files = tuple(by_name[file_spec.name] for file_spec in spec.files)
    state, reason = _install_state(files)
    files = tuple(_with_stale_backup(look, f) if _is_stale_backup(f) else f for f in files)
    notes = tuple(n for n in (ledger_problem, *(_stale_note(f) for f in files)) if n)
    return InstallReport(install, state, files, reason, ledger, notes)


def _classify_file(look: _Look, file_spec: FileSpec, decided: dict[str, str]) -> FileReport:
    path = look.install.models_dir / file_spec.name
    try:
        content = read_bytes_or_none(path)
    except (IsADirectoryError, NotADirectoryError, NotRegularFileError) as exc:
        what = exc.kind if isinstance(exc, NotRegularFileError) else "a folder"
        detail = f"is {what}, not a model file: unknown layout; reinstall sglang"
        classes = tuple(ClassReport(c.name, c.role, UNSUPPORTED, detail) for c in file_spec.classes)
        return FileReport(file_spec, path, UNSUPPORTED, classes, None, detail)
    except OSError as exc:
        raise AccessError(
            f"cannot read ({exc.strerror}); nothing was changed. Run as the install's owner, or fix its permissions",
            path=path,
        ) from exc
    if content is None:
        classes = tuple(ClassReport(c.name, c.role, ABSENT, "file absent") for c in file_spec.classes)
        if file_spec.required:
            detail = (
                "no Qwen3.5 model file: this SGLang predates Qwen3.5 (added in 0.5.9; "
                "EAGLE-3 capture needs 0.5.11 or newer)"
            )
            return FileReport(file_spec, path, UNSUPPORTED, classes, None, detail)
        return FileReport(file_spec, path, ABSENT, classes, None, "file absent in this release")
    recorded = _as_recorded(look, file_spec, path, content)
    if recorded is not None:
        decided.update({f"{file_spec.name}:{c.name}": c.state for c in recorded.classes})
        return recorded
    report = _classify_content(look, file_spec, path, content, decided)
    original = _edited_original(look, file_spec, path, content)
    return _edited(report, original) if original is not None else report


def _classify_content(
    look: _Look, file_spec: FileSpec, path: Path, content: bytes, decided: dict[str, str]
) -> FileReport:
    problem = encoding_problem(content)
    if problem:
        classes = tuple(ClassReport(c.name, c.role, UNSUPPORTED, problem) for c in file_spec.classes)
        return FileReport(file_spec, path, UNSUPPORTED, classes, content, problem)
    earlier = look.earlier.get(file_spec.name)
    try:
        tree = earlier[1] if earlier and earlier[0] == content else ast.parse(content, filename=str(path))
    except PARSE_ERRORS as exc:
        classes = tuple(ClassReport(c.name, c.role, UNSUPPORTED, "file does not parse") for c in file_spec.classes)
        return FileReport(file_spec, path, UNSUPPORTED, classes, content, f"does not parse: {parse_problem(exc)}")
    lines = source_lines(content)
    look.index.add(file_spec.name, tree)
    reports: dict[str, ClassReport] = {}
    for class_spec in sorted(file_spec.classes, key=_role_rank):
        decoder_state = decided.get(class_spec.decoder or "", "")
        reports[class_spec.name] = _class_state(look, class_spec, file_spec.name, lines, decoder_state)
        decided[f"{file_spec.name}:{class_spec.name}"] = reports[class_spec.name].state
    classes = tuple(reports[c.name] for c in file_spec.classes)  # reported in the data's order
    return replace(_check_record(look, file_spec, path, content, classes), tree=tree)


def _edited_original(look: _Look, file_spec: FileSpec, path: Path, content: bytes) -> Original | None:
    """The backup the ledger recorded, beside a file that is neither what we wrote, nor it, nor a release file.

    Such a file was edited after apply (our marker lines deleted, our methods
    commented out, a half-saved edit that no longer parses): whatever its blocks
    look like now, the backup is still the only copy of the original, so the file
    is drifted, and only ``revert --force`` (which keeps the edit) may restore it.
    """
    entry = look.entry(file_spec.name)
    if entry is None:
        return None
    backup = read_backup(backup_path_for(path))
    if backup is None or sha256_hex(backup) != entry.pristine_sha256:
        return None
    digest = sha256_hex(content)
    if digest in (entry.patched_sha256, entry.pristine_sha256) or digest in reinstalled_hashes(
        look.install, file_spec.name
    ):
        return None  # ours as written (another template set), the original, or a reinstall
    return Original(backup, BACKUP, "ledger")


def _edited(report: FileReport, original: Original) -> FileReport:
    why = f"changed since eagle3-patch wrote it (the original is in {report.backup_path.name})"
    classes = tuple(replace(c, state=DRIFTED, detail=why) for c in report.classes)
    return replace(report, state=DRIFTED, classes=classes, detail=why, original=original)


def _as_recorded(look: _Look, file_spec: FileSpec, path: Path, content: bytes) -> FileReport | None:
    """The ledger's record of a file whose bytes are still exactly what we wrote: no parsing needed."""
    entry = look.entry(file_spec.name)
    if entry is None or sha256_hex(content) != entry.patched_sha256:
        return None
    recorded = dict(entry.classes)
    if set(recorded) != {c.name for c in file_spec.classes}:
        return None
    classes = []
    for class_spec in file_spec.classes:
        value = recorded[class_spec.name]
        marker = parse_marker(f"{MARKER} {value}") if value not in (NATIVE, ABSENT) else None
        if marker is None:
            state, detail = value, f"{value} when eagle3-patch last wrote this file"
        elif value == look.spec.template(class_spec.template).ident:
            state, detail = PATCHED, f"eagle3-patch {value}"
        else:
            state, detail = PATCHED_OLD, f"older block ({value}); apply updates it"
        classes.append(ClassReport(class_spec.name, class_spec.role, state, detail, marker))
    original = find_original(look.install, file_spec, content, entry, look.spec)
    return FileReport(file_spec, path, _file_state(tuple(classes)), tuple(classes), content, original=original)


def _class_state(
    look: _Look, class_spec: ClassSpec, file_name: str, lines: list[str], decoder_state: str
) -> ClassReport:
    """The structural rules for one class (``decoder_state``: the state of the decoder it delegates to)."""
    hook_name, flag = look.spec.hook, look.spec.capture_flag
    name, role = class_spec.name, class_spec.role
    node = look.index.classes(file_name).get(name)
    if node is None:
        if class_spec.required:
            return ClassReport(name, role, UNSUPPORTED, "class not found: unknown layout")
        return ClassReport(name, role, ABSENT, "class not in this release")
    if role == "decoder":
        forward = last_method(node, "forward")
        if forward is None or not mentions(forward, flag):
            return ClassReport(
                name,
                role,
                UNSUPPORTED,
                f"forward() has no per-layer {flag} capture to hook into "
                "(SGLang 0.5.9-0.5.10.post1); use sglang 0.5.11 or newer",
            )
    hook = last_method(node, hook_name)
    if hook is not None:
        marker = marker_of(hook, lines)
        if marker is not None:
            if marker.ident == look.spec.template(class_spec.template).ident:
                return ClassReport(name, role, PATCHED, f"eagle3-patch {marker.ident}", marker)
            return ClassReport(name, role, PATCHED_OLD, f"older block ({marker.ident}); apply updates it", marker)
        if role == "decoder" and mentions(hook, flag):
            return ClassReport(name, role, NATIVE, f"upstream {hook_name} sets {flag}")
        if role == "wrapper" and delegates(hook, hook_name):
            return ClassReport(name, role, NATIVE, f"upstream {hook_name} delegates to self.model")
        return ClassReport(
            name,
            role,
            UNSUPPORTED,
            f"defines its own {hook_name} that does not "
            + (f"set {flag}" if role == "decoder" else "delegate to self.model")
            + "; refusing to add a second one (unknown layout)",
        )
    # An inherited hook can only work if the decoder has one; otherwise the base
    # classes (another file) need not even be parsed: `verify` names them.
    hooked = role == "wrapper" and decoder_state in _HOOKED
    inherited = look.index.find_method(file_name, name, hook_name) if hooked else None
    if inherited is not None and delegates(inherited.node, hook_name):
        return ClassReport(name, role, NATIVE, f"inherits {inherited.owner}.{hook_name}, which delegates")
    if choose_anchor(class_spec.anchors, body_names(node)) is None:
        anchors = ", ".join(str(a) for a in class_spec.anchors)
        return ClassReport(name, role, UNSUPPORTED, f"no anchor found ({anchors}): unknown layout")
    if inherited is not None:
        return ClassReport(name, role, UNPATCHED, f"inherited {inherited.owner}.{hook_name} never flags layers")
    return ClassReport(name, role, UNPATCHED, f"no working {hook_name} of its own")


def _check_record(
    look: _Look, file_spec: FileSpec, path: Path, content: bytes, classes: tuple[ClassReport, ...]
) -> FileReport:
    """A file carrying our blocks: find its original, and compare with what the ledger says we wrote."""
    marked = [c for c in classes if c.marker is not None]
    if not marked or any(c.state == UNSUPPORTED for c in classes):
        return FileReport(file_spec, path, _file_state(classes), classes, content)
    entry = look.entry(file_spec.name)
    original = find_original(look.install, file_spec, content, entry, look.spec)
    if entry is not None and sha256_hex(content) == entry.patched_sha256:
        return FileReport(file_spec, path, _file_state(classes), classes, content, original=original)
    if entry is not None:
        why = "changed since eagle3-patch wrote it"
    elif original is None:
        why = f"carries {MARKER} blocks but nothing vouches for its original bytes"
    # An original found by removing our blocks is that very result: no second libcst pass.
    elif original.source != BLOCKS_REMOVED and without_our_blocks(content, look.spec.hook) != original.content:
        why = f"changed outside its {MARKER} blocks"
    else:
        why = ""
    if why:
        drifted = tuple(replace(c, state=DRIFTED, detail=why) if c.marker is not None else c for c in classes)
        return FileReport(file_spec, path, DRIFTED, drifted, content, why, original)
    assert original is not None
    # No ledger (patched by an older tool, or the ledger was lost): our blocks
    # sit on vouched-for original bytes. Current blocks that re-render exactly
    # stay "patched"; anything else is refreshed by apply.
    if (
        all(c.state == PATCHED for c in marked)
        and our_patch_of(original.content, file_spec.classes, look.spec) == content
    ):
        return FileReport(file_spec, path, PATCHED, classes, content, "no ledger entry", original)
    why = "block not from this eagle3-patch; apply refreshes it"
    old = tuple(replace(c, state=PATCHED_OLD, detail=why) if c.marker is not None else c for c in classes)
    return FileReport(file_spec, path, _file_state(old), old, content, "no ledger entry", original)


def _install_state(files: tuple[FileReport, ...]) -> tuple[str, str]:
    for file in files:
        if file.state == UNSUPPORTED:
            # A file-level problem (absent, encoding, parse) is said once; else each class's.
            reasons = [f"{c.name}: {c.detail}" for c in file.classes if c.state == UNSUPPORTED]
            return UNSUPPORTED, f"{file.path}: " + (file.detail or "; ".join(reasons))
    for file in files:
        if file.state == DRIFTED:
            return DRIFTED, f"{file.path}: {file.detail}"
    states = {f.state for f in files}
    if states & {UNPATCHED, PATCHED_OLD}:
        return UNPATCHED, ""
    if PATCHED in states:
        return PATCHED, ""
    return NATIVE, ""


def _file_state(classes: tuple[ClassReport, ...]) -> str:
    states = {c.state for c in classes}
    for state in (UNSUPPORTED, DRIFTED, UNPATCHED, PATCHED_OLD):
        if state in states:
            return state
    if states == {ABSENT}:
        return ABSENT
    return PATCHED if PATCHED in states else NATIVE


def _is_stale_backup(file: FileReport) -> bool:
    """Ours (our name, a regular file beside the target) and unneeded (the file carries none of our blocks)."""
    backup = file.backup_path
    return (
        file.state in (UNPATCHED, NATIVE)
        and not file.carries_ours
        and backup.parent == file.path.parent
        and backup.is_file()
        and not backup.is_symlink()
    )


def _with_stale_backup(look: _Look, file: FileReport) -> FileReport:
    """Mark the stale backup, and whether its bytes exist anywhere else (else it is kept, never deleted)."""
    backup = read_backup(file.backup_path)
    unique = backup is not None and found_nowhere_else(look.install, file.spec.name, backup, file.content)
    return replace(file, stale_backup=True, backup_unique=unique)


def _stale_note(file: FileReport) -> str:
    if not file.stale_backup:
        return ""
    if file.backup_unique:
        return (
            f"{file.backup_path}: backup from before the file was reinstalled, upgraded or replaced, holding bytes "
            f"found nowhere else; the next apply or revert keeps it as {file.path.name}{KEPT_SUFFIX}"
        )
    return (
        f"{file.backup_path}: stale backup from an earlier install (the file was reinstalled or upgraded); "
        "ignored, and removed by the next apply or revert"
    )


def _role_rank(class_spec: ClassSpec) -> int:
    return 0 if class_spec.role == "decoder" else 1


def _wrappers_last(file_spec: FileSpec) -> int:
    return min((_role_rank(c) for c in file_spec.classes), default=1)
