"""The command line: parse options, run the stages, print, exit with a documented code.

Only this module (through console.Output) prints. Stages raise Eagle3PatchError
subclasses carrying their exit code; they are turned into one line (or one JSON
object) here, so every command reports the same condition the same way.
"""

from __future__ import annotations

import functools
import gc
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from eagle3_patch import ROOT_ENV, __version__
from eagle3_patch.console import Output
from eagle3_patch.errors import (
    EXIT_DRIFT,
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_UNPATCHED,
    EXIT_UNSUPPORTED,
    Eagle3PatchError,
    UsageError,
)
from eagle3_patch.states import ABSENT, DRIFTED, NATIVE, PATCHED, UNPATCHED, UNSUPPORTED

if TYPE_CHECKING:
    from pathlib import Path

    from eagle3_patch.classify import InstallReport
    from eagle3_patch.locate import Install
    from eagle3_patch.plan import Plan
    from eagle3_patch.spec import PatchSpec


def load_spec() -> PatchSpec:
    """The shipped targets (imported on first use: check's fast path never needs them)."""
    from eagle3_patch.spec import load_spec as load

    return load()


def locate(*, sglang_root: str | None, python: str | None) -> Install:
    """The install to work on (imported on first use: ``pins`` never needs it)."""
    from eagle3_patch.locate import locate as find

    return find(sglang_root=sglang_root, python=python)


_STATE_EXIT = {
    PATCHED: EXIT_OK,
    NATIVE: EXIT_OK,
    UNPATCHED: EXIT_UNPATCHED,
    UNSUPPORTED: EXIT_UNSUPPORTED,
    DRIFTED: EXIT_DRIFT,
}


def output_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--json and --quiet, shared by every command."""
    command = click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors (the exit code says it).")(
        command
    )
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON object (schema in the README).")(
        command
    )


def install_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--sglang-root and --python (which install), plus the output options."""
    command = output_options(command)
    command = click.option(
        "--python",
        metavar="PATH",
        help="Work on the sglang installed for this interpreter (a venv, conda env, Docker stage).",
    )(command)
    return click.option(
        "--sglang-root",
        metavar="DIR",
        help=f"The sglang package folder, its site-packages, or a source checkout (env: {ROOT_ENV}).",
    )(command)


