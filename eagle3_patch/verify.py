"""Stage 8: prove that aux hidden-state capture works, not just that our methods are there.

Three levels, run in order; a level runs only when the ones before it passed.

static     follows, in the installed source, the chain from each wrapper's hook
           to the decoder's forward; a broken link is named (class, method,
           attribute).
behaviour  compiles the hooks found in the files (ours or upstream's) and runs
           them on stand-in objects shaped like the real classes. No sglang, no
           torch.
cuda       with torch, a CUDA device and an importable sglang: a tiny random
           Qwen3.5 target and EAGLE-3 drafter served by ``sglang.Engine`` with
           and without speculative decoding; the tokens must be equal.
"""

from __future__ import annotations

import ast
import builtins
import copy
import json
import os
import shutil
import subprocess
import tempfile
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eagle3_patch._cuda_run import last_exception, read_result
from eagle3_patch.classify import InstallReport, MethodRef, SourceIndex, delegates
from eagle3_patch.errors import EXIT_CUDA_UNAVAILABLE, EXIT_OK, EXIT_UNPATCHED, UnsupportedError
from eagle3_patch.spec import ClassSpec, PatchSpec
from eagle3_patch.states import ABSENT, NATIVE, UNSUPPORTED

PASSED = "passed"
FAILED = "failed"
SKIPPED = "skipped"

#: Decoder depth of the stand-ins: Qwen3.6-27B's 64 layers (its drafter asks for [1, 31, 60]).
STAND_IN_LAYERS = 64
CAPTURE_ATTRIBUTE = "capture_aux_hidden_states"
_CHILD_TIMEOUT_S = 1800


@dataclass(frozen=True)
class Check:
    """One link or behaviour, as observed."""

    subject: str
    ok: bool
    detail: str
    #: False where upstream's code does not offer this: reported, never a failure.
    required: bool = True


@dataclass(frozen=True)
class Level:
    name: str
    status: str
    detail: str
    checks: tuple[Check, ...] = ()


@dataclass(frozen=True)
class CudaRequest:
    """What the cuda level needs: which interpreter runs SGLang, and which checkpoints."""

    python: str
    required: bool = False
    target: Path | None = None
    draft: Path | None = None
    max_new_tokens: int = 16


@dataclass(frozen=True)
class VerifyReport:
    report: InstallReport
    levels: tuple[Level, ...]
    cuda_required: bool

    def level(self, name: str) -> Level:
        return next(level for level in self.levels if level.name == name)

    @property
    def exit_code(self) -> int:
        if any(level.status == FAILED for level in self.levels):
            return EXIT_UNPATCHED
        if self.cuda_required and self.level("cuda").status != PASSED:
            return EXIT_CUDA_UNAVAILABLE
        return EXIT_OK


def verify(report: InstallReport, spec: PatchSpec, cuda: CudaRequest) -> VerifyReport:
    """Run the levels on a classified install; an unsupported one is refused (exit 3)."""
    if report.state == UNSUPPORTED:
        raise UnsupportedError(f"unsupported SGLang {report.install.version}: {report.reason}")
    index = SourceIndex.for_spec(report.install.models_dir, spec)
    static = static_level(report, spec, index)
    behaviour = _after(static, lambda: behaviour_level(report, spec, index))
    cuda_level = _after(behaviour, lambda: run_cuda_level(report, cuda))
    return VerifyReport(report, (static, behaviour, cuda_level), cuda.required)


def static_level(report: InstallReport, spec: PatchSpec, index: SourceIndex) -> Level:
    """Follow hook -> decoder hook -> flag -> forward for every target class present."""
    checks: list[Check] = []
    for file_name, class_spec in _present_targets(report):
        if class_spec.role == "decoder":
            checks.extend(_decoder_links(index, spec, file_name, class_spec.name))
        else:
            checks.extend(_wrapper_links(index, spec, file_name, class_spec))
    return _level("static", checks, passed="every link from the hooks to the forwards is in place")


