"""Rich styling for a terminal: coloured states, tables, highlighted diffs (loaded by ``console`` on a tty)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text


class RichOutput:
    def __init__(self, styles: dict[str, str]) -> None:
        self._styles = styles
        self._console = Console(highlight=False)

    def line(self, text: str, state: str) -> None:
        head, _, rest = text.partition(" ")
        rendered = Text(head, style=f"bold {self._styles[state]}")
        rendered.append(" " + rest if rest else "")
        self._console.print(rendered)

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[str]], state_column: int) -> None:
        # Names (file, class, state) are kept whole; only the free-text last column wraps.
        table = Table(box=None, pad_edge=False)
        for index, header in enumerate(headers):
            last = index == len(headers) - 1
            table.add_column(header, no_wrap=not last, overflow="fold" if last else "ignore", ratio=1 if last else None)
        for row in rows:
            cells = list(row)
            style = self._styles.get(cells[state_column])
            if style:
                cells[state_column] = f"[{style}]{cells[state_column]}[/]"
            table.add_row(*cells)
        self._console.print(table)

    def diff(self, text: str) -> None:
        self._console.print(Syntax(text, "diff", theme="ansi_dark", background_color="default"))
