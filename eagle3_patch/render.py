"""The output layer: each command's result as lines for a person or one JSON object (README, "JSON output").

Only this module and ``console`` (its channel) print. Each ``show_*`` returns
the exit code, so what is shown and the code given can never disagree.
"""

from __future__ import annotations

import os
import shlex
from functools import partial
from typing import TYPE_CHECKING, Any

from eagle3_patch.console import Output
from eagle3_patch.errors import EXIT_INTERNAL, EXIT_OK, Eagle3PatchError
from eagle3_patch.states import ABSENT, DRIFTED, NATIVE, OVERLAID, PATCHED, UNPATCHED

if TYPE_CHECKING:  # the result types pull in the pipeline; rendering needs only their fields
    from eagle3_patch.classify import InstallReport
    from eagle3_patch.commands._install import ChangeResult
    from eagle3_patch.commands.check import ReportResult
    from eagle3_patch.commands.doctor import DoctorResult
    from eagle3_patch.commands.overlay import OverlayResult
    from eagle3_patch.commands.pins import PinsResult
    from eagle3_patch.doctor.launch import Launch
    from eagle3_patch.doctor.rules import Finding
    from eagle3_patch.locate import Install
    from eagle3_patch.verify import VerifyReport

_FAILED = "failed"


def show_doctor(out: Output, result: DoctorResult) -> int:
    """One line per problem (rule, what, fix), the warnings, then the launch command when ready."""
    if out.as_json:
        out.emit_json(
            {
                "command": "doctor",
                "exit_code": result.exit_code,
                "target": _checkpoint_payload(result.target),
                "draft": _checkpoint_payload(result.draft),
                "sglang": {
                    "version": result.release.version,
                    "package_dir": str(result.install.package_dir),
                    "capture": result.capture_state,
                },
                "problems": [_problem_payload(p) for p in result.problems],
                "warnings": list(result.warnings),
                "notes": list(result.notes),
                "launch": _launch_payload(result.launch),
            }
        )
        return result.exit_code
    out.line(f"sglang {result.release.version}: EAGLE-3 capture {result.capture_state}")
    for note in result.notes:
        out.note(note)
    for problem in result.problems:
        out.line(f"problem {problem.rule}: {problem.detail}; fix: {problem.fix}", state=UNPATCHED)
    for warning in result.warnings:
        out.note(f"warning: {warning}")
    if result.problems:
        out.line(f"{len(result.problems)} problem(s); fix them, then run doctor again")
    else:
        out.line("ready: launch with", state=PATCHED)
        out.line(f"  {result.launch.command}", command=True)
    return result.exit_code


def show_launch(out: Output, launch: Launch) -> int:
    """``doctor --launch-only``: the command alone on stdout, whatever --quiet says (it is the output)."""
    if out.as_json:
        out.emit_json({"command": "doctor", "exit_code": EXIT_OK, "launch": _launch_payload(launch)})
    else:
        out.value(launch.command)
    for warning in launch.warnings:
        out.note(f"warning: {warning}")
    return EXIT_OK


def _problem_payload(problem: Finding) -> dict[str, Any]:
    edit = problem.edit
    payload: dict[str, Any] = {"rule": problem.rule, "detail": problem.detail, "fix": problem.fix}
    payload["edit"] = None if edit is None else {"where": edit.where, "key": edit.key, "value": edit.value}
    return payload


def _launch_payload(launch: Launch) -> dict[str, Any]:
    return {"env": dict(launch.env), "argv": list(launch.argv), "command": launch.command}


