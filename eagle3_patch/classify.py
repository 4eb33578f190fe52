"""Stage 3: say what each target class looks like, from its code, never its version.

Reads the installed files with ``ast`` (cheap, no libcst) and our ledger, and
reports per class: unpatched, patched, patched-old, native, drifted, absent or
unsupported; then one verdict for the whole install. A release newer than any we
know is judged by the same structural rules.
"""

from __future__ import annotations

import ast
import dataclasses
import io
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path

from eagle3_patch.ledger import (
    LEDGER_NAME,
    Ledger,
    LedgerEntry,
    LedgerError,
    backup_path_for,
    parse_ledger,
    sha256_hex,
)
from eagle3_patch.locate import Install
from eagle3_patch.spec import (
    MARKER_TAG,
    ClassSpec,
    FileSpec,
    Marker,
    PatchSpec,
    parse_marker,
)
from eagle3_patch.states import ABSENT, DRIFTED, NATIVE, PATCHED, PATCHED_OLD, UNPATCHED, UNSUPPORTED
from eagle3_patch.verified import load_verified

_HOOKED = (NATIVE, PATCHED, PATCHED_OLD)
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class ClassReport:
    name: str
    role: str
    state: str
    detail: str
    #: The [EAGLE3-PATCH] marker above our method, when there is one.
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
    #: The file's original bytes, when it carries our blocks and a witness vouches for them.
    pristine: bytes | None = None
    #: The ``ast`` of ``content`` when classifying parsed it (validation reuses it).
    tree: ast.Module | None = None

    @property
    def sha256(self) -> str | None:
        return sha256_hex(self.content) if self.content is not None else None

    @property
    def backup_path(self) -> Path:
        return backup_path_for(self.path)


@dataclass(frozen=True)
class InstallReport:
    install: Install
    state: str
    files: tuple[FileReport, ...]
    #: Why the install is unsupported or drifted; empty otherwise.
    reason: str
    ledger: Ledger | None
    #: Why an existing ledger was ignored (unreadable); empty when fine or absent.
    ledger_problem: str = ""

    @property
    def ledger_path(self) -> Path:
        return self.install.models_dir / LEDGER_NAME


def classify_install(install: Install, spec: PatchSpec, *, reuse: InstallReport | None = None) -> InstallReport:
    """Read the install's target files and say, per class and overall, what state they are in.

    ``reuse``: an earlier report of this install; a file whose bytes are still the
    same is not parsed again (its ``ast`` depends on nothing else), so deciding
    once more under the lock costs little.
    """
    ledger, ledger_problem = _read_ledger(install.models_dir / LEDGER_NAME)
    context = _Context(install, spec, ledger)
    if reuse is not None:
        context.trees = {f.spec.name: (f.content, f.tree) for f in reuse.files if f.tree is not None}
    # Wrappers that inherit their hook are judged by their decoder's state: decide
    # decoders first, whatever order the data lists them in; report in the data's order.
    decided = {f.name: context.classify_file(f) for f in sorted(spec.files, key=_wrappers_last)}
    files = tuple(decided[file_spec.name] for file_spec in spec.files)
    state, reason = _install_state(files)
    return InstallReport(
        install=install,
        state=state,
        files=files,
        reason=reason,
        ledger=ledger,
        ledger_problem=ledger_problem,
    )


def record_sha256(install: Install, file_name: str) -> str | None:
    """The sha256 pip recorded for ``srt/models/<file_name>``: a witness of the original."""
    if install.dist_info is None:
        return None
    try:
        relative = install.models_dir.relative_to(install.package_dir.parent).as_posix()
        record = (install.dist_info / "RECORD").read_text(encoding="utf-8", errors="replace")
    except (OSError, ValueError):
        return None
    import base64

    prefix = f"{relative}/{file_name},sha256="
    for line in record.splitlines():
        if line.startswith(prefix):
            digest = line[len(prefix) :].split(",", 1)[0]
            try:
                return base64.urlsafe_b64decode(digest + "=" * (-len(digest) % 4)).hex()
            except ValueError:
                return None
    return None