def behaviour_level(report: InstallReport, spec: PatchSpec, index: SourceIndex, layers: int = STAND_IN_LAYERS) -> Level:
    """Run the installed hooks on stand-ins with ``layers`` decoder layers."""
    checks: list[Check] = []
    states = {(f.spec.name, c.name): c.state for f in report.files for c in f.classes}
    decoder = _decoder_spec(report)
    decoder_hook = _compiled(index, report, decoder[0], decoder[1].name, spec.hook)
    upstream = states[(decoder[0], decoder[1].name)] == NATIVE
    checks.extend(_decoder_behaviour(decoder[1].name, decoder_hook, layers, optional=upstream))
    for file_name, class_spec in _present_targets(report):
        if class_spec.role != "wrapper":
            continue
        hook = _compiled(index, report, file_name, class_spec.name, spec.hook)
        optional = states[(file_name, class_spec.name)] == NATIVE or upstream
        checks.extend(_wrapper_behaviour(class_spec.name, hook, decoder_hook, layers, optional=optional))
    return _level(
        "behaviour", checks, passed=f"the hooks flag exactly the requested layers of a {layers}-layer decoder"
    )


def run_cuda_level(report: InstallReport, cuda: CudaRequest) -> Level:
    """Serve a Qwen3.5 target with and without EAGLE-3 through sglang.Engine, in a child process."""
    from eagle3_patch import tiny_checkpoints
    from eagle3_patch.engine_args import (
        SPEC_ENV,
        EngineArgsError,
        common_options,
        eagle3_options,
        engine_kwargs,
        read_server_args,
    )

    folder = Path(tempfile.mkdtemp(prefix="eagle3-patch-verify-"))
    try:
        scripts = folder / "scripts"
        scripts.mkdir()
        copy_child_scripts(scripts)
        probe = _child(cuda.python, [str(scripts / "_cuda_run.py"), "probe"], timeout=300)
        reason = _cannot_run(probe, report)
        if reason:
            return Level("cuda", SKIPPED, reason)
        text_only = (report.install.models_dir / "qwen3_5_text.py").exists()
        architecture = tiny_checkpoints.TEXT_ARCHITECTURE if text_only else tiny_checkpoints.MULTIMODAL_ARCHITECTURE
        target = cuda.target or folder / "target"
        draft = cuda.draft or folder / "draft"
        try:
            server_args = read_server_args(report.install)
            common = common_options(model_path=str(target), mem_fraction=0.3, multimodal=not text_only)
            plain = engine_kwargs(server_args, common)
            eagle3 = engine_kwargs(server_args, common + eagle3_options(draft_path=str(draft)))
        except EngineArgsError as exc:
            return Level("cuda", FAILED, str(exc))
        request = {
            "architecture": architecture,
            "target": str(target),
            "draft": str(draft),
            "write_checkpoints": cuda.target is None,
            "plain_kwargs": plain,
            "eagle3_kwargs": eagle3,
            "max_new_tokens": cuda.max_new_tokens,
            "evidence_dir": str(folder),
            "env": SPEC_ENV,
        }
        (folder / "request.json").write_text(json.dumps(request), encoding="utf-8")
        result = _child(
            cuda.python,
            [str(scripts / "_cuda_run.py"), "run", str(folder / "request.json")],
            timeout=_CHILD_TIMEOUT_S,
            env={**SPEC_ENV, "PYTHONPATH": _with_path(str(scripts))},
        )
        return judge_runs(result, architecture if cuda.target is None else str(target))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


#: What the child needs beside it; it imports nothing from eagle3_patch.
CHILD_FILES = {
    "_cuda_run.py": "_cuda_run.py",
    "tiny_checkpoints.py": "tiny_checkpoints.py",
    "capture_evidence.py": "capture_evidence.py",
    # Loads the evidence recorder into the scheduler processes SGLang spawns.
    "_sitecustomize.py": "sitecustomize.py",
}


def copy_child_scripts(folder: Path) -> None:
    """Lay out the child script and its helpers in ``folder`` (also used by scripts/runtime_proof.py)."""
    for source, name in CHILD_FILES.items():
        shutil.copyfile(Path(__file__).with_name(source), folder / name)


def _with_path(folder: str) -> str:
    existing = os.environ.get("PYTHONPATH")
    return folder if not existing else folder + os.pathsep + existing


