"""The command line: declare the options, call the command, hand its result to the output layer.

Each command is ``commands/<name>.py``, imported when it is dispatched so that
``check`` and ``pins`` load only what they use. Expected failures
(``errors.Eagle3PatchError``) become one line and their documented exit code;
anything else is a bug: exit 70, with the traceback saved to a log file.
"""

from __future__ import annotations

import gc
import math
import os
import sys
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import click

from eagle3_patch import ROOT_ENV, render
from eagle3_patch.console import Output
from eagle3_patch.errors import EXIT_OK, Eagle3PatchError

Result = TypeVar("Result")
Command = Callable[..., Any]


def _run(call: Callable[[], Result], show: Callable[[Output, Result], int], *, as_json: bool, quiet: bool) -> None:
    """Run a command body and show its result; map failures to their exit code (bugs to 70)."""
    out = Output(as_json=as_json, quiet=quiet)
    ctx = click.get_current_context()
    try:
        result = call()
    except Eagle3PatchError as exc:
        ctx.exit(render.show_error(out, ctx.info_name, exc))
    except (KeyboardInterrupt, BrokenPipeError, click.exceptions.Exit, click.ClickException):
        raise
    except Exception as exc:  # noqa: BLE001 - the boundary for bugs
        ctx.exit(render.show_internal_error(out, exc))
    ctx.exit(show(out, result))


_JSON = click.option("--json", "as_json", is_flag=True, help="Print one JSON object (schema: docs/json.md).")
_QUIET = click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors (the exit code says it).")
_PYTHON = click.option(
    "--python",
    metavar="PATH",
    help="Work on the sglang installed for this interpreter (a venv, conda env, Docker stage).",
)
_ROOT = click.option(
    "--sglang-root",
    metavar="DIR",
    help=f"The sglang package folder, its site-packages, or a source checkout (env: {ROOT_ENV}).",
)
_FOLDER = click.Path(exists=True, file_okay=False)


class FiniteFloatRange(click.FloatRange):
    """``click.FloatRange`` that also refuses nan, which compares false with both ends and so slips through."""

    name = "finite float range"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


#: --lock-timeout: up to a day. apply and revert hold the lock for seconds; inf would wait forever.
MAX_LOCK_TIMEOUT_S = 86400
lock_timeout_option = click.option(
    "--lock-timeout",
    type=FiniteFloatRange(min=0, max=MAX_LOCK_TIMEOUT_S),
    default=120.0,
    show_default=True,
    metavar="SECONDS",
    help=f"How long to wait for another eagle3-patch working on the same install (0 to {MAX_LOCK_TIMEOUT_S} s).",
)


def output_options(command: Command) -> Command:
    """--json and --quiet, shared by every command."""
    return _JSON(_QUIET(command))


def install_options(command: Command) -> Command:
    """--sglang-root and --python (which install), plus the output options."""
    return _ROOT(_PYTHON(output_options(command)))


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from eagle3_patch.commands.version import version_line

    click.echo(version_line())
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

    \b
    Exit codes (the same for every command):
      0    ready / done (patched, native or overlaid; revert: restored or nothing to do)
      1    check: something is unpatched; verify: a level failed;
           pins: a pin is unsupported, unknown or unpinned; doctor: problems found
      2    usage error
      3    unsupported SGLang (nothing changed)
      4    drift or conflict: a file changed since it was patched (nothing changed)
      5    SGLang not found
      6    cannot write or read a file it must (nothing changed)
      7    verify --cuda: the cuda level cannot run here
      70   internal error in eagle3-patch (the traceback is saved to a log file)
      130  apply/revert got SIGINT (Ctrl-C) while writing: finished or rolled back first
      143  apply/revert got SIGTERM while writing: finished or rolled back first
    """


@cli.command()
@install_options
@click.option("--dry-run", is_flag=True, help="Print the unified diff and write nothing.")
@lock_timeout_option
def apply(sglang_root: str | None, python: str | None, dry_run: bool, lock_timeout: float, **out: bool) -> None:
    """Insert set_eagle3_layers_to_capture where it is missing (backed up, validated, atomic)."""
    from eagle3_patch.commands import apply as command

    call = partial(command.apply, sglang_root=sglang_root, python=python, dry_run=dry_run, lock_timeout=lock_timeout)
    _run(call, render.show_change, **out)


@cli.command()
@install_options
@click.option("--force", is_flag=True, help="Restore the original even if a patched file was edited since.")
@lock_timeout_option
def revert(sglang_root: str | None, python: str | None, force: bool, lock_timeout: float, **out: bool) -> None:
    """Restore the original bytes of every file eagle3-patch changed."""
    from eagle3_patch.commands import revert as command

    call = partial(command.revert, sglang_root=sglang_root, python=python, force=force, lock_timeout=lock_timeout)
    _run(call, render.show_change, **out)


_OVERLAY = click.option(
    "--overlay", type=click.Path(), help="The folder `eagle3-patch overlay --out` wrote (default: $PYTHONPATH)."
)


@cli.command()
@install_options
@_OVERLAY
def check(sglang_root: str | None, python: str | None, overlay: str | None, **out: bool) -> None:
    """Exit 0 when EAGLE-3 capture is in place (patched, native or overlaid), else say what is wrong."""
    from eagle3_patch.commands import check as command

    call = partial(command.check, sglang_root=sglang_root, python=python, details=out["as_json"], overlay=overlay)
    _run(call, render.show_check, **out)


@cli.command()
@install_options
@_OVERLAY
def status(sglang_root: str | None, python: str | None, overlay: str | None, **out: bool) -> None:
    """Show, per file and class, what eagle3-patch sees."""
    from eagle3_patch.commands import status as command

    call = partial(command.status, sglang_root=sglang_root, python=python, overlay=overlay)
    _run(call, render.show_status, **out)


@cli.command("verify")
@install_options
@click.option("--cuda", "cuda_required", is_flag=True, help="Require the cuda level: exit 7 when it cannot run here.")
@click.option(
    "--target", type=_FOLDER, help="Your own Qwen3.5 target checkpoint folder for the cuda level (with --draft)."
)
@click.option(
    "--draft", type=_FOLDER, help="Your own EAGLE-3 drafter checkpoint folder for the cuda level (with --target)."
)
@click.option(
    "--max-new-tokens",
    type=click.IntRange(1, 8192),
    default=16,
    show_default=True,
    help="Tokens each prompt generates in the cuda level's runs, with and without EAGLE-3 (1 to 8192).",
)
@_OVERLAY
def verify_command(
    sglang_root: str | None,
    python: str | None,
    cuda_required: bool,
    target: str | None,
    draft: str | None,
    max_new_tokens: int,
    overlay: str | None,
    **out: bool,
) -> None:
    """Prove capture works: static data flow, the hooks' behaviour, and a CUDA forward where possible."""
    from eagle3_patch.commands import verify as command

    call = partial(command.verify, sglang_root=sglang_root, python=python, cuda_required=cuda_required)
    call = partial(call, target=target, draft=draft, max_new_tokens=max_new_tokens, overlay=overlay)
    _run(call, render.show_verify, **out)