def show_overlay(out: Output, result: OverlayResult) -> int:
    """What was written and the two variables that switch it on (or why none is needed)."""
    built = result.overlay
    env = {}
    if built is not None:
        env = {"PYTHONPATH": os.path.abspath(result.out), "SGLANG_EXTERNAL_MODEL_PACKAGE": built.name}
    if out.as_json:
        out.emit_json(
            {
                "command": "overlay",
                "state": result.report.state,
                "exit_code": EXIT_OK,
                "sglang_version": result.report.install.version,
                "written": [str(p) for p in result.written],
                "hooks": [{"module": m, "class": c, "template": t} for m, c, t in (built.hooks if built else ())],
                "sources": dict(built.sources) if built else {},
                "env": env,
            }
        )
        return EXIT_OK
    if built is None:
        out.line(f"{result.report.state}: no overlay needed, this sglang already captures", state=result.report.state)
        return EXIT_OK
    hooked = ", ".join(f"{c} ({m}.py)" for m, c, _ in built.hooks)
    out.line(f"overlay: wrote {result.written[0]} for sglang {built.sglang_version}: {hooked}", state=PATCHED)
    out.line("use it with (every file of the install stays as it is):")
    shell = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    out.line(f"  {shell} python -m sglang.launch_server ...", command=True)
    out.line("  Dockerfile: ENV " + " ".join(f"{k}={dockerfile_quote(v)}" for k, v in env.items()), command=True)
    return EXIT_OK


def dockerfile_quote(value: str) -> str:
    """A value as a Dockerfile ``ENV`` reads it: bare when safe, else in double quotes (Docker knows no '...')."""
    if value and all(c.isalnum() or c in "/._-+:,@%" for c in value):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return f'"{escaped}"'


def _checkpoint_payload(checkpoint: Any) -> dict[str, Any]:
    config = checkpoint.config
    text = config.get("text_config") if isinstance(config.get("text_config"), dict) else config
    return {
        "config": str(checkpoint.config_path),
        "model_path": str(checkpoint.folder),
        "architecture": (config.get("architectures") or [""])[0],
        "num_hidden_layers": text.get("num_hidden_layers"),
        "hidden_size": text.get("hidden_size"),
        "weights": checkpoint.shapes is not None,
    }


def show_change(out: Output, result: ChangeResult) -> int:
    """apply and revert."""
    report = result.report
    _notes(out, report)
    changed = {str(f.report.path) for f in result.files}
    if out.as_json:
        payload = report_payload(result.command, result.after, changed=changed, dry_run=result.dry_run)
        payload["removed"] = [str(path) for path in result.removed]
        payload["kept"] = {str(path): str(copy) for path, copy in result.kept}
        out.emit_json(payload)
        return EXIT_OK
    # With --dry-run stdout carries only the unified diff (`> x.patch` then `patch -p1`); the rest goes to stderr.
    say = partial(out.line, err=result.dry_run)
    if result.dry_run:
        for file_plan in result.files:
            out.diff(file_plan.diff)
    _header(out, report.install, err=result.dry_run)
    copies = dict(result.kept)
    targets = {f.report.path for f in result.files}
    for path, copy in result.kept:
        if result.command == "apply" or path not in targets:  # revert names them on its "restored" lines
            say(f"kept: {path.name} as {copy.name} (its bytes exist nowhere else, so they are not lost)")
    for path in result.removed:
        if path not in copies:
            say(f"removed: {path.name} (ours, no longer needed)")
    if result.command == "revert":
        if not result.files:
            out.line(f"{report.state}: nothing to revert", state=report.state)
        for file_plan in result.files:
            path = file_plan.report.path
            kept = f" (your edited version kept as {copies[path].name})" if path in copies else ""
            out.line(f"restored: {path.name} has its original bytes again{kept}", state=UNPATCHED)
        return EXIT_OK
    if not result.files:
        say(f"{report.state}: nothing to do; " + _ready_phrase(report.state), state=report.state)
        return EXIT_OK
    verb = "would patch" if result.dry_run else "patched"
    for file_plan in result.files:
        where = ", ".join(f"{m.class_name} ({m.placement})" for m in file_plan.inserted)
        say(f"{verb}: {file_plan.report.path.name}: {where}", state=PATCHED)
    if result.dry_run:
        say("dry run: nothing was written")
    else:
        out.line(f"backups beside each file as <file>.eagle3-bak; undo with: {report.install.command('revert')}")
    return EXIT_OK


