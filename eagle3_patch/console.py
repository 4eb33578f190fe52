"""The output channel of one command: plain text, rich on a terminal, or one JSON object.

Used only by ``render``. Plain text without escape codes when piped or when
``NO_COLOR`` is set; rich styling (``rich_output``) only on a terminal, the one
place it is imported, so that ``check`` in a Docker build never pays for it.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import Any

import click

STATE_STYLES = {
    "patched": "green",
    "native": "green",
    "unpatched": "yellow",
    "patched-old": "yellow",
    "absent": "dim",
    "drifted": "red",
    "unsupported": "red",
    "passed": "green",
    "failed": "red",
    "skipped": "yellow",
}


class Output:
    """One command's output channel: json, rich or plain."""

    def __init__(self, *, as_json: bool, quiet: bool = False) -> None:
        self.as_json = as_json
        self.quiet = quiet
        self.rich = (
            not as_json and sys.stdout.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"
        )
        self._styled: Any = None

    def _terminal(self) -> Any:
        if self._styled is None:
            from eagle3_patch import rich_output  # rich: only on a terminal (about 55 ms to import)

            self._styled = rich_output.RichOutput(STATE_STYLES)
        return self._styled

    def line(self, text: str, *, state: str | None = None, err: bool = False, command: bool = False) -> None:
        """A line of human output; ``state`` colours its first word ("patched:") on a terminal.

        ``err`` sends it to stderr (``apply --dry-run`` keeps stdout for the diff);
        ``command`` marks a command to copy, which is never wrapped.
        """
        if self.as_json or self.quiet:
            return
        if self.rich and state in STATE_STYLES and not err:
            self._terminal().line(text, state)
        else:
            click.echo(text if command else _wrapped(text, err=err), err=err)

    def value(self, text: str) -> None:
        """The one thing a command was asked for (a command line to store), printed even with --quiet."""
        click.echo(text)

    def note(self, text: str) -> None:
        """A side remark (warnings, hints) on stderr, so stdout stays parseable."""
        if not self.quiet:
            click.echo(_wrapped(f"eagle3-patch: {text}", err=True), err=True)

    def error(self, text: str) -> None:
        click.echo(_wrapped(f"eagle3-patch: error: {text}", err=True), err=True)

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[str]], *, state_column: int) -> None:
        if self.as_json or self.quiet:
            return
        if self.rich:
            self._terminal().table(headers, rows, state_column)
            return
        widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
        for row in [headers, *rows]:
            click.echo("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())

    def diff(self, text: str) -> None:
        if self.as_json or self.quiet or not text:
            return
        if self.rich:
            self._terminal().diff(text)
        else:
            click.echo(text, nl=not text.endswith("\n"))

    def emit_json(self, payload: dict[str, Any]) -> None:
        click.echo(json.dumps(payload, indent=2, sort_keys=False))


def _wrapped(text: str, *, err: bool) -> str:
    """On a terminal, long lines break at spaces (a terminal would cut words); piped output stays one line."""
    stream = sys.stderr if err else sys.stdout
    if not stream.isatty():
        return text
    import shutil  # only on a terminal: they add 5 ms to every start-up (check in a Docker build)
    import textwrap

    width = shutil.get_terminal_size().columns
    if len(text) <= width:
        return text
    indent = " " * (len(text) - len(text.lstrip(" ")) + 2)
    return textwrap.fill(text, width=width, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False)