def reports_errors(command: Callable[..., int]) -> Callable[..., None]:
    """Run a command body; map expected failures to their exit code, the rest to 70."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        out = Output(as_json=kwargs.pop("as_json", False), quiet=kwargs.pop("quiet", False))
        ctx = click.get_current_context()
        try:
            code = command(out, *args, **kwargs)
        except Eagle3PatchError as exc:
            if out.as_json:
                out.emit_json(
                    {"command": ctx.info_name, "state": exc.state, "exit_code": exc.exit_code, "error": str(exc)}
                )
            else:
                out.error(str(exc))
            ctx.exit(exc.exit_code)
        except (KeyboardInterrupt, BrokenPipeError, click.exceptions.Exit, click.ClickException):
            raise
        except Exception as exc:  # noqa: BLE001 - the boundary for bugs
            import tempfile
            import traceback

            with tempfile.NamedTemporaryFile("w", prefix="eagle3-patch-", suffix=".log", delete=False) as log:
                log.write(traceback.format_exc())
            out.error(f"internal error ({type(exc).__name__}: {exc}); traceback in {log.name}, please report it")
            ctx.exit(EXIT_INTERNAL)
        ctx.exit(code)

    return wrapper


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """``--version``: the tool, the anchors data, and the SGLang releases it has been proven on."""
    if not value or ctx.resilient_parsing:
        return
    from packaging.version import Version

    from eagle3_patch.verified import anchors_version, load_verified

    by_verdict: dict[str, list[Version]] = {}
    for release in load_verified():
        by_verdict.setdefault(release.verdict, []).append(Version(release.version))
    everything = sorted(v for versions in by_verdict.values() for v in versions)
    ranges = ", ".join(
        f"{verdict} {min(versions)}-{max(versions)}"
        for verdict, versions in sorted(by_verdict.items(), key=lambda item: min(item[1]))
    )
    click.echo(
        f"eagle3-patch {__version__} (anchors data {anchors_version()}; "
        f"verified sglang {everything[0]} to {everything[-1]}: {ranges})"
    )
    ctx.exit(EXIT_OK)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Show the version, the anchors data version and the verified SGLang releases.",
)
def cli() -> None:
    """Give SGLang's Qwen3.5/Qwen3.6 models the EAGLE-3 capture hook they lack.

    Exit codes: 0 ready/done, 1 unpatched (check) or a verify level failed, 2 usage,
    3 unsupported SGLang, 4 drift/conflict, 5 SGLang not found, 6 cannot write,
    7 verify --cuda could not run the cuda level.
    """


def lock_timeout_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--lock-timeout",
        type=click.FloatRange(min=0),
        default=120.0,
        show_default=True,
        metavar="SECONDS",
        help="How long to wait for another eagle3-patch working on the same install.",
    )(command)


@cli.command()
@install_options
@click.option("--dry-run", is_flag=True, help="Print the unified diff and write nothing.")
@lock_timeout_option
@reports_errors
def apply(out: Output, sglang_root: str | None, python: str | None, dry_run: bool, lock_timeout: float) -> int:
    """Insert set_eagle3_layers_to_capture where it is missing (backed up, validated, atomic)."""
    from eagle3_patch.plan import plan_apply, unified_diff

    install = locate(sglang_root=sglang_root, python=python)
    report, plan, final = _transaction(
        install,
        out,
        lambda r: plan_apply(r, load_spec()),
        lock_timeout,
        expect=(PATCHED, NATIVE),
        settled=(PATCHED, NATIVE, UNSUPPORTED),
        dry_run=dry_run,
    )
    if dry_run:
        for file_plan in plan.files:
            out.diff(unified_diff(file_plan))
    changed = {str(f.report.path) for f in plan.files}
    if out.as_json:
        out.emit_json(_payload("apply", final, changed=changed, dry_run=dry_run))
        return EXIT_OK
    _header(out, report)
    if plan.write is None:
        out.line(f"{report.state}: nothing to do; " + _ready_phrase(report.state), state=report.state)
        return EXIT_OK
    verb = "would patch" if dry_run else "patched"
    for file_plan in plan.files:
        where = ", ".join(f"{m.class_name} ({m.placement})" for m in file_plan.inserted)
        out.line(f"{verb}: {file_plan.report.path.name}: {where}", state=PATCHED)
    if dry_run:
        out.line("dry run: nothing was written")
    else:
        out.line("backups beside each file as <file>.eagle3-bak; undo with: eagle3-patch revert")
    return EXIT_OK


@cli.command()
@install_options
@click.option("--force", is_flag=True, help="Restore the original even if a patched file was edited since.")
@lock_timeout_option
@reports_errors
def revert(out: Output, sglang_root: str | None, python: str | None, force: bool, lock_timeout: float) -> int:
    """Restore the original bytes of every file eagle3-patch changed."""
    from eagle3_patch.plan import plan_revert

    install = locate(sglang_root=sglang_root, python=python)
    report, plan, final = _transaction(
        install,
        out,
        lambda r: plan_revert(r, load_spec(), force=force),
        lock_timeout,
        expect=(UNPATCHED, NATIVE, UNSUPPORTED),
        settled=(UNPATCHED, NATIVE, UNSUPPORTED),
    )
    restored = {str(f.report.path) for f in plan.files}
    if out.as_json:
        out.emit_json(_payload("revert", final, changed=restored))
        return EXIT_OK
    _header(out, report)
    if not restored:
        out.line(f"{report.state}: nothing to revert", state=report.state)
    for file_plan in plan.files:
        kept = " (your edited version kept as *.eagle3-edited)" if file_plan.report.state == DRIFTED else ""
        out.line(f"restored: {file_plan.report.path.name} has its original bytes again{kept}", state=UNPATCHED)
    return EXIT_OK


@cli.command()
@install_options
@reports_errors
def check(out: Output, sglang_root: str | None, python: str | None) -> int:
    """Exit 0 when EAGLE-3 capture is in place (patched or native), else say what is wrong."""
    install = locate(sglang_root=sglang_root, python=python)
    if not out.as_json:
        from eagle3_patch.ledger import targets_sha256, vouched_patched

        if vouched_patched(install.models_dir, targets_sha256()):  # no parsing, for every Docker build
            _header_line(out, install)
            out.line(f"{PATCHED}: " + _ready_phrase(PATCHED), state=PATCHED)
            return EXIT_OK
    report = _classify_install(install, out)
    code = _STATE_EXIT[report.state]
    if out.as_json:
        out.emit_json(_payload("check", report, exit_code=code))
        return code
    _header(out, report)
    if report.state in (PATCHED, NATIVE):
        out.line(f"{report.state}: " + _ready_phrase(report.state), state=report.state)
    elif report.state == UNPATCHED:
        todo = [
            f"{f.path.name} ({', '.join(c.name for c in f.classes if c.state not in (PATCHED, NATIVE, ABSENT))})"
            for f in report.files
            if f.state not in (PATCHED, NATIVE, ABSENT)
        ]
        out.line(f"unpatched: {'; '.join(todo)} lack EAGLE-3 capture; run: eagle3-patch apply", state=UNPATCHED)
    else:
        out.error(f"{report.state}: {report.reason}")
    return code


@cli.command()
@install_options
@reports_errors
def status(out: Output, sglang_root: str | None, python: str | None) -> int:
    """Show, per file and class, what eagle3-patch sees."""
    report = _classify(sglang_root, python, out)
    code = EXIT_OK if report.state in (PATCHED, NATIVE, UNPATCHED) else _STATE_EXIT[report.state]
    if out.as_json:
        out.emit_json(_payload("status", report, exit_code=code))
        return code
    _header(out, report)
    rows = [(f.path.name, c.name, c.state, c.detail) for f in report.files for c in f.classes]
    out.table(("file", "class", "state", "detail"), rows, state_column=2)
    out.line(f"{report.state}: overall", state=report.state)
    if report.reason:
        out.error(f"{report.state}: {report.reason}")
    return code


@cli.command("verify")
@install_options
@click.option("--cuda", "cuda_required", is_flag=True, help="Require the cuda level: exit 7 when it cannot run here.")
@click.option(
    "--target",
    type=click.Path(exists=True, file_okay=False),
    help="Your own Qwen3.5 target checkpoint folder for the cuda level (with --draft).",
)
@click.option(
    "--draft",
    type=click.Path(exists=True, file_okay=False),
    help="Your own EAGLE-3 drafter checkpoint folder for the cuda level (with --target).",
)
@click.option("--max-new-tokens", type=click.IntRange(1, 8192), default=16, show_default=True)
@reports_errors
def verify_command(
    out: Output,
    sglang_root: str | None,
    python: str | None,
    cuda_required: bool,
    target: str | None,
    draft: str | None,
    max_new_tokens: int,
) -> int:
    """Prove capture works: static data flow, the hooks' behaviour, and a CUDA forward where possible."""
    from pathlib import Path

    from eagle3_patch.verify import FAILED, CudaRequest, verify

    if (target is None) != (draft is None):
        raise UsageError("give --target and --draft together")
    report = _classify(sglang_root, python, out)
    request = CudaRequest(
        python=python or sys.executable,
        required=cuda_required,
        target=Path(target) if target else None,
        draft=Path(draft) if draft else None,
        max_new_tokens=max_new_tokens,
    )
    result = verify(report, load_spec(), request)
    code = result.exit_code
    if out.as_json:
        payload = _payload("verify", report, exit_code=code)
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
        out.emit_json(payload)
        return code
    _header(out, report)
    for level in result.levels:
        if level.status == FAILED:
            out.line(f"{level.status}: {level.name}", state=level.status)
        else:
            out.line(f"{level.status}: {level.name}: {level.detail}", state=level.status)
        for check in level.checks:
            if not check.ok:
                prefix = "  - " if check.required else "  - not offered by upstream: "
                out.line(f"{prefix}{check.subject}: {check.detail}")
    return code