def show_check(out: Output, result: ReportResult) -> int:
    report = result.report
    if report is None:  # the ledger vouched for a patched install
        _header(out, result.install)
        out.line(f"{PATCHED}: " + _ready_phrase(PATCHED), state=PATCHED)
        return result.exit_code
    if _as_json(out, result, report):
        return result.exit_code
    if result.state == OVERLAID:
        out.line(f"{OVERLAID}: EAGLE-3 capture is enabled by the overlay {result.overlay}", state=PATCHED)
    elif report.state in (PATCHED, NATIVE):
        out.line(f"{report.state}: " + _ready_phrase(report.state), state=report.state)
    elif report.state == UNPATCHED:
        todo = [
            f"{f.path.name} ({', '.join(c.name for c in f.classes if c.state not in (PATCHED, NATIVE, ABSENT))})"
            for f in report.files
            if f.state not in (PATCHED, NATIVE, ABSENT)
        ]
        run = report.install.command("apply")
        out.line(f"unpatched: {'; '.join(todo)} lack EAGLE-3 capture; run: {run}", state=UNPATCHED)
    elif report.state == DRIFTED:
        out.error(f"{report.state}: {report.reason}. {_drift_next_step(report)}")
    else:
        out.error(f"{report.state}: {report.reason}")
    return result.exit_code


def show_status(out: Output, result: ReportResult) -> int:
    report = result.report
    assert report is not None, "status always classifies"
    if _as_json(out, result, report):
        return result.exit_code
    rows = [(f.path.name, c.name, c.state, c.detail) for f in report.files for c in f.classes]
    out.table(("file", "class", "state", "detail"), rows, state_column=2)
    if result.state == OVERLAID:
        out.line(f"{OVERLAID}: overall, by the overlay {result.overlay} (the files are unpatched)", state=PATCHED)
    else:
        out.line(f"{report.state}: overall", state=report.state)
    if report.state == DRIFTED:
        out.error(f"{report.state}: {report.reason}. {_drift_next_step(report)}")
    elif report.reason:
        out.error(f"{report.state}: {report.reason}")
    return result.exit_code


def show_verify(out: Output, result: VerifyReport) -> int:
    report = result.report
    _notes(out, report)
    code = result.exit_code
    if out.as_json:
        payload = report_payload("verify", report, exit_code=code)
        payload["levels"] = {
            level.name: {
                "status": level.status,
                "detail": level.detail,
                "checks": [
                    {"subject": c.subject, "ok": c.ok, "required": c.required, "detail": c.detail} for c in level.checks
                ],
            }
            for level in result.levels
        }
        if result.overlay is not None:
            payload["state"] = OVERLAID
            payload["overlay"] = {"package": str(result.overlay), "gap": None}
        out.emit_json(payload)
        return code
    _header(out, report.install)
    if result.overlay is not None:
        out.line(f"through the overlay {result.overlay} (the files themselves are unpatched)")
    for level in result.levels:
        if level.status == _FAILED:
            out.line(f"{level.status}: {level.name}", state=level.status)
        else:
            out.line(f"{level.status}: {level.name}: {level.detail}", state=level.status)
        for check in level.checks:
            if not check.ok:
                prefix = "  - " if check.required else "  - not offered by upstream: "
                out.line(f"{prefix}{check.subject}: {check.detail}")
    return code


def show_pins(out: Output, result: PinsResult) -> int:
    if out.as_json:
        out.emit_json(
            {
                "command": "pins",
                "exit_code": result.exit_code,
                "files": list(result.paths),
                "findings": [
                    {
                        "path": str(f.pin.path),
                        "line": f.pin.line,
                        "requirement": f.pin.text,
                        "version": f.pin.version,
                        "source": f.pin.source,
                        "verdict": f.verdict,
                        "advice": f.advice,
                        "note": f.pin.note,
                        "from_code": f.from_code,
                    }
                    for f in result.findings
                ],
            }
        )
        return result.exit_code
    for finding in result.findings:
        out.line(finding.line())
    if not result.findings:
        out.line(f"no sglang requirement in {len(result.paths)} file(s)")
    return result.exit_code