def _after(previous: Level, run: Callable[[], Level]) -> Level:
    name = "behaviour" if previous.name == "static" else "cuda"
    if previous.status == FAILED:
        return Level(name, SKIPPED, f"the {previous.name} level failed")
    if previous.status == SKIPPED:
        return Level(name, SKIPPED, previous.detail)
    return run()


def _level(name: str, checks: list[Check], *, passed: str) -> Level:
    broken = [c for c in checks if not c.ok and c.required]
    unsupported = [c for c in checks if not c.ok and not c.required]
    if broken:
        return Level(name, FAILED, "; ".join(f"{c.subject}: {c.detail}" for c in broken), tuple(checks))
    note = f" ({len(unsupported)} not offered by upstream's code, reported)" if unsupported else ""
    return Level(name, PASSED, passed + note, tuple(checks))


def _present_targets(report: InstallReport) -> list[tuple[str, ClassSpec]]:
    return [
        (f.spec.name, class_spec)
        for f in report.files
        for class_spec, class_report in zip(f.spec.classes, f.classes, strict=True)
        if class_report.state != ABSENT
    ]


def _decoder_spec(report: InstallReport) -> tuple[str, ClassSpec]:
    return next((name, c) for name, c in _present_targets(report) if c.role == "decoder")


def _decoder_links(index: SourceIndex, spec: PatchSpec, file_name: str, class_name: str) -> list[Check]:
    flag = spec.capture_flag
    hook = index.find_method(file_name, class_name, spec.hook)
    checks = [
        Check(
            f"{class_name}.{spec.hook}", False, f"{class_name} ({file_name}) has no {spec.hook}: nothing flags layers"
        )
        if hook is None
        else Check(
            _where(hook, class_name, file_name, spec.hook),
            _sets_true(hook.node, flag),
            f"sets {flag} on the requested layers"
            if _sets_true(hook.node, flag)
            else f"never sets {flag}, the attribute {class_name}.forward reads",
        )
    ]
    forward = index.find_method(file_name, class_name, "forward")
    reads = forward is not None and _touches(forward.node, flag, store=False)
    checks.append(
        Check(
            f"{class_name}.forward",
            reads,
            f"passes a capture list to layers whose {flag} is set" if reads else f"never reads {flag}",
        )
    )
    return checks


def _wrapper_links(index: SourceIndex, spec: PatchSpec, file_name: str, class_spec: ClassSpec) -> list[Check]:
    name = class_spec.name
    decoder_file, _, decoder = (class_spec.decoder or ":").partition(":")
    hook = index.find_method(file_name, name, spec.hook)
    if hook is None:
        return [Check(f"{name}.{spec.hook}", False, f"{name} ({file_name}) has no {spec.hook}, own or inherited")]
    where = _where(hook, name, file_name, spec.hook)
    if delegates(hook.node, spec.hook):
        link = Check(where, True, f"delegates to self.model.{spec.hook} ({decoder})")
    else:
        detail = f"never calls self.model.{spec.hook}"
        decoder_forward = index.find_method(decoder_file, decoder, "forward")
        if _touches(hook.node, "layers_to_capture", store=True) and not (
            decoder_forward is not None and _touches(decoder_forward.node, "layers_to_capture", store=False)
        ):
            detail += f"; it writes self.model.layers_to_capture, which {decoder}.forward never reads"
        link = Check(where, False, detail)
    sets_capture = _sets_true(hook.node, CAPTURE_ATTRIBUTE)
    checks = [
        link,
        Check(
            where,
            sets_capture,
            f"sets self.{CAPTURE_ATTRIBUTE}" if sets_capture else f"never sets self.{CAPTURE_ATTRIBUTE}",
        ),
    ]
    forward = index.find_method(file_name, name, "forward")
    unpacks = forward is not None and (
        _touches(forward.node, CAPTURE_ATTRIBUTE, store=False) or _checks_for_tuple(forward.node)
    )
    checks.append(
        Check(
            _where(forward, name, file_name, "forward") if forward else f"{name}.forward",
            unpacks,
            "unpacks the decoder's (hidden_states, aux_hidden_states)"
            if unpacks
            else f"reads neither self.{CAPTURE_ATTRIBUTE} nor a returned tuple",
        )
    )
    return checks


