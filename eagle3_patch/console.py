"""Everything eagle3-patch prints goes through here (called only from the CLI).

Rich styling on a terminal; plain text without escape codes when piped or when
``NO_COLOR`` is set; one JSON object with ``--json``. rich is imported only when
it will actually render, which keeps ``check`` in a Docker build cheap.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

import click

_STATE_STYLES = {
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
        self._console: Any = None

    def _rich_console(self) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(highlight=False)
        return self._console

    def line(self, text: str, *, state: str | None = None) -> None:
        """A line of human output; ``state`` colours its first word ("patched:") on a terminal."""
        if self.as_json or self.quiet:
            return
        if self.rich and state in _STATE_STYLES:
            from rich.text import Text

            head, _, rest = text.partition(" ")
            rendered = Text(head, style=f"bold {_STATE_STYLES[state]}")
            rendered.append(" " + rest if rest else "")
            self._rich_console().print(rendered)
        else:
            click.echo(text)

    def note(self, text: str) -> None:
        """A side remark (warnings, hints) on stderr, so stdout stays parseable."""
        if not self.quiet:
            click.echo(f"eagle3-patch: {text}", err=True)

    def error(self, text: str) -> None:
        click.echo(f"eagle3-patch: error: {text}", err=True)

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[str]], *, state_column: int) -> None:
        if self.as_json or self.quiet:
            return
        if self.rich:
            from rich.table import Table

            table = Table(*headers, box=None, pad_edge=False)
            for row in rows:
                cells = list(row)
                style = _STATE_STYLES.get(cells[state_column])
                if style:
                    cells[state_column] = f"[{style}]{cells[state_column]}[/]"
                table.add_row(*cells)
            self._rich_console().print(table)
            return
        widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
        for row in [headers, *rows]:
            click.echo("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())

    def diff(self, text: str) -> None:
        if self.as_json or self.quiet or not text:
            return
        if self.rich:
            from rich.syntax import Syntax

            self._rich_console().print(Syntax(text, "diff", theme="ansi_dark", background_color="default"))
        else:
            click.echo(text, nl=not text.endswith("\n"))

    def emit_json(self, payload: dict[str, Any]) -> None:
        import json

        click.echo(json.dumps(payload, indent=2, sort_keys=False))