def show_error(out: Output, command: str | None, exc: Eagle3PatchError) -> int:
    """An expected failure: one line (or one JSON object) and its documented exit code."""
    if out.as_json:
        out.emit_json({"command": command, "state": exc.state, "exit_code": exc.exit_code, "error": str(exc)})
    else:
        out.error(str(exc))
    return exc.exit_code


def show_usage_error(out: Output, command: str | None, message: str, exit_code: int) -> int:
    """A usage error click found (a bad or missing option): the same object as ours, for --json."""
    out.emit_json({"command": command, "state": "usage-error", "exit_code": exit_code, "error": message})
    return exit_code


def show_internal_error(out: Output, exc: BaseException) -> int:
    """A bug: the traceback to a log file (stderr when no temp folder is writable), one line, exit 70."""
    import tempfile  # only on this path (the log is the one file not written by write/)
    import traceback

    try:
        with tempfile.NamedTemporaryFile("w", prefix="eagle3-patch-", suffix=".log", delete=False) as log:
            log.write(traceback.format_exc())
        where = log.name
    except OSError:
        traceback.print_exc()
        where = "the lines above"
    out.error(f"internal error ({type(exc).__name__}: {exc}); traceback in {where}, please report it")
    return EXIT_INTERNAL


def report_payload(
    command: str,
    report: InstallReport,
    *,
    changed: set[str] | None = None,
    exit_code: int = EXIT_OK,
    dry_run: bool = False,
) -> dict[str, Any]:
    """The --json object of every command that classifies an install (schema: docs/json.md)."""
    changed = changed or set()
    install = report.install
    return {
        "command": command,
        "state": report.state,
        "exit_code": exit_code,
        "dry_run": dry_run,
        "reason": report.reason,
        "sglang": {
            "root": str(install.package_dir),
            "version": install.version,
            "layout": install.layout,
            "found_by": install.found_by,
        },
        "files": [
            {
                "path": str(f.path),
                "name": f.spec.name,
                "state": f.state,
                "changed": str(f.path) in changed and not dry_run,
                "would_change": str(f.path) in changed and dry_run,
                "classes": [{"name": c.name, "role": c.role, "state": c.state, "detail": c.detail} for c in f.classes],
            }
            for f in report.files
        ],
    }


def _as_json(out: Output, result: ReportResult, report: InstallReport) -> bool:
    """The notes, then either the JSON object (True: nothing more to show) or the header line."""
    _notes(out, report)
    if result.overlay_gap:
        out.note(f"the overlay {result.overlay} does not enable capture here: {result.overlay_gap}")
    if out.as_json:
        payload = report_payload(result.command, report, exit_code=result.exit_code)
        if result.overlay is not None:
            payload["state"] = result.state
            payload["overlay"] = {"package": str(result.overlay), "gap": result.overlay_gap or None}
        out.emit_json(payload)
        return True
    _header(out, report.install)
    return False


def _notes(out: Output, report: InstallReport) -> None:
    for note in report.notes:
        out.note(note)


def _drift_next_step(report: InstallReport) -> str:
    from eagle3_patch.plan import drift_next_step  # only on this path: check stays light

    return drift_next_step(report)


def _header(out: Output, install: Install, *, err: bool = False) -> None:
    out.line(f"sglang {install.version} ({install.layout}) at {install.package_dir}", err=err)


def _ready_phrase(state: str) -> str:
    if state == NATIVE:
        return "this SGLang ships a working EAGLE-3 hook; eagle3-patch changes nothing"
    return "EAGLE-3 aux hidden-state capture is in place"