@cli.command("doctor")
@install_options
@click.option(
    "--target", required=True, help="The Qwen3.5/Qwen3.6 target: checkpoint folder, HF cache folder or config.json."
)
@click.option("--draft", required=True, help="The EAGLE-3 drafter: checkpoint folder, HF cache folder or config.json.")
@click.option("--tp", type=click.IntRange(1, 1024), help="Tensor-parallel size for the launch command (1 to 1024).")
@click.option(
    "--launch-only",
    is_flag=True,
    help="Print only the launch command this SGLang accepts, reading no checkpoint (for a Dockerfile's CMD).",
)
def doctor_command(
    sglang_root: str | None,
    python: str | None,
    target: str,
    draft: str,
    tp: int | None,
    launch_only: bool,
    **out: bool,
) -> None:
    """Check a target and an EAGLE-3 drafter against each other and this SGLang; print the launch command."""
    from eagle3_patch.commands import doctor as command

    if launch_only:
        only = partial(command.launch_only, target=target, draft=draft, sglang_root=sglang_root, python=python, tp=tp)
        _run(only, render.show_launch, **out)
        return
    call = partial(command.doctor, target=target, draft=draft, sglang_root=sglang_root, python=python, tp=tp)
    _run(call, render.show_doctor, **out)


@cli.command("overlay")
@install_options
@click.option("--out", required=True, help="Folder to write the package into (outside the install).")
@click.option("--name", default="eagle3_overlay", show_default=True, help="The package's name.")
def overlay_command(sglang_root: str | None, python: str | None, out: str, name: str, **out_options: bool) -> None:
    """Write a package that enables EAGLE-3 capture through SGLANG_EXTERNAL_MODEL_PACKAGE, changing no file."""
    from eagle3_patch.commands import overlay as command

    call = partial(command.overlay, out=out, name=name, sglang_root=sglang_root, python=python)
    _run(call, render.show_overlay, **out_options)


@cli.command("pins")
@click.argument("files", nargs=-1, type=click.Path())
@click.option("--allow-unpinned", is_flag=True, help="Do not fail on a range, a branch or a missing version.")
@click.option(
    "--fetch", is_flag=True, help="Classify pins missing from the verified table from their wheel (uses the network)."
)
@output_options
def pins_command(files: tuple[str, ...], allow_unpinned: bool, fetch: bool, **out: bool) -> None:
    """Judge the sglang versions pinned in FILES (default: the ones found under this folder)."""
    from eagle3_patch.commands import pins as command

    _run(partial(command.pins, files=files, allow_unpinned=allow_unpinned, fetch=fetch), render.show_pins, **out)


def _wants_json(args: list[str]) -> bool:
    """--json among the options (before a ``--`` that ends them)."""
    return "--json" in (args[: args.index("--")] if "--" in args else args)


def _command_name(exc: click.ClickException) -> str | None:
    """The subcommand a usage error belongs to (None for the group's own: no such command)."""
    ctx = getattr(exc, "ctx", None)
    return ctx.info_name if ctx is not None and ctx.parent is not None else None


def main(argv: list[str] | None = None) -> int:
    """Entry point for the console script and ``python -m eagle3_patch``."""
    # Short-lived: the cyclic collector would rescan libcst's many small objects
    # (a fifth of apply's time); reference counting frees them, nothing is cyclic.
    gc.disable()
    args = sys.argv[1:] if argv is None else argv
    try:
        result = cli.main(args=args, prog_name="eagle3-patch", standalone_mode=False)
    except click.ClickException as exc:
        if _wants_json(args):  # the README's usage-error object, for click's own errors too
            render.show_usage_error(Output(as_json=True), _command_name(exc), exc.format_message(), exc.exit_code)
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("eagle3-patch: aborted", err=True)
        return 130
    except BrokenPipeError:  # the reader went away (``| head``); Python would complain again at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return result if isinstance(result, int) else EXIT_OK
