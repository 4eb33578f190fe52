"""The model-based random walk behind ``tests/test_stateful.py`` (issue 20).

One walk is one real SGLang install (unpacked from the cached release wheels)
and a seeded sequence of steps drawn from three groups:

- **tool steps**: ``apply``, ``apply --dry-run``, ``revert``, ``revert --force``,
  ``check``, ``status``, run in-process through click's CliRunner (as
  ``conftest.run_cli`` does), each with ``--json`` or as plain text; and
  ``apply``/``revert``/``revert --force`` in a subprocess SIGKILLed after a
  writer step (``tests/fault_injection.py``, ``EAGLE3_PATCH_TEST_KILL_AFTER``);
- **user steps**: edits of every kind (append a line, a hotfix above our block,
  delete our marker lines, comment our methods out, edit inside our block, make
  the file unparseable and parseable again), a file saved under a backup's or a
  kept copy's name, the model card's one-shot script (``one_shot_script``, our
  own re-implementation of what the card says it does), and pip reinstalling,
  upgrading or downgrading between real releases (``pip_install``);
- **environment steps**: the file system stops (or starts again) offering hard
  links (``os.link`` fails with EPERM, as on FAT, some FUSE and network file
  systems); the tool steps that follow run that way, in-process and killed alike.

After every tool step the ``Oracle`` checks what the tool must never break (its
docstring says exactly what the user owns). A step that breaks it raises
``Violation``; ``Walk`` turns that into a message with the seed, the step index,
the last steps and, when it can find one in its time budget, a minimal sequence
of steps that still fails, replayable with ``EAGLE3_PATCH_STATEFUL_SCRIPT``.

Why a seeded random walk and not hypothesis' ``RuleBasedStateMachine``: a walk
of thousands of steps on one install reaches deep states (a patched, edited,
reinstalled, killed, re-patched file) that hypothesis' short examples rarely
reach, its cost is one install per walk instead of one per example, its time is
proportional to the step count and so easy to budget in CI, and a failure is
reproduced by two numbers (seed, steps) on any machine. What hypothesis would
add, shrinking, is done here by ``shrink`` (suffixes, then chunk removal).

This module imports nothing from pytest or conftest: the killed subprocesses
import it neither, they run the small ``_LAUNCH`` program.
"""

from __future__ import annotations

import ast
import contextlib
import errno
import fnmatch
import hashlib
import json
import os
import random
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from click.testing import CliRunner

from eagle3_patch.cli import cli
from eagle3_patch.fetch import extract_release, fetch_wheel
from eagle3_patch.ledger import BACKUP_SUFFIX, EDITED_SUFFIX, KEPT_SUFFIX, LEDGER_NAME
from eagle3_patch.write import LOCK_NAME, TEMP_SUFFIX

REPO = Path(__file__).resolve().parent.parent
TARGETS = ("qwen3_5.py", "qwen3_5_text.py")
MODELS = Path("sglang", "srt", "models")
#: Real releases the walk moves between: patchable without the text file, patchable with it, native.
VERSIONS = ("0.5.16", "0.5.21", "0.5.23")
START_VERSION = "0.5.21"
#: README, "Exit codes" (7 is verify --cuda only, which the walk does not run).
DOCUMENTED_EXITS = frozenset({0, 1, 2, 3, 4, 5, 6, 130, 143})
#: The writer's steps a kill can follow (write/lock.py, StepCallback).
KILL_POINTS = ("lock", "keep", "backup", "ledger", "bytecode-before", "replace", "bytecode", "backup-removed")
MARK = "[EAGLE3-PATCH"
HOOK = "set_eagle3_layers_to_capture"
_NO_LINKS_ENV = "EAGLE3_PATCH_STATEFUL_NO_LINKS"

SEED_ENV = "EAGLE3_PATCH_STATEFUL_SEED"
STEPS_ENV = "EAGLE3_PATCH_STATEFUL_STEPS"
EXCLUDE_ENV = "EAGLE3_PATCH_STATEFUL_EXCLUDE"
SCRIPT_ENV = "EAGLE3_PATCH_STATEFUL_SCRIPT"
KEEP_GOING_ENV = "EAGLE3_PATCH_STATEFUL_KEEP_GOING"
SHRINK_ENV = "EAGLE3_PATCH_STATEFUL_SHRINK_SECONDS"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- releases and pip ---------------------------------------------------------


@dataclass(frozen=True)
class Release:
    """What ``fetch.extract_release`` unpacks from a release wheel, held in memory (bytes are copied, never re-read)."""

    version: str
    #: Path relative to site-packages -> bytes.
    files: dict[str, bytes]
    dist_info: str

    @property
    def record(self) -> bytes:
        return self.files[f"{self.dist_info}/RECORD"]


_RELEASES: dict[str, Release] = {}


def release(version: str) -> Release:
    """The release's files, unpacked once per process from the cached wheel."""
    if version not in _RELEASES:
        with tempfile.TemporaryDirectory(prefix="stateful-release-") as folder:
            site = Path(folder)
            extract_release(fetch_wheel(version), site)
            paths = sorted(p for p in site.rglob("*") if p.is_file())
            files = {path.relative_to(site).as_posix(): path.read_bytes() for path in paths}
        (dist_info,) = {name.split("/", 1)[0] for name in files if name.split("/", 1)[0].endswith(".dist-info")}
        _RELEASES[version] = Release(version, files, dist_info)
    return _RELEASES[version]


def record_paths(record: bytes) -> list[str]:
    """The paths a RECORD lists (first CSV field; no release path holds a comma or a quote)."""
    return [line.split(",", 1)[0] for line in record.decode("utf-8").splitlines() if line.strip()]


def installed_version(site: Path) -> str | None:
    found = sorted(site.glob("sglang-*.dist-info"))
    return found[0].name[len("sglang-") : -len(".dist-info")] if found else None