def resolve_pristine(
    install: Install, file_spec: FileSpec, content: bytes, entry: LedgerEntry | None, hook: str
) -> bytes | None:
    """The original bytes of a file carrying our blocks, or None when nothing vouches for them.

    Candidates are our backup and the file with our blocks removed; a candidate is
    accepted when its sha256 matches a witness: the ledger's record, else pip's
    RECORD or a verified release; without either, the two candidates agreeing.
    The backup is tried first, so libcst is imported only when it does not match.
    """
    backup = _read_or_none(backup_path_for(install.models_dir / file_spec.name))
    if entry is not None:
        witnesses = {entry.pristine_sha256}
    else:
        witnesses = {
            f.pristine_sha256 for release in load_verified() for f in release.files if f.name == file_spec.name
        }
        recorded = record_sha256(install, file_spec.name)
        if recorded:
            witnesses.add(recorded)
    if backup is not None and sha256_hex(backup) in witnesses:
        return backup
    from eagle3_patch.transform import strip_source  # libcst only on this path

    try:
        stripped = strip_source(content, hook=hook)
    except Exception:  # noqa: BLE001 - libcst cannot parse it: no candidate from stripping
        return None
    if sha256_hex(stripped) in witnesses or (entry is None and stripped == backup):
        return stripped
    return None


@dataclass(frozen=True)
class MethodRef:
    """Where a method a class has (its own or inherited) is defined."""

    file: str
    owner: str
    node: ast.FunctionDef


class SourceIndex:
    """The top-level classes of an install's model files, each parsed once, to follow inheritance.

    A base class is looked up in the subclass's own file first, then in the
    other files in ``search_order`` (the spec's reference files and targets).
    """

    def __init__(self, models_dir: Path, search_order: tuple[str, ...]) -> None:
        self._models_dir = models_dir
        self._order = search_order
        self._parsed: dict[str, dict[str, ast.ClassDef]] = {}

    @classmethod
    def for_spec(cls, models_dir: Path, spec: PatchSpec) -> SourceIndex:
        return cls(models_dir, (*spec.reference_files, *(f.name for f in spec.files)))

    def add(self, file_name: str, tree: ast.Module) -> None:
        self._parsed[file_name] = top_level_classes(tree)

    def classes(self, file_name: str) -> dict[str, ast.ClassDef]:
        if file_name not in self._parsed:
            content = _read_or_none(self._models_dir / file_name)
            try:
                self._parsed[file_name] = top_level_classes(ast.parse(content)) if content is not None else {}
            except (SyntaxError, ValueError):
                self._parsed[file_name] = {}
        return self._parsed[file_name]

    def find_method(self, file_name: str, class_name: str, method: str) -> MethodRef | None:
        """``class_name.method`` as Python would resolve it (first base first), or None."""
        node = self.classes(file_name).get(class_name)
        return self._find(file_name, node, method, depth=0) if node is not None else None

    def _find(self, file_name: str, node: ast.ClassDef, method: str, depth: int) -> MethodRef | None:
        own = last_method(node, method)
        if own is not None:
            return MethodRef(file_name, node.name, own)
        if depth > 8:
            return None
        for base in node.bases:
            base_name = base.id if isinstance(base, ast.Name) else getattr(base, "attr", None)
            for candidate in dict.fromkeys((file_name, *self._order)):
                base_node = self.classes(candidate).get(base_name or "")
                if base_node is not None and base_node is not node:
                    found = self._find(candidate, base_node, method, depth + 1)
                    if found is not None:
                        return found
                    break
        return None


def _role_rank(class_spec: ClassSpec) -> int:
    return 0 if class_spec.role == "decoder" else 1


def _wrappers_last(file_spec: FileSpec) -> int:
    return min((_role_rank(c) for c in file_spec.classes), default=1)