@cli.command("pins")
@click.argument("files", nargs=-1, type=click.Path())
@click.option("--allow-unpinned", is_flag=True, help="Do not fail on a range or a missing version.")
@click.option(
    "--fetch", is_flag=True, help="Classify pins missing from the verified table from their wheel (uses the network)."
)
@output_options
@reports_errors
def pins_command(out: Output, files: tuple[str, ...], allow_unpinned: bool, fetch: bool) -> int:
    """Judge the sglang versions pinned in FILES (default: the ones found under this folder)."""
    from eagle3_patch.pins import FAILING, UNPINNED, discover, judge, judge_from_code, scan

    paths = list(files) or discover(".")
    for path in paths:
        if not os.path.isfile(path):
            raise UsageError(
                "no such file; pass requirements files, pyproject.toml, Dockerfiles or lock files", path=path
            )
    findings = [judge(pin) for pin in scan(paths)]
    if fetch:
        findings = [judge_from_code(finding) for finding in findings]
    failing = [f for f in findings if f.verdict in FAILING and not (allow_unpinned and f.verdict == UNPINNED)]
    code = EXIT_UNPATCHED if failing else EXIT_OK
    if out.as_json:
        out.emit_json(
            {
                "command": "pins",
                "exit_code": code,
                "files": [str(p) for p in paths],
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
                    for f in findings
                ],
            }
        )
        return code
    for finding in findings:
        out.line(finding.line())
    if not findings:
        out.line(f"no sglang requirement in {len(paths)} file(s)")
    return code