def _where(ref: MethodRef, class_name: str, file_name: str, method: str) -> str:
    if (ref.owner, ref.file) == (class_name, file_name):
        return f"{class_name}.{method}"
    return f"{class_name}.{method} (inherited from {ref.owner} in {ref.file})"


def _touches(node: ast.AST, attribute: str, *, store: bool) -> bool:
    """``node`` writes (store) or reads ``attribute``, directly or through set/getattr."""
    for child in ast.walk(node):
        if isinstance(child, ast.Attribute) and child.attr == attribute and isinstance(child.ctx, ast.Store) == store:
            return True
        if (
            isinstance(child, ast.Call)
            and isinstance(child.func, ast.Name)
            and child.func.id == ("setattr" if store else "getattr")
            and len(child.args) >= 2
            and isinstance(child.args[1], ast.Constant)
            and child.args[1].value == attribute
        ):
            return True
    return False


def _sets_true(node: ast.AST, attribute: str) -> bool:
    """``node`` sets ``attribute`` to True (``x.attribute = True`` or ``setattr(x, "attribute", True)``)."""
    for child in ast.walk(node):
        if (
            isinstance(child, ast.Assign)
            and isinstance(child.value, ast.Constant)
            and child.value.value is True
            and any(isinstance(t, ast.Attribute) and t.attr == attribute for t in child.targets)
        ):
            return True
        if (
            isinstance(child, ast.Call)
            and isinstance(child.func, ast.Name)
            and child.func.id == "setattr"
            and len(child.args) == 3
            and isinstance(child.args[1], ast.Constant)
            and child.args[1].value == attribute
            and isinstance(child.args[2], ast.Constant)
            and child.args[2].value is True
        ):
            return True
    return False


def _checks_for_tuple(node: ast.AST) -> bool:
    return any(
        isinstance(child, ast.Call)
        and isinstance(child.func, ast.Name)
        and child.func.id == "isinstance"
        and len(child.args) == 2
        and isinstance(child.args[1], ast.Name)
        and child.args[1].id == "tuple"
        for child in ast.walk(node)
    )


# --- behaviour: the hooks, compiled from the installed files, on stand-ins ---


class _Layer:
    """A decoder layer: hooks set attributes on it."""


class _Decoder:
    def __init__(self, layers: int, hook: Callable[..., Any] | None) -> None:
        self.layers = [_Layer() for _ in range(layers)]
        self.layers_to_capture: list[int] = []
        self.start_layer, self.end_layer = 0, layers
        self.pp_group = types.SimpleNamespace(is_first_rank=True, is_last_rank=True, world_size=1)
        self.config = types.SimpleNamespace(num_hidden_layers=layers)
        if hook is not None:
            self.set_eagle3_layers_to_capture = types.MethodType(hook, self)

    def flagged(self, flag: str = "_is_layer_to_capture") -> list[int]:
        return [i for i, layer in enumerate(self.layers) if getattr(layer, flag, False)]


class _Wrapper:
    def __init__(self, decoder: _Decoder, hook: Callable[..., Any], *, last_rank: bool = True) -> None:
        layers = len(decoder.layers)
        self.model = decoder
        self.pp_group = types.SimpleNamespace(
            is_first_rank=True, is_last_rank=last_rank, world_size=1 if last_rank else 2
        )
        self.config = types.SimpleNamespace(
            num_hidden_layers=layers, text_config=types.SimpleNamespace(num_hidden_layers=layers)
        )
        self.capture_aux_hidden_states = False
        self.set_eagle3_layers_to_capture = types.MethodType(hook, self)


def _compiled(index: SourceIndex, report: InstallReport, file_name: str, class_name: str, hook: str) -> Any:
    """The hook as the installed file defines it (annotations dropped: they name module imports)."""
    ref = index.find_method(file_name, class_name, hook)
    if ref is None:
        return None
    node = copy.deepcopy(ref.node)
    node.decorator_list = []
    node.returns = None
    for argument in (*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs, node.args.vararg, node.args.kwarg):
        if argument is not None:
            argument.annotation = None
    module = ast.fix_missing_locations(ast.Module(body=[node], type_ignores=[]))
    namespace: dict[str, Any] = {"__builtins__": builtins}
    exec(compile(module, str(report.install.models_dir / ref.file), "exec"), namespace)  # noqa: S102
    return namespace[hook]