class _Context:
    """What classifying one file needs from the others (decoder states, base classes)."""

    def __init__(self, install: Install, spec: PatchSpec, ledger: Ledger | None) -> None:
        self.install = install
        self.spec = spec
        self.ledger = ledger
        self.class_states: dict[str, str] = {}
        self.index = SourceIndex.for_spec(install.models_dir, spec)
        self.trees: dict[str, tuple[bytes | None, ast.Module]] = {}

    def classify_file(self, file_spec: FileSpec) -> FileReport:
        path = self.install.models_dir / file_spec.name
        content = _read_or_none(path)
        if content is None:
            classes = tuple(ClassReport(c.name, c.role, ABSENT, "file absent") for c in file_spec.classes)
            if file_spec.required:
                detail = (
                    "no Qwen3.5 model file: this SGLang predates Qwen3.5 (added in 0.5.9; "
                    "EAGLE-3 capture needs 0.5.11 or newer)"
                )
                return FileReport(file_spec, path, UNSUPPORTED, classes, None, detail)
            return FileReport(file_spec, path, ABSENT, classes, None, "file absent in this release")
        recorded = self._as_recorded(file_spec, path, content)
        if recorded is not None:
            return recorded
        problem = _encoding_problem(content)
        if problem:
            classes = tuple(ClassReport(c.name, c.role, UNSUPPORTED, problem) for c in file_spec.classes)
            return FileReport(file_spec, path, UNSUPPORTED, classes, content, problem)
        earlier = self.trees.get(file_spec.name)
        try:
            tree = earlier[1] if earlier and earlier[0] == content else ast.parse(content, filename=str(path))
        except (SyntaxError, ValueError) as exc:
            classes = tuple(ClassReport(c.name, c.role, UNSUPPORTED, "file does not parse") for c in file_spec.classes)
            return FileReport(file_spec, path, UNSUPPORTED, classes, content, f"does not parse: {exc}")
        lines = source_lines(content)
        self.index.add(file_spec.name, tree)
        top = self.index.classes(file_spec.name)
        decided = {
            c.name: self._classify_class(c, file_spec, top, lines) for c in sorted(file_spec.classes, key=_role_rank)
        }
        classes = tuple(decided[c.name] for c in file_spec.classes)
        return dataclasses.replace(self._check_record(file_spec, path, content, classes), tree=tree)

    def _as_recorded(self, file_spec: FileSpec, path: Path, content: bytes) -> FileReport | None:
        """The ledger's record of a file whose bytes are still exactly what we wrote: no parsing needed."""
        entry = self.ledger.get(file_spec.name) if self.ledger else None
        if entry is None or sha256_hex(content) != entry.patched_sha256:
            return None
        recorded = dict(entry.classes)
        if set(recorded) != {c.name for c in file_spec.classes}:
            return None
        classes = []
        for class_spec in file_spec.classes:
            value = recorded[class_spec.name]
            marker = parse_marker(f"[EAGLE3-PATCH {value}]") if value not in (NATIVE, ABSENT) else None
            if marker is None:
                state, detail = value, f"{value} when eagle3-patch last wrote this file"
            elif value == self.spec.template(class_spec.template).ident:
                state, detail = PATCHED, f"eagle3-patch {value}"
            else:
                state, detail = PATCHED_OLD, f"older block ({value}); apply updates it"
            self.class_states[f"{file_spec.name}:{class_spec.name}"] = state
            classes.append(ClassReport(class_spec.name, class_spec.role, state, detail, marker))
        return FileReport(file_spec, path, _file_state(tuple(classes)), tuple(classes), content)

    def _classify_class(
        self, class_spec: ClassSpec, file_spec: FileSpec, top: dict[str, ast.ClassDef], lines: list[str]
    ) -> ClassReport:
        report = self._structural_state(class_spec, file_spec.name, top, lines)
        self.class_states[f"{file_spec.name}:{class_spec.name}"] = report.state
        return report

    def _structural_state(
        self, class_spec: ClassSpec, file_name: str, top: dict[str, ast.ClassDef], lines: list[str]
    ) -> ClassReport:
        hook_name = self.spec.hook
        flag = self.spec.capture_flag
        name, role = class_spec.name, class_spec.role
        node = top.get(name)
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
                current = self.spec.template(class_spec.template).ident
                ident = f"{marker.template}-v{marker.version}"
                if ident == current:
                    return ClassReport(name, role, PATCHED, f"eagle3-patch {ident}", marker)
                return ClassReport(name, role, PATCHED_OLD, f"older block ({ident}); apply updates it", marker)
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
        decoder_hooked = self.class_states.get(class_spec.decoder or "") in _HOOKED
        inherited = self.index.find_method(file_name, name, hook_name) if role == "wrapper" and decoder_hooked else None
        if inherited is not None and delegates(inherited.node, hook_name):
            return ClassReport(name, role, NATIVE, f"inherits {inherited.owner}.{hook_name}, which delegates")
        method_names = {n.name for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
        if not any(a.method is None or a.method in method_names for a in class_spec.anchors):
            anchors = ", ".join(str(a) for a in class_spec.anchors)
            return ClassReport(name, role, UNSUPPORTED, f"no anchor found ({anchors}): unknown layout")
        if inherited is not None:
            return ClassReport(name, role, UNPATCHED, f"inherited {inherited.owner}.{hook_name} never flags layers")
        return ClassReport(name, role, UNPATCHED, f"no working {hook_name} of its own")

    def _check_record(
        self, file_spec: FileSpec, path: Path, content: bytes, classes: tuple[ClassReport, ...]
    ) -> FileReport:
        """Compare a file carrying our blocks with what the ledger says we wrote."""
        marked = [c for c in classes if c.marker is not None]
        if not marked or any(c.state == UNSUPPORTED for c in classes):
            return FileReport(file_spec, path, _file_state(classes), classes, content)
        entry = self.ledger.get(file_spec.name) if self.ledger else None
        if entry is not None and sha256_hex(content) == entry.patched_sha256:
            return FileReport(file_spec, path, _file_state(classes), classes, content)
        pristine = resolve_pristine(self.install, file_spec, content, entry, self.spec.hook)
        if entry is not None:
            why = "changed since eagle3-patch wrote it"
        elif pristine is None:
            why = f"carries {MARKER_TAG}] blocks but nothing vouches for its original bytes"
        elif not self._strips_to(content, pristine):
            why = f"changed outside its {MARKER_TAG}] blocks"
        else:
            why = ""
        if why:
            drifted = tuple(
                ClassReport(c.name, c.role, DRIFTED, why, c.marker) if c.marker is not None else c for c in classes
            )
            return FileReport(file_spec, path, DRIFTED, drifted, content, why, pristine)
        assert pristine is not None
        # No ledger (patched by an older tool, or the ledger was lost): our blocks
        # sit on vouched-for original bytes. Current blocks that re-render exactly
        # stay "patched"; anything else is refreshed by apply.
        if all(c.state == PATCHED for c in marked) and self._reproduces(file_spec, pristine, content):
            return FileReport(file_spec, path, PATCHED, classes, content, "no ledger entry", pristine)
        old = tuple(
            ClassReport(c.name, c.role, PATCHED_OLD, "block not from this eagle3-patch; apply refreshes it", c.marker)
            if c.marker is not None
            else c
            for c in classes
        )
        return FileReport(file_spec, path, _file_state(old), old, content, "no ledger entry", pristine)

    def _strips_to(self, content: bytes, pristine: bytes) -> bool:
        """Removing our blocks gives back exactly the original: nothing else was edited."""
        from eagle3_patch.transform import strip_source

        try:
            return strip_source(content, hook=self.spec.hook) == pristine
        except Exception:  # noqa: BLE001 - unparsable means "no"
            return False

    def _reproduces(self, file_spec: FileSpec, pristine: bytes, content: bytes) -> bool:
        from eagle3_patch.transform import Insertion, patch_source

        insertions = tuple(Insertion(c.name, self.spec.template(c.template), c.anchors) for c in file_spec.classes)
        try:
            return patch_source(pristine, insertions, hook=self.spec.hook).patched == content
        except Exception:  # noqa: BLE001 - any failure means "does not reproduce"
            return False


def _install_state(files: tuple[FileReport, ...]) -> tuple[str, str]:
    for file in files:
        if file.state == UNSUPPORTED:
            reasons = [f"{c.name}: {c.detail}" for c in file.classes if c.state == UNSUPPORTED]
            return UNSUPPORTED, f"{file.path}: " + ("; ".join(reasons) or file.detail)
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


def _read_ledger(path: Path) -> tuple[Ledger | None, str]:
    data = _read_or_none(path)
    if data is None:
        return None, ""
    try:
        return parse_ledger(data), ""
    except LedgerError as exc:
        return None, f"{path}: {exc}; ignored, states decided from backups and RECORD instead"


def _read_or_none(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def detect_encoding(content: bytes) -> str:
    """The source encoding (BOM or PEP 263 cookie), as Python reads it.

    ``tokenize.detect_encoding`` splits lines on LF only, so a file with CR-only
    line endings would be one long "first line"; the interpreter's own tokenizer
    ends lines at CR too, so give it the first two lines that way.
    """
    head = re.split(rb"\r\n|\r|\n", content[:4096], maxsplit=2)[:2]
    return tokenize.detect_encoding(io.BytesIO(b"\n".join(head) + b"\n").readline)[0]


def _encoding_problem(content: bytes) -> str:
    """Why eagle3-patch will not rewrite this file's encoding ("" when it will, byte for byte)."""
    try:
        encoding = detect_encoding(content)
    except SyntaxError as exc:
        return f"its encoding cannot be read ({exc})"
    try:
        # utf-8-sig only adds the BOM, which libcst keeps as it found it.
        ascii_compatible = "# x\n".encode(encoding.replace("-sig", "")) == b"# x\n"
        content.decode(encoding)
    except (LookupError, UnicodeError) as exc:
        return f"it is not valid {encoding} ({exc})"
    if not ascii_compatible:
        return f"its encoding {encoding} is not ASCII-compatible, and eagle3-patch never re-encodes a file"
    return ""


def source_lines(content: bytes) -> list[str]:
    """The file's lines as the tokenizer numbers them (CR, LF and CRLF all end a line)."""
    try:
        encoding = detect_encoding(content)
        text = content.decode(encoding)
    except (SyntaxError, LookupError, UnicodeDecodeError):
        text = content.decode("utf-8", errors="replace")
    return _LINE_BREAK.split(text)


def top_level_classes(tree: ast.Module) -> dict[str, ast.ClassDef]:
    """Top-level classes by name; a later definition replaces an earlier one, as in Python."""
    return {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}


def last_method(node: ast.ClassDef, name: str) -> ast.FunctionDef | None:
    found = None
    for statement in node.body:
        if isinstance(statement, ast.FunctionDef) and statement.name == name:
            found = statement
    return found


def marker_of(method: ast.FunctionDef, lines: list[str]) -> Marker | None:
    """The [EAGLE3-PATCH] tag in the comment lines just above ``method`` or inside it."""
    start = min([method.lineno, *(d.lineno for d in method.decorator_list)]) - 1
    end = method.end_lineno or method.lineno
    above = start - 1
    while above >= 0 and lines[above].lstrip().startswith("#"):
        above -= 1
    for line in lines[above + 1 : end]:
        if MARKER_TAG in line:
            return parse_marker(line)
    return None


def mentions(node: ast.AST, name: str) -> bool:
    """``node`` reads or writes attribute ``name`` (as ``x.name`` or ``getattr(x, "name")``)."""
    for child in ast.walk(node):
        if isinstance(child, ast.Attribute) and child.attr == name:
            return True
        if isinstance(child, ast.Constant) and child.value == name:
            return True
    return False


def delegates(method: ast.FunctionDef, hook: str) -> bool:
    """``method`` calls ``self.model.<hook>(...)``."""
    for child in ast.walk(method):
        if (
            isinstance(child, ast.Call)
            and isinstance(child.func, ast.Attribute)
            and child.func.attr == hook
            and isinstance(child.func.value, ast.Attribute)
            and child.func.value.attr == "model"
            and isinstance(child.func.value.value, ast.Name)
            and child.func.value.value.id == "self"
        ):
            return True
    return False