def pip_install(site: Path, new: Release) -> list[str]:
    """What ``pip install --force-reinstall --no-deps sglang==V`` does to the files, faithfully and fast.

    pip uninstalls first: it deletes every path the installed RECORD lists (so
    our backups, ledger and lock go too, where ``apply`` listed them), the
    bytecode of each listed ``.py``, the whole dist-info, and folders left
    empty; files RECORD does not list (a kept ``*.eagle3-edited`` copy, a
    user's own file) stay. Then it writes every file of the new wheel as a new
    file (a new inode) and the new dist-info. Returns the target names whose
    file pip removed or wrote.
    """
    touched = set()
    for dist_info in sorted(site.glob("sglang-*.dist-info")):
        record = dist_info / "RECORD"
        for relative in record_paths(record.read_bytes()) if record.is_file() else ():
            if relative.startswith(".."):
                continue
            path = site / relative
            if path.is_file() or path.is_symlink():
                path.unlink()
                if path.parent == site / MODELS and path.name in TARGETS:
                    touched.add(path.name)
        shutil.rmtree(dist_info)
    for cache in site.rglob("__pycache__"):  # the bytecode of listed files (none left here is unlisted source's)
        for pyc in cache.glob("*.pyc"):
            if not (cache.parent / (pyc.name.split(".", 1)[0] + ".py")).exists():
                pyc.unlink()
    for folder in sorted((p for p in site.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()
    for relative, data in new.files.items():
        path = site / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        path.write_bytes(data)
        if path.parent == site / MODELS and path.name in TARGETS:
            touched.add(path.name)
    return sorted(touched)


# --- the one-shot script of the model card, re-implemented --------------------

ONE_SHOT_MARKER = "# [EAGLE3-PATCH] EAGLE-3 target hook (one-shot patch script)"
_ONE_SHOT_DECODER = """\
def set_eagle3_layers_to_capture(self, layers_to_capture):
    self.layers_to_capture = list(layers_to_capture)
    for layer_id in self.layers_to_capture:
        self.layers[layer_id]._is_layer_to_capture = True
"""
_ONE_SHOT_WRAPPER = """\
def set_eagle3_layers_to_capture(self, layer_ids=None):
    if layer_ids is None:
        n = len(self.model.layers)
        layer_ids = [1, n // 2 - 1, n - 4]
    self.model.set_eagle3_layers_to_capture([i + 1 for i in layer_ids])
    self.capture_aux_hidden_states = True
"""
#: What the card says its script does: two methods, in qwen3_5.py only, each after an anchor method.
_ONE_SHOT_PLAN = (
    ("Qwen3_5ForCausalLM", ("set_dflash_layers_to_capture", "get_input_embeddings"), _ONE_SHOT_DECODER),
    ("Qwen3_5ForConditionalGeneration", ("set_dflash_layers_to_capture", "get_embed_and_head"), _ONE_SHOT_WRAPPER),
)


def one_shot_script(models: Path, *, keep_existing_backup: bool = False) -> str:
    """Do to ``qwen3_5.py`` what the Qwen3.6-27B drafter card's ``patch_sglang_eagle3.py`` does (our own code).

    The card: "anchor-based, idempotent (keys on an [EAGLE3-PATCH] marker),
    writes a .eagle3-bak backup, AST-validates the result", adding
    ``set_eagle3_layers_to_capture`` to the dense decoder and overriding it on
    the dense wrapper, touching ``qwen3_5.py`` only. So: nothing when the file
    already holds the marker, does not parse or lacks the classes; otherwise
    each method goes after the first anchor method its class has (a class that
    already defines the hook is left alone), the result must parse, the
    original bytes are copied to ``qwen3_5.py.eagle3-bak`` (over whatever is
    there, unless ``keep_existing_backup``) and the file is rewritten in place,
    as a plain script does (same inode). Returns what it did, in words.
    """
    path = models / "qwen3_5.py"
    if not path.is_file():
        return "no qwen3_5.py"
    original = path.read_bytes()
    text = original.decode("utf-8")
    if MARK in text:
        return "already patched (marker found)"
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return "does not parse: left alone"
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    lines = text.splitlines(keepends=True)
    insertions = []
    for class_name, anchors, method in _ONE_SHOT_PLAN:
        node = classes.get(class_name)
        if node is None:
            return f"no class {class_name}: left alone"
        defined = {item.name: item for item in node.body if isinstance(item, ast.FunctionDef)}
        if HOOK in defined:
            continue
        anchor = next((defined[name] for name in anchors if name in defined), None)
        if anchor is None or anchor.end_lineno is None:
            return f"no anchor in {class_name}: left alone"
        indent = " " * (anchor.col_offset)
        block = ["\n", indent + ONE_SHOT_MARKER + "\n"]
        block += [(indent + line if line.strip() else line) for line in method.splitlines(keepends=True)]
        insertions.append((anchor.end_lineno, block))
    if not insertions:
        return "hook already defined: left alone"
    for end, block in sorted(insertions, reverse=True):
        lines[end:end] = block
    patched = "".join(lines)
    ast.parse(patched)  # the script's own check; our templates always parse
    backup = models / ("qwen3_5.py" + BACKUP_SUFFIX)
    if not (keep_existing_backup and backup.exists()):
        backup.write_bytes(original)
    with path.open("r+b") as handle:  # in place, as `open(path, "w")` in a script
        handle.write(patched.encode("utf-8"))
        handle.truncate()
    return f"patched qwen3_5.py ({len(insertions)} methods)"


# --- user edits ---------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """One of our blocks as a user sees it: the marker comment lines above a hook method, and the method."""

    lead: int  # 0-based index of the first comment or blank line of the block
    marker: int  # index of the (first) marker line
    start: int  # index of the ``def`` line
    end: int  # index one past the method's last line
    indent: str


def our_blocks(text: str) -> list[Block]:
    """Hook methods with a marker in the comment lines right above them (our own reading, not marker.py's)."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return []
    lines = text.splitlines(keepends=True)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ClassDef):
            continue
        for item in node.body:
            if not isinstance(item, ast.FunctionDef) or item.name != HOOK or item.end_lineno is None:
                continue
            start = min([item.lineno, *(d.lineno for d in item.decorator_list)]) - 1
            indent = " " * item.col_offset
            lead, marker = start, None
            while lead > 0 and (not lines[lead - 1].strip() or lines[lead - 1].startswith(indent + "#")):
                lead -= 1
                if MARK in lines[lead]:
                    marker = lead
            if marker is not None:
                found.append(Block(lead, marker, start, item.end_lineno, indent))
    return sorted(found, key=lambda b: b.start)


def _parses(text: str) -> bool:
    try:
        ast.parse(text)
    except SyntaxError:
        return False
    return True


_BROKEN = ("def _broken_by_the_user(:\n", "<<<<<<< HEAD\n")


def edit_text(kind: str, text: str, rng: random.Random) -> str | None:
    """The file's text after the user's edit ``kind``; None when the edit does not apply to this file."""
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    blocks = our_blocks(text)
    number = rng.randrange(1000)
    if kind == "edit-append":
        return "".join(lines) + f"# local note {number}\n"
    if kind == "edit-hotfix":
        if blocks:
            block = rng.choice(blocks)
            if rng.random() < 0.5:  # a statement just above our block, outside it
                lines.insert(block.lead, f"{block.indent}_hotfix_{number} = {number}\n")
            else:  # a comment right above our marker: it joins the block's leading comment lines
                lines.insert(block.marker, f"{block.indent}# hotfix {number}: keep this\n")
        else:
            first_class = next((i for i, line in enumerate(lines) if line.startswith("class ")), None)
            if first_class is None:
                return None
            lines.insert(first_class, f"_hotfix_{number} = {number}\n\n\n")
        return "".join(lines)
    if kind == "edit-unmark":
        marked = [i for i, line in enumerate(lines) if MARK in line]
        if not marked:
            return None
        drop = set(marked) if rng.random() < 0.6 else {rng.choice(marked)}
        return "".join(line for i, line in enumerate(lines) if i not in drop)
    if kind == "edit-comment-out":
        if not blocks:
            return None
        chosen = blocks if rng.random() < 0.5 else [rng.choice(blocks)]
        for block in chosen:
            for i in range(block.start, block.end):
                if lines[i].strip():
                    lines[i] = block.indent + "# " + lines[i][len(block.indent) :]
        return "".join(lines)
    if kind == "edit-inside":
        if not blocks:
            return None
        block = rng.choice(blocks)
        body = [i for i in range(block.start + 1, block.end) if lines[i].strip()]
        i = rng.choice(body)
        lines[i] = lines[i].rstrip("\n") + f"  # tweaked {number}\n"
        edited = "".join(lines)
        return edited if _parses(edited) else None
    if kind == "edit-unparseable":
        if rng.random() < 0.5:
            return "".join(lines) + _BROKEN[0]
        lines.insert(rng.randrange(len(lines) + 1), _BROKEN[1])
        return "".join(lines)
    if kind == "edit-reparse":
        kept = [line for line in lines if line not in _BROKEN]
        return "".join(kept) if len(kept) != len(lines) else None
    raise ValueError(kind)


def write_as_user(path: Path, data: bytes, *, in_place: bool) -> None:
    """An editor's save: in place (same inode, as vim does for a hard-linked file) or a new file renamed over it."""
    if in_place:
        with path.open("r+b") as handle:
            handle.write(data)
            handle.truncate()
        return
    temp = path.with_name(path.name + ".user-save")
    temp.write_bytes(data)
    shutil.copymode(path, temp)
    os.replace(temp, path)


# --- steps and scripts --------------------------------------------------------


@dataclass(frozen=True)
class Step:
    kind: str
    args: tuple[tuple[str, str], ...] = ()

    def get(self, key: str, default: str = "") -> str:
        return dict(self.args).get(key, default)

    def __str__(self) -> str:
        if not self.args:
            return self.kind
        return f"{self.kind}({','.join(f'{k}={v}' for k, v in self.args)})"


def step(kind: str, **args: object) -> Step:
    return Step(kind, tuple((k, str(v)) for k, v in args.items()))


_STEP_RE = re.compile(r"^\s*([a-z0-9-]+)\s*(?:\((.*)\))?\s*$")


def parse_steps(text: str) -> tuple[str, list[Step]]:
    """``start=0.5.21; apply; edit-inside(file=qwen3_5.py,seed=7); revert`` -> (start version, steps)."""
    version, steps = START_VERSION, []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        if part.startswith("start="):
            version = part[len("start=") :].strip()
            continue
        match = _STEP_RE.match(part)
        if match is None:
            raise ValueError(f"not a step: {part!r}")
        args = tuple(tuple(a.split("=", 1)) for a in match.group(2).split(",")) if match.group(2) else ()
        steps.append(Step(match.group(1), args))  # type: ignore[arg-type]
    return version, steps


def format_steps(version: str, steps: list[Step]) -> str:
    return "; ".join([f"start={version}", *(str(s) for s in steps)])


TOOL_KINDS = ("apply", "apply-dry-run", "revert", "revert-force", "check", "status")
KILL_KINDS = ("kill-apply", "kill-revert", "kill-revert-force")
EDIT_KINDS = (
    "edit-append",
    "edit-hotfix",
    "edit-unmark",
    "edit-comment-out",
    "edit-inside",
    "edit-unparseable",
    "edit-reparse",
)
PIP_KINDS = ("pip-reinstall", "pip-upgrade", "pip-downgrade")
OTHER_KINDS = ("save-backup-name", "one-shot-script", "links-off", "links-on")
#: Not a step: excluding it runs every tool step with --json.
TEXT_OUTPUT = "text-output"
ALL_KINDS = (*TOOL_KINDS, *KILL_KINDS, *EDIT_KINDS, *PIP_KINDS, *OTHER_KINDS, TEXT_OUTPUT)

WEIGHTS = {
    "apply": 14,
    "apply-dry-run": 2,
    "revert": 8,
    "revert-force": 5,
    "check": 4,
    "status": 4,
    "kill-apply": 1.5,
    "kill-revert": 1,
    "kill-revert-force": 0.5,
    "edit-append": 3,
    "edit-hotfix": 3,
    "edit-unmark": 2,
    "edit-comment-out": 2,
    "edit-inside": 3,
    "edit-unparseable": 1.5,
    "edit-reparse": 2,
    "save-backup-name": 2,
    "one-shot-script": 3,
    "pip-reinstall": 1.5,
    "pip-upgrade": 1,
    "pip-downgrade": 1,
    "links-off": 0.7,
    "links-on": 0.7,
}


def excluded_kinds(text: str | None) -> set[str]:
    """Kinds matching any of the comma-separated fnmatch patterns (``edit-*,kill-apply``)."""
    patterns = [p.strip() for p in (text or "").split(",") if p.strip()]
    unknown = [p for p in patterns if not fnmatch.filter(ALL_KINDS, p)]
    if unknown:
        raise ValueError(f"{EXCLUDE_ENV}: {unknown} match no step kind; kinds: {', '.join(ALL_KINDS)}")
    return {kind for kind in ALL_KINDS if any(fnmatch.fnmatch(kind, p) for p in patterns)}


# --- the oracle ---------------------------------------------------------------


class Violation(AssertionError):
    """A tool step broke the oracle: ``check`` names the rule (the shrinker keeps it while shrinking)."""

    def __init__(self, check: str, message: str, detail: str = "") -> None:
        super().__init__(f"[{check}] {message}")
        self.check = check
        self.message = message
        #: What tells this failure from another of the same check (the file, which bytes): shrinking keeps it too.
        self.detail = detail


@dataclass
class Obligation:
    """Bytes of one target that must stay recoverable, and why."""

    name: str
    data: bytes
    why: str
    #: "original" (what an apply backed up) or "before" (the file as it was before a tool step).
    what: str = "before"


@dataclass
class Lineage:
    """Per target: the original its current patch descends from, and the bytes made on top of it.

    ``produced`` holds the sha256 of every file content eagle3-patch produced
    from ``original`` (killed runs included): adding our blocks and nothing
    else, so running ``apply`` on ``original`` makes it again. Losing such
    bytes loses nothing; losing ``original`` does.
    """

    original: bytes | None = None
    produced: set[str] = field(default_factory=set)
    #: What the one-shot script made from ``original`` (apply refreshes it; revert should give ``original`` back).
    scripted: set[str] = field(default_factory=set)


class Oracle:
    """What the walk expects of eagle3-patch after every tool step.

    **What must stay recoverable.** Per target file, (a) the bytes it had just
    before each tool step, unless they are a product of the tool or of the
    one-shot script (``Lineage``: the original plus [EAGLE3-PATCH] blocks,
    which ``apply`` makes again and refreshes in place, as documented), and
    (b) the original bytes an ``apply`` backed up (for a file the one-shot
    script patched, the bytes the script started from). Bytes are recoverable
    when they are the file itself, or the file's ``.eagle3-bak`` backup with the
    ledger's ``pristine_sha256`` for that file equal to their sha256 (a backup
    the ledger vouches for: the documented invariant), or a kept copy
    ``<file>.eagle3-edited[.N]`` (what ``revert --force`` documents).

    **What the user owns.** Only bytes that a user step itself destroyed: the
    bytes an edit (or the one-shot script) wrote over in the target file,
    wherever else a copy may lie (a restored original, edited, is the user's
    new original, even while an interrupted revert's backup still holds the
    old one), and any obligation no longer recoverable right after a user step
    (the user overwrote the only place holding it: wrote over our backup,
    edited a file that shared its inode with our backup). A user edit of a
    patched file does not release its original, since the original still lies
    in the trusted backup and ``revert --force`` exists to give it back;
    deleting our marker lines, commenting our methods out or breaking the
    file's syntax is an edit like any other and releases nothing more. A pip
    reinstall, upgrade or downgrade makes the release's files the new origin:
    every obligation of each file pip removed or wrote is released, except
    where the file itself or a kept copy still holds it (pip never deletes a
    kept copy, which RECORD does not list).

    **What every tool step must also do.** Exit with a documented code, never
    70, and never 6 (the walk's install is always writable: a file system
    without hard links is not "cannot write"); leave no temp file; ``check``,
    ``status`` and ``apply --dry-run`` change nothing, and ``check``'s exit code
    is the one ``status``'s state calls for; a "nothing was changed" (or
    "nothing was written") line means the install's snapshot (bytes and mtimes,
    the lock and temp files aside) is identical; a file said to be restored
    holds its original, and the files said to change (``changed`` in --json,
    ``patched:``/``restored:`` lines) are exactly those that changed; a killed
    ``revert`` leaves each file as it was or its original, a killed ``apply``
    each file as it was or whole and patched; a ``revert`` that exits 0 leaves
    no file still patched as the tool or the one-shot script wrote it, no
    ledger, and pip's RECORD as the installer wrote it; an ``apply`` that exits
    0 leaves RECORD listing the ledger, the lock and every backup (so
    ``pip uninstall`` removes them); a second ``apply`` (or ``revert``) right
    after one that exited 0 changes nothing.
    """

    def __init__(self, site: Path, version: str) -> None:
        self.site = site
        self.models = site / MODELS
        self.version = version
        self.lineages = {name: Lineage() for name in TARGETS}
        self.obligations: list[Obligation] = []

    # what is on disk

    def read(self, name: str) -> bytes | None:
        path = self.models / name
        return _read_regular(path)

    def contents(self) -> dict[str, bytes | None]:
        return {name: self.read(name) for name in TARGETS}

    def holders(self, name: str, data: bytes) -> list[str]:
        """Where ``data`` (bytes of target ``name``) can be had back, as the documentation promises."""
        where = []
        if self.read(name) == data:
            where.append("the file")
        if _read_regular(self.models / (name + BACKUP_SUFFIX)) == data and self._ledger_vouches(name, sha(data)):
            where.append("the trusted backup")
        for suffix in (EDITED_SUFFIX, KEPT_SUFFIX):  # the two kept copies the README documents
            for kept in sorted(self.models.glob(name + suffix + "*")):
                if re.fullmatch(re.escape(name + suffix) + r"(\.\d+)?", kept.name) and _read_regular(kept) == data:
                    where.append(kept.name)
        return where

    def recorded_original(self, name: str) -> bytes | None:
        """The backup's bytes when the ledger vouches for them: what an apply recorded as the original."""
        data = _read_regular(self.models / (name + BACKUP_SUFFIX))
        return data if data is not None and self._ledger_vouches(name, sha(data)) else None

    def _ledger_vouches(self, name: str, digest: str) -> bool:
        try:
            ledger = json.loads((self.models / LEDGER_NAME).read_bytes())
            return bool(ledger["files"][name]["pristine_sha256"] == digest)
        except (OSError, ValueError, KeyError, TypeError):
            return False

    # bookkeeping

    def oblige(self, name: str, data: bytes, why: str, what: str = "before") -> None:
        for o in self.obligations:
            if o.name == name and o.data == data:
                if what == "original" and o.what != what:  # the same bytes, now also an original
                    o.what, o.why = what, f"{why} (also {o.why})"
                return
        self.obligations.append(Obligation(name, data, why, what))

    def disposable(self, name: str, data: bytes) -> bool:
        lineage = self.lineages[name]
        return sha(data) in lineage.produced or sha(data) in lineage.scripted

    def release_destroyed(self, overwritten: tuple[str, bytes] | None = None) -> list[str]:
        """After a user step: forget what it destroyed (``overwritten``: the target's bytes it wrote over)."""
        released = [o for o in self.obligations if (o.name, o.data) == overwritten or not self.holders(o.name, o.data)]
        self.obligations = [o for o in self.obligations if o not in released]
        return [o.why for o in released]

    def reinstalled(self, names: list[str], version: str) -> None:
        """After pip: those files start afresh from the release."""
        self.version = version
        for name in names:
            self.lineages[name] = Lineage()
            self.obligations = [
                o
                for o in self.obligations
                if o.name != name or any(h != "the trusted backup" for h in self.holders(o.name, o.data))
            ]

    def adopt(self, name: str, before: bytes, after: bytes, *, by_script: bool = False) -> bytes:
        """apply (or the one-shot script) turned ``before`` into ``after``: returns the original it descends from.

        ``before`` carrying [EAGLE3-PATCH] blocks that neither the tool nor the script made as they are (an
        edit inside the script's block): apply refreshes those blocks in place, as documented, and records
        as the original the bytes under them, which its ledger vouches for; ``before`` itself stays an
        obligation of the step (apply keeps it as ``<file>.eagle3-edited``).
        """
        lineage = self.lineages[name]
        base = lineage.original if lineage.original is not None and self.disposable(name, before) else before
        recorded = self.recorded_original(name) if not by_script and MARK.encode() in before else None
        if recorded is not None and recorded != before:
            base = recorded
        if base != lineage.original:
            self.lineages[name] = lineage = Lineage(original=base)
        (lineage.scripted if by_script else lineage.produced).add(sha(after))
        return base

    def check_obligations(self, where: str) -> None:
        for o in self.obligations:
            if not self.holders(o.name, o.data):
                raise Violation(
                    "lost",
                    f"after {where}: {o.why} (sha256 {sha(o.data)[:12]}) is no longer anywhere: not the file, "
                    f"not a backup the ledger vouches for, not a kept copy. {self.describe(o.name)}",
                    detail=f"{o.name}:{o.what}",
                )

    def describe(self, name: str) -> str:
        """What lies beside target ``name`` now, for failure messages."""
        parts = []
        for path in sorted(self.models.glob(name + "*")) + [self.models / LEDGER_NAME]:
            data = _read_regular(path)
            if data is None:
                continue
            parts.append(f"{path.name}={sha(data)[:12]}")
        ledger = self.models / LEDGER_NAME
        try:
            entry = json.loads(ledger.read_bytes())["files"].get(name)
            parts.append(f"ledger[{name}].pristine={entry['pristine_sha256'][:12]}" if entry else "no ledger entry")
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            parts.append("no readable ledger")
        return "On disk: " + ", ".join(parts)


def _read_regular(path: Path) -> bytes | None:
    """A regular file's bytes, never through a symlink; None otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return None
        return handle.read()


def snapshot(site: Path) -> dict[str, tuple[int, int, str]]:
    """Every file of the install: size, mtime and, for the files eagle3-patch may write, sha256.

    As ``conftest.snapshot`` (bytes and mtimes), but cheap enough for every
    step: the release's other files are compared by size and mtime. The lock
    (created once, never deleted) and a killed run's temp files (which the next
    run sweeps, as documented) are left out.
    """
    result = {}
    models = site / MODELS
    for root, _dirs, files in os.walk(site):
        folder = Path(root)
        for name in files:
            if name == LOCK_NAME or name.endswith(TEMP_SUFFIX):
                continue
            path = folder / name
            status = os.lstat(path)
            digest = ""
            if (folder == models and (name.startswith(("qwen3_5", ".")))) or name == "RECORD":
                digest = sha(path.read_bytes())
            result[path.relative_to(site).as_posix()] = (status.st_size, status.st_mtime_ns, digest)
    return result


def snapshot_difference(before: dict, after: dict) -> str:
    changes = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        if old is None:
            changes.append(f"{key} created")
        elif new is None:
            changes.append(f"{key} deleted")
        elif (old[0], old[2]) == (new[0], new[2]):
            changes.append(f"{key} rewritten with the same bytes (mtime changed)")
        else:
            changes.append(f"{key} changed")
    return "; ".join(changes)


# --- running the tool ---------------------------------------------------------


@contextlib.contextmanager
def hard_links_unavailable() -> Iterator[None]:
    """``os.link`` fails as on a file system without hard links (FAT, some FUSE and network ones)."""
    real = os.link

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted (no hard links on this file system)")

    os.link = refuse  # type: ignore[assignment]
    try:
        yield
    finally:
        os.link = real


#: The killed subprocess: tests/fault_injection.py, with os.link failing when the walk says so.
_LAUNCH = f"""
import errno, os, sys
if os.environ.get({_NO_LINKS_ENV!r}):
    def _refuse(*args, **kwargs):
        raise OSError(errno.EPERM, "Operation not permitted (no hard links on this file system)")
    os.link = _refuse
sys.path.insert(0, {str(REPO)!r})
from tests.fault_injection import main
raise SystemExit(main())
"""


@dataclass(frozen=True)
class Outcome:
    rc: int
    stdout: str
    stderr: str
    payload: dict | None
    killed: bool = False

    @property
    def text(self) -> str:
        return self.stdout + "\n" + self.stderr


def _payload(stdout: str) -> dict | None:
    try:
        value = json.loads(stdout)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


# --- the walk -----------------------------------------------------------------


@dataclass
class Record:
    index: int
    step: Step
    summary: str
    version: str
    links: bool


class Walk:
    """One install, one oracle, steps one after another (``run``), each checked."""

    def __init__(
        self,
        root: Path,
        *,
        seed: int,
        exclude: set[str] | None = None,
        log: Callable[[str], None] | None = None,
        version: str = START_VERSION,
        links: bool = True,
    ) -> None:
        self.root = root
        self.seed = seed
        self.rng = random.Random(seed)
        self.exclude = exclude or set()
        self.log = log or (lambda _line: None)
        self.runner = CliRunner()
        self.site = root / "site"
        self.history: list[Record] = []
        #: Seconds spent per step kind, for the timing summary.
        self.timings: dict[str, list[float]] = {}
        #: The last tool step that finished (verb, exit code), forgotten at any other step: a second apply
        #: right after a successful one, or a second revert, must change nothing.
        self.last_done: tuple[str, int] | None = None
        self.links = True
        self.oracle = Oracle(self.site, version)
        self.fresh(version, links=links)

    # setup

    def fresh(self, version: str, *, links: bool = True) -> None:
        """A new install of ``version``: what pip gives an empty site-packages."""
        if self.site.exists():
            shutil.rmtree(self.site)
        self.site.mkdir(parents=True)
        pip_install(self.site, release(version))
        self.links = links
        self.last_done = None
        self.oracle = Oracle(self.site, version)
        self.started = (version, links, len(self.history))

    @property
    def models(self) -> Path:
        return self.site / MODELS

    # drawing steps

    def draw(self) -> Step:
        kinds = [k for k in WEIGHTS if k not in self.exclude]
        if not kinds:
            raise ValueError("every step kind is excluded")
        weights = [WEIGHTS[k] for k in kinds]
        while True:
            kind = self.rng.choices(kinds, weights)[0]
            drawn = self._params(kind)
            if drawn is not None:
                return drawn

    def _params(self, kind: str) -> Step | None:
        rng = self.rng
        seed = rng.randrange(10**6)
        present = [n for n in TARGETS if (self.models / n).exists()]
        out = "json" if TEXT_OUTPUT in self.exclude or rng.random() < 0.5 else "text"
        if kind in TOOL_KINDS:
            return step(kind, out=out)
        if kind in KILL_KINDS:
            return step(kind, after=rng.choice(KILL_POINTS), n=rng.choice((1, 1, 2)))
        if kind in EDIT_KINDS:
            if not present:
                return None
            return step(kind, file=rng.choice(present), seed=seed, inplace=int(rng.random() < 0.5))
        if kind == "save-backup-name":
            if not present:
                return None
            return step(kind, file=rng.choice(present), what=rng.choice(("copy", "copy", "notes", "edited")))
        if kind == "one-shot-script":
            return step(kind, keep=int(rng.random() < 0.3))
        if kind in PIP_KINDS:
            current = installed_version(self.site) or START_VERSION
            if kind == "pip-reinstall":
                return step(kind, to=current)
            index = VERSIONS.index(current) if current in VERSIONS else 1
            choices = VERSIONS[index + 1 :] if kind == "pip-upgrade" else VERSIONS[:index]
            return step(kind, to=rng.choice(choices)) if choices else None
        if kind == "links-off":
            return step(kind) if self.links else None
        if kind == "links-on":
            return step(kind) if not self.links else None
        raise ValueError(kind)

    # running

    def run(self, steps: int) -> None:
        """Draw and run ``steps`` steps; the first violation raises ``Violation`` with the whole story."""
        for _ in range(steps):
            self.do(self.draw())

    def do(self, todo: Step) -> None:
        index = len(self.history)
        version = installed_version(self.site) or "none"
        record = Record(index, todo, "", version, self.links)
        self.history.append(record)
        started = time.monotonic()
        try:
            record.summary = self._do(index, todo)
        except Violation as exc:
            record.summary = f"VIOLATION {exc.check}"
            raise
        finally:
            self.timings.setdefault(todo.kind, []).append(time.monotonic() - started)
        self.log(f"{index} {todo} -> {record.summary}")

    def _do(self, index: int, todo: Step) -> str:
        kind = todo.kind
        if kind in TOOL_KINDS or kind in KILL_KINDS:
            return self.tool_step(index, todo)
        self.last_done = None
        if kind == "links-off":
            self.links = False
            return "hard links unavailable from now on"
        if kind == "links-on":
            self.links = True
            return "hard links available again"
        if kind in PIP_KINDS:
            touched = pip_install(self.site, release(todo.get("to")))
            self.oracle.reinstalled(touched, todo.get("to"))
            released = self.oracle.release_destroyed()
            return f"pip installed {todo.get('to')}" + _released(released)
        if kind in EDIT_KINDS:
            path = self.models / todo.get("file")
            data = _read_regular(path)
            if data is None:
                return "skipped: no such file"
            edited = edit_text(kind, data.decode("utf-8"), random.Random(int(todo.get("seed", "0"))))
            if edited is None:
                return "skipped: does not apply"
            write_as_user(path, edited.encode("utf-8"), in_place=todo.get("inplace") == "1")
            return f"edited {path.name}" + _released(self.oracle.release_destroyed((path.name, data)))
        if kind == "save-backup-name":
            name = todo.get("file")
            data = _read_regular(self.models / name)
            if data is None:
                return "skipped: no such file"
            what = todo.get("what")
            if what == "edited":
                target = self.models / (name + EDITED_SUFFIX)
                if target.exists():
                    return "skipped: a kept copy is there"
                target.write_bytes(data)
            else:
                target = self.models / (name + BACKUP_SUFFIX)
                target.write_bytes(data if what == "copy" else b"# my own notes, not a backup\n")
            return f"saved {target.name}" + _released(self.oracle.release_destroyed())
        if kind == "one-shot-script":
            before = self.oracle.read("qwen3_5.py")
            said = one_shot_script(self.models, keep_existing_backup=todo.get("keep") == "1")
            after = self.oracle.read("qwen3_5.py")
            if before is not None and after is not None and after != before:
                self.oracle.adopt("qwen3_5.py", before, after, by_script=True)
            overwritten = ("qwen3_5.py", before) if before is not None and after != before else None
            return f"one-shot: {said}" + _released(self.oracle.release_destroyed(overwritten))
        raise ValueError(f"unknown step kind {kind!r}")

    def invoke(self, argv: list[str], *, as_json: bool) -> Outcome:
        args = [*argv, "--sglang-root", str(self.site), *(["--json"] if as_json else [])]
        with contextlib.nullcontext() if self.links else hard_links_unavailable():
            result = self.runner.invoke(cli, args, catch_exceptions=False)
        return Outcome(result.exit_code, result.stdout, result.stderr, _payload(result.stdout) if as_json else None)

    def kill(self, argv: list[str], after: str, n: str) -> Outcome:
        env = {**os.environ, "EAGLE3_PATCH_TEST_KILL_AFTER": f"{after}:{n}"}
        env.pop(_NO_LINKS_ENV, None)
        if not self.links:
            env[_NO_LINKS_ENV] = "1"
        command = [sys.executable, "-c", _LAUNCH, *argv, "--sglang-root", str(self.site), "--json"]
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=180, check=False, cwd=REPO)
        killed = done.returncode == -signal.SIGKILL
        return Outcome(done.returncode, done.stdout, done.stderr, None if killed else _payload(done.stdout), killed)

    def tool_step(self, index: int, todo: Step) -> str:
        oracle = self.oracle
        kind = todo.kind
        verb = kind.removeprefix("kill-")
        argv = {"apply-dry-run": ["apply", "--dry-run"], "revert-force": ["revert", "--force"]}.get(verb, [verb])
        where = f"step {index} ({todo})"
        before = snapshot(self.site)
        pre = oracle.contents()
        for name, data in pre.items():
            if data is not None and not oracle.disposable(name, data):
                oracle.oblige(name, data, f"{name} as it was before step {index} ({todo})")
        if kind in KILL_KINDS:
            outcome = self.kill(argv, todo.get("after"), todo.get("n", "1"))
        else:
            outcome = self.invoke(argv, as_json=todo.get("out", "json") == "json")
        post = oracle.contents()
        after = snapshot(self.site)
        changed = sorted(n for n in TARGETS if pre[n] != post[n])
        restoring = verb.startswith("revert")
        wrong = []
        for name in changed:
            old, new = pre[name], post[name]
            if restoring:
                expected = oracle.lineages[name].original
                if new != expected:
                    state = "torn or foreign" if old is not None and new not in (old, expected) else "not the original"
                    wrong.append(
                        f"{where} changed {name} to bytes ({state}, sha256 {sha(new or b'')[:12]}) that are not the "
                        f"original the oracle holds ({sha(expected)[:12] if expected else 'none known'})"
                    )
            elif verb == "apply" and old is not None and new is not None:
                if outcome.killed and not (_parses_bytes(new) and MARK.encode() in new):
                    raise Violation("torn-file", f"{where}: {name} is neither as it was nor a whole patched file")
                base = oracle.adopt(name, old, new)
                oracle.oblige(name, base, f"original of {name} that step {index} ({todo}) patched", "original")
        # Data first: a lost original matters more than how the step exited or what it said.
        oracle.check_obligations(where)
        self._check_exit(where, outcome)
        if wrong:
            raise Violation("restored-wrong", "; ".join(wrong))
        if not outcome.killed:
            self._check_claims(where, verb, argv, outcome, before, after, pre, post)
            leftovers = sorted(p.name for p in self.models.glob(f".*{TEMP_SUFFIX}"))
            if leftovers:
                raise Violation("temp-file-left", f"{where} exited {outcome.rc} and left {leftovers}")
        if restoring and outcome.rc == 0 and not outcome.killed:
            self._check_revert_done(where, pre, post)
        if verb == "apply" and outcome.rc == 0 and not outcome.killed:
            self._check_record_lists_ours(where)
        again = self.last_done
        if not outcome.killed and again is not None and again[1] == 0 and changed:
            same = again[0] == verb or (again[0].startswith("revert") and verb.startswith("revert"))
            if same and verb in ("apply", "revert", "revert-force"):
                raise Violation(
                    "not-idempotent",
                    f"{where} changed {changed} right after a {again[0]} that exited 0, with nothing in between",
                    detail=verb,
                )
        if verb == "check" and not outcome.killed:
            self._check_agrees_with_status(where, outcome)
        if verb not in ("check", "status", "apply-dry-run"):
            self.last_done = None if outcome.killed else (verb, outcome.rc)
        state = (outcome.payload or {}).get("state", "")
        return f"rc={outcome.rc}{' (killed)' if outcome.killed else ''} {state} changed={changed}".rstrip()

    # the checks

    def _check_exit(self, where: str, outcome: Outcome) -> None:
        if outcome.killed:
            return
        if outcome.rc == 70:
            raise Violation("exit-70", f"{where} exited 70 (internal error): {_traceback(outcome.text)}")
        if outcome.rc not in DOCUMENTED_EXITS:
            raise Violation("exit-undocumented", f"{where} exited {outcome.rc}: {outcome.text.strip()[-800:]}")
        if outcome.rc == 6:
            raise Violation(
                "exit-6-writable",
                f"{where} exited 6 (cannot write) on a writable install"
                f"{' without hard links' if not self.links else ''}: {_said(outcome)}",
            )

    def _check_claims(
        self,
        where: str,
        verb: str,
        argv: list[str],
        outcome: Outcome,
        before: dict,
        after: dict,
        pre: dict[str, bytes | None],
        post: dict[str, bytes | None],
    ) -> None:
        difference = snapshot_difference(before, after)
        read_only = verb in ("check", "status", "apply-dry-run")
        if read_only and difference:
            raise Violation("read-only-wrote", f"{where} (reads only) changed the install: {difference}")
        said = outcome.text.lower()
        for phrase in ("nothing was changed", "nothing was written"):
            if phrase in said and difference:
                raise Violation(
                    "nothing-was-changed-false", f"{where} said {phrase!r} but: {difference}. It said: {_said(outcome)}"
                )
        if read_only or outcome.rc != 0 or verb not in ("apply", "revert", "revert-force"):
            return
        claimed = self._claimed_changes(verb, outcome)
        actual = {n for n in TARGETS if pre[n] != post[n]}
        if claimed != actual:
            raise Violation(
                "changed-claim-false",
                f"{where} said it changed {sorted(claimed)} but changed {sorted(actual)}. It said: {_said(outcome)}",
            )

    def _claimed_changes(self, verb: str, outcome: Outcome) -> set[str]:
        if outcome.payload is not None:
            return {f["name"] for f in outcome.payload.get("files", ()) if f.get("changed")}
        pattern = r"^restored: (\S+) has its original" if verb.startswith("revert") else r"^patched: (\S+):"
        return set(re.findall(pattern, outcome.stdout, flags=re.MULTILINE))

    def _check_revert_done(self, where: str, pre: dict[str, bytes | None], post: dict[str, bytes | None]) -> None:
        oracle = self.oracle
        for name in TARGETS:
            data = pre[name]
            if data is None or post[name] != data:
                continue
            if sha(data) in oracle.lineages[name].produced:
                raise Violation(
                    "revert-left-patch",
                    f"{where} exited 0 but left {name} patched, as eagle3-patch itself wrote it",
                    detail=name,
                )
            if sha(data) in oracle.lineages[name].scripted:
                backup = "is there" if (self.models / (name + BACKUP_SUFFIX)).exists() else "is gone"
                raise Violation(
                    "revert-left-one-shot",
                    f"{where} exited 0 but left the one-shot script's blocks in {name} (the script's backup {backup})",
                    detail=name,
                )
        leftovers = []
        if (self.models / LEDGER_NAME).exists():
            leftovers.append(LEDGER_NAME)
        record = _read_regular(self.site / f"sglang-{oracle.version}.dist-info" / "RECORD")
        if record != release(oracle.version).record:
            leftovers.append("our lines in RECORD")
        if leftovers:
            raise Violation("revert-left-ours", f"{where} exited 0 but left {leftovers}")

    def _check_agrees_with_status(self, where: str, outcome: Outcome) -> None:
        """check's exit code says what status (which always classifies) finds: check may take the ledger's word."""
        status = self.invoke(["status"], as_json=True)
        state = (status.payload or {}).get("state")
        expected = {"patched": 0, "native": 0, "unpatched": 1, "unsupported": 3, "drifted": 4}.get(str(state))
        if expected is not None and outcome.rc != expected:
            raise Violation(
                "check-disagrees",
                f"{where} exited {outcome.rc}, but status reads the install as {state} (check should exit {expected})."
                f" check said: {_said(outcome)}",
            )

    def _check_record_lists_ours(self, where: str) -> None:
        if not (self.models / LEDGER_NAME).exists():
            return
        record = _read_regular(self.site / f"sglang-{self.oracle.version}.dist-info" / "RECORD")
        listed = set(record_paths(record or b""))
        ours = [(MODELS / LEDGER_NAME).as_posix(), LOCK_NAME]
        ours += [(MODELS / p.name).as_posix() for p in self.models.glob(f"*{BACKUP_SUFFIX}")]
        missing = [p for p in ours if p not in listed]
        if missing:
            raise Violation("record-unlisted", f"{where} exited 0 but RECORD does not list {missing}")


def _parses_bytes(data: bytes) -> bool:
    try:
        ast.parse(data)
    except (SyntaxError, ValueError):
        return False
    return True


def _released(whys: list[str]) -> str:
    return f"; the user's step released: {whys}" if whys else ""


def _said(outcome: Outcome) -> str:
    if outcome.payload is not None and "error" in outcome.payload:
        return str(outcome.payload["error"])
    return " | ".join(line for line in outcome.text.splitlines() if line.strip())[-600:]


def _traceback(text: str) -> str:
    match = re.search(r"traceback in (\S+\.log)", text)
    if match:
        try:
            lines = Path(match.group(1).rstrip(",")).read_text().splitlines()
            return text.strip()[-300:] + "\n" + "\n".join(lines[-12:])
        except OSError:
            pass
    return text.strip()[-1200:]


def timing_summary(timings: dict[str, list[float]]) -> str:
    """Seconds per step kind, slowest first: where a walk's time goes."""
    rows = sorted(timings.items(), key=lambda item: -sum(item[1]))
    return ", ".join(f"{kind} {len(times)}x {sum(times):.1f} s" for kind, times in rows)


# --- failures: the story, the shrinking, the message --------------------------


@dataclass
class Failure:
    violation: Violation
    seed: int
    index: int
    #: The steps from the walk's (or the last fresh install's) start to the failing one, with their outcomes.
    records: list[Record]
    #: How to run the walk that failed again (environment and pytest selection).
    reproduce: str = ""
    minimal: tuple[str, list[Step]] | None = None
    shrink_seconds: float = 0.0

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.violation.check, self.violation.detail, self.records[-1].step.kind)

    def message(self) -> str:
        recent = self.records[-20:]
        lines = [
            f"stateful walk: seed={self.seed}, step {self.index}: {self.violation}",
            f"reproduce: {self.reproduce or f'{SEED_ENV}={self.seed} {STEPS_ENV}={self.index + 1}'}",
            f"the last {len(recent)} steps (index, step, outcome):",
            *(f"  {r.index} {r.step} -> {r.summary}" for r in recent),
        ]
        if self.minimal is not None:
            version, steps = self.minimal
            lines += [
                f"minimal sequence ({len(steps)} steps, shrunk in {self.shrink_seconds:.0f} s):",
                f"  {SCRIPT_ENV}='{format_steps(version, steps)}' "
                "python -m pytest tests/test_stateful.py -k replay_script",
            ]
        return "\n".join(lines)