def _attempt(subject: str, run: Callable[[], str | None], *, required: bool = True) -> Check:
    """Run one behaviour; a returned string is what went wrong."""
    try:
        problem = run()
    except Exception as exc:  # noqa: BLE001 - any error is the finding
        problem = f"raised {type(exc).__name__}: {exc}"
    return Check(subject, problem is None, problem or "as expected", required)


def _decoder_behaviour(name: str, hook: Any, layers: int, *, optional: bool) -> list[Check]:
    subject = f"{name}.set_eagle3_layers_to_capture"
    if hook is None:
        return [Check(subject, False, "missing: nothing to run")]
    wanted = [2, layers // 2, layers - 3]

    def flags_exactly() -> str | None:
        decoder = _Decoder(layers, hook)
        decoder.set_eagle3_layers_to_capture(list(wanted))
        return None if decoder.flagged() == wanted else f"{wanted} flagged {decoder.flagged()}"

    def replaces_selection() -> str | None:
        decoder = _Decoder(layers, hook)
        decoder.set_eagle3_layers_to_capture([5, 6])
        decoder.set_eagle3_layers_to_capture([7])
        return None if decoder.flagged() == [7] else f"a second call left {decoder.flagged()} flagged, not [7]"

    def rejects_out_of_range() -> str | None:
        decoder = _Decoder(layers, hook)
        try:
            decoder.set_eagle3_layers_to_capture([layers])
        except ValueError:
            return None
        except Exception as exc:  # noqa: BLE001
            return f"layer {layers} raised {type(exc).__name__}, not ValueError"
        return f"layer {layers} of a {layers}-layer decoder was accepted"

    return [
        _attempt(f"{subject} flags exactly the requested layers", flags_exactly),
        _attempt(f"{subject} replaces an earlier selection", replaces_selection, required=not optional),
        _attempt(f"{subject} rejects a layer it does not have", rejects_out_of_range, required=not optional),
    ]


def _wrapper_behaviour(name: str, hook: Any, decoder_hook: Any, layers: int, *, optional: bool) -> list[Check]:
    subject = f"{name}.set_eagle3_layers_to_capture"
    if hook is None:
        return [Check(subject, False, "missing: nothing to run")]
    draft = [1, layers // 2, layers - 3]

    def shifts_draft_ids() -> str | None:
        wrapper = _Wrapper(_Decoder(layers, decoder_hook), hook)
        wrapper.set_eagle3_layers_to_capture(list(draft))
        expected = [i + 1 for i in draft]
        if wrapper.model.flagged() != expected:
            return f"draft ids {draft} flagged decoder layers {wrapper.model.flagged()}, not {expected}"
        return None if wrapper.capture_aux_hidden_states else f"self.{CAPTURE_ATTRIBUTE} stayed off"

    def default_ids() -> str | None:
        wrapper = _Wrapper(_Decoder(layers, decoder_hook), hook)
        wrapper.set_eagle3_layers_to_capture(None)
        expected = [2, layers // 2, layers - 3]
        return (
            None if wrapper.model.flagged() == expected else f"None flagged {wrapper.model.flagged()}, not {expected}"
        )

    def middle_rank_does_nothing() -> str | None:
        wrapper = _Wrapper(_Decoder(layers, decoder_hook), hook, last_rank=False)
        wrapper.set_eagle3_layers_to_capture(list(draft))
        if wrapper.model.flagged() or wrapper.capture_aux_hidden_states:
            return "a non-last pipeline rank flagged layers or turned capture on"
        return None

    def rejects_out_of_range() -> str | None:
        wrapper = _Wrapper(_Decoder(layers, decoder_hook), hook)
        try:
            wrapper.set_eagle3_layers_to_capture([layers - 1])
        except ValueError:
            return None if not wrapper.capture_aux_hidden_states else "capture was turned on before the error"
        except Exception as exc:  # noqa: BLE001
            return f"draft id {layers - 1} raised {type(exc).__name__}, not ValueError"
        return f"draft id {layers - 1} (decoder layer {layers}) was accepted"

    return [
        _attempt(f"{subject} maps draft id i to layer i + 1 and turns capture on", shifts_draft_ids),
        _attempt(f"{subject} defaults to layers [2, n // 2, n - 3]", default_ids),
        _attempt(f"{subject} does nothing on a non-last pipeline rank", middle_rank_does_nothing),
        _attempt(f"{subject} rejects a draft id past the decoder", rejects_out_of_range, required=not optional),
    ]


# --- cuda: a child process of the interpreter that has SGLang ---


def _child(python: str, args: list[str], *, timeout: int, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run the child script; its answer is the last RESULT line, else the reason it has none."""
    try:
        completed = subprocess.run(
            [python, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={**os.environ, **(env or {})},
        )
    except subprocess.TimeoutExpired:
        return {"child_error": f"gave no answer within {timeout} s"}
    except OSError as exc:
        return {"child_error": f"cannot run {python} ({exc.strerror})"}
    answer = read_result(completed.stdout)
    if answer is None:
        reason = last_exception(completed.stderr) if completed.stderr.strip() else "no output"
        return {"child_error": f"exit status {completed.returncode}: {reason}"}
    return answer


def _cannot_run(probe: dict[str, Any], report: InstallReport) -> str:
    """Why the cuda level cannot run here, or "" when it can."""
    python = probe.get("python", "the interpreter")
    if "child_error" in probe:
        return f"the probe failed: {probe['child_error']}"
    if "torch" not in probe:
        return f"no torch for {python} ({probe.get('torch_error', 'not importable')})"
    if not probe.get("cuda"):
        return f"no CUDA device visible to torch {probe['torch']} ({python})"
    if "sglang" not in probe:
        return f"sglang does not import in {python}: {probe.get('sglang_error', 'unknown error')}"
    installed = Path(probe.get("sglang_dir", "")).resolve()
    if installed != report.install.package_dir.resolve():
        return f"{python} imports sglang from {installed}, not the install being verified"
    return ""


def token_mismatch(plain: list[list[int]], eagle3: list[list[int]]) -> str:
    """Why the speculative outputs are not the greedy ones ("" when every prompt's tokens are equal)."""
    if not plain or len(plain) != len(eagle3):
        return f"{len(eagle3)} EAGLE-3 outputs for {len(plain)} prompts served plainly"
    for index, (expected, got) in enumerate(zip(plain, eagle3, strict=True)):
        if not expected or expected != got:
            position = next((i for i, (a, b) in enumerate(zip(expected, got, strict=False)) if a != b), len(expected))
            return f"prompt {index}: EAGLE-3 tokens differ from greedy from position {position}"
    return ""


def judge_runs(result: dict[str, Any], what: str) -> Level:
    """The cuda level's verdict on the child's runs (also applied by scripts/runtime_proof.py on CPU)."""
    if "child_error" in result:
        return Level("cuda", FAILED, f"the run gave no result: {result['child_error']}")
    for name, label in (("plain", "without speculative decoding"), ("eagle3", "with EAGLE-3")):
        run = result.get(name)
        if run is None or "error" in run:
            reason = run["error"] if run else "did not run"
            return Level("cuda", FAILED, f"serving {what} {label} failed: {reason}")
    plain, eagle3 = result["plain"], result["eagle3"]
    evidence = eagle3.get("evidence", {})
    if evidence.get("capture") != "passed":
        problems = "; ".join(evidence.get("problems", ["no capture evidence was recorded"]))
        return Level("cuda", FAILED, f"capture evidence failed: {problems}")
    if eagle3.get("accept_length") is None:
        return Level("cuda", FAILED, "the EAGLE-3 run reported no mean accept length")
    mismatch = token_mismatch(plain["tokens"], eagle3["tokens"])
    if mismatch:
        return Level("cuda", FAILED, mismatch)
    return Level(
        "cuda",
        PASSED,
        f"{what}: layers {evidence['flagged_layers']} captured bit for bit and fed to the drafter; "
        f"tokens equal with and without EAGLE-3; mean accept length {eagle3['accept_length']:.2f}; "
        f"decode {plain['tokens_per_second']:.1f} tok/s plain, {eagle3['tokens_per_second']:.1f} tok/s EAGLE-3",
    )