def main(argv: list[str] | None = None) -> int:
    """Entry point for the console script and ``python -m eagle3_patch``."""
    # A short-lived process: libcst builds a few hundred thousand small objects,
    # and the cyclic collector would rescan them again and again (a fifth of
    # apply's time). Reference counting still frees them; nothing here is cyclic.
    gc.disable()
    try:
        result = cli.main(args=argv, prog_name="eagle3-patch", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("eagle3-patch: aborted", err=True)
        return 130
    except BrokenPipeError:
        # The reader went away (``| head``); Python would complain again at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return result if isinstance(result, int) else EXIT_OK


def _transaction(
    install: Install,
    out: Output,
    build: Callable[[InstallReport], Plan],
    lock_timeout: float,
    *,
    expect: tuple[str, ...],
    settled: tuple[str, ...],
    dry_run: bool = False,
) -> tuple[InstallReport, Plan, InstallReport]:
    """Classify; when something may have to be written, plan and write it under the install's lock.

    A first look without the lock settles the common cases: nothing to write
    (and no temp file left by a killed run) means no lock and no file touched,
    and an unsupported layout is refused. Anything else, a refusal for drift
    included, is decided under the lock from a second classification (reusing
    the parse of files whose bytes did not change): files read without the lock
    may catch another run half-way, so that look decides nothing it could get
    wrong, and processes that lose the race never parse with libcst.
    """
    spec = load_spec()
    report = _classify_install(install, out)
    if dry_run or report.state in settled:
        plan = build(report)
        if dry_run or (plan.write is None and not _orphans(install)):
            return report, plan, report
    from eagle3_patch.write import install_lock, sweep_orphans

    with install_lock(install.package_dir, timeout=lock_timeout):
        sweep_orphans(_target_folders(install))
        from eagle3_patch.classify import classify_install

        report = classify_install(install, spec, reuse=report)
        plan = build(report)
        return report, plan, _write_and_reread(plan, expect=expect)


def _target_folders(install: Install) -> list[Path]:
    """Where temp files may be: the models folder, and the real folders of symlinked targets."""
    from pathlib import Path

    targets = [install.models_dir / f.name for f in load_spec().files]
    return [install.models_dir, *(Path(os.path.realpath(t)).parent for t in targets)]


def _orphans(install: Install) -> bool:
    from eagle3_patch.write import find_orphans

    return next(find_orphans(_target_folders(install)), None) is not None


def _classify(sglang_root: str | None, python: str | None, out: Output) -> InstallReport:
    return _classify_install(locate(sglang_root=sglang_root, python=python), out)


def _classify_install(install: Install, out: Output) -> InstallReport:
    from eagle3_patch.classify import classify_install

    report = classify_install(install, load_spec())
    if report.ledger_problem:
        out.note(report.ledger_problem)
    for file in report.files:
        if file.state in (UNPATCHED, NATIVE) and not any(c.marker for c in file.classes) and file.backup_path.exists():
            out.note(
                f"{file.backup_path}: stale backup from an earlier install (the file was reinstalled); "
                "ignored, replaced by the next apply, safe to delete"
            )
    return report


def _header(out: Output, report: InstallReport) -> None:
    _header_line(out, report.install)


def _header_line(out: Output, install: Install) -> None:
    out.line(f"sglang {install.version} ({install.layout}) at {install.package_dir}")


def _ready_phrase(state: str) -> str:
    if state == NATIVE:
        return "this SGLang ships a working EAGLE-3 hook; eagle3-patch changes nothing"
    return "EAGLE-3 aux hidden-state capture is in place"


def _write_and_reread(plan: Plan, *, expect: tuple[str, ...]) -> InstallReport:
    """Carry out the plan, then classify again: the result must read back as expected."""
    if plan.write is None:
        return plan.report
    from eagle3_patch.write import execute

    execute(plan.write)
    from eagle3_patch.classify import classify_install

    final = classify_install(plan.report.install, load_spec())
    if final.state not in expect:
        raise Eagle3PatchError(
            f"after writing, the install reads as {final.state} ({final.reason}); please report this",
            path=plan.report.install.models_dir,
        )
    return final


def _payload(
    command: str,
    report: InstallReport,
    *,
    changed: set[str] | None = None,
    exit_code: int = EXIT_OK,
    dry_run: bool = False,
) -> dict[str, Any]:
    """The --json object (schema in the README, "JSON output")."""
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