def replay(root: Path, version: str, steps: list[Step], links: bool = True) -> Violation | None:
    """Run ``steps`` on a fresh install of ``version``; the violation they cause, if any."""
    folder = Path(tempfile.mkdtemp(prefix="replay-", dir=root))
    try:
        walk = Walk(folder, seed=0, version=version, links=links)
        for todo in steps:
            walk.do(todo)
    except Violation as exc:
        return exc
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return None


def shrink(root: Path, failure: Failure, budget_s: float) -> tuple[str, list[Step]] | None:
    """A short sequence failing the same check at the same kind of step, found within ``budget_s``.

    First the shortest failing suffix (2, 4, 8... steps, each on a fresh
    install of the release and with the hard-link mode it started from), with
    the steps that did nothing left out; then chunks of it removed while it
    still fails (delta debugging). None when even the whole story does not
    fail again (a flaky failure) or no time was left.
    """
    deadline = time.monotonic() + budget_s
    key = failure.key

    def fails(version: str, steps: list[Step], links: bool) -> bool:
        if time.monotonic() > deadline or not steps or steps[-1].kind != key[2]:
            return False
        found = replay(root, version, steps, links)
        return found is not None and (found.check, found.detail) == key[:2]

    records = failure.records
    best: tuple[str, list[Step], bool] | None = None
    length = 2
    while best is None and time.monotonic() < deadline:
        tail = records[-length:]
        useful = [r.step for r in tail[:-1] if not r.summary.startswith("skipped")] + [tail[-1].step]
        start = tail[0]
        for candidate in (useful, [r.step for r in tail]) if len(useful) < len(tail) else ([r.step for r in tail],):
            if fails(start.version, candidate, start.links):
                best = (start.version, candidate, start.links)
                break
        if length >= len(records):
            break
        length = min(2 * length, len(records))
    if best is None:
        return None
    version, steps, links = best
    chunk = max(1, len(steps) // 2)
    while chunk >= 1 and time.monotonic() < deadline:
        i, removed = 0, False
        while i < len(steps) - 1 and time.monotonic() < deadline:  # the failing step itself stays
            candidate = steps[:i] + steps[i + chunk :]
            if candidate[-1] == steps[-1] and fails(version, candidate, links):
                steps, removed = candidate, True
            else:
                i += chunk
        if not removed:
            chunk //= 2
    return version, ([Step("links-off")] if not links else []) + steps


def walk_failure(walk: Walk, violation: Violation, reproduce: str = "") -> Failure:
    return Failure(
        violation=violation,
        seed=walk.seed,
        index=len(walk.history) - 1,
        records=walk.history[walk.started[2] :],
        reproduce=reproduce,
    )


def explore(
    root: Path, *, seed: int, steps: int, exclude: set[str], shrink_s: float, log: Callable[[str], None]
) -> list[Failure]:
    """Keep going past violations (a fresh install after each), one shrunk example per distinct failure."""
    walk = Walk(root / "walk", seed=seed, exclude=exclude)
    began = time.monotonic()
    failures: dict[tuple[str, str, str], Failure] = {}
    counts: dict[tuple[str, str, str], int] = {}
    while len(walk.history) < steps:
        try:
            walk.do(walk.draw())
        except Violation as exc:
            failure = walk_failure(
                walk, exc, f"{KEEP_GOING_ENV}=1 {SEED_ENV}={seed} {STEPS_ENV}={len(walk.history)} (same exclusions)"
            )
            counts[failure.key] = counts.get(failure.key, 0) + 1
            recent = ", ".join(str(r.step.kind) for r in failure.records[-8:])
            log(f"violation at step {failure.index}: {exc} -- recent steps: {recent}")
            if failure.key not in failures:
                started = time.monotonic()
                failure.minimal = shrink(root, failure, shrink_s)
                failure.shrink_seconds = time.monotonic() - started
                failures[failure.key] = failure
                log(failure.message())
            walk.fresh(walk.rng.choice(VERSIONS))
    for key in failures:
        log(f"{counts[key]}x {key}")
    log(f"{steps} steps in {time.monotonic() - began:.0f} s: {timing_summary(walk.timings)}")
    return list(failures.values())
