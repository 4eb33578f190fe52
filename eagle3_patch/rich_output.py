"""Rich styling for a terminal: coloured states, tables, highlighted diffs (loaded by ``console`` on a tty)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.padding import Padding
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

#: Columns the detail needs beside the names; a narrower terminal gets it on its own line.
_DETAIL_ROOM = 30


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
        """Names (file, class, state) are always shown whole; the free-text last column wraps at spaces,
        beside them where it has room (30 columns), else on its own indented line below each row."""
        widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers) - 1)]
        if self._console.width - sum(w + 2 for w in widths) >= _DETAIL_ROOM:
            table = Table(box=None, pad_edge=False)
            for index, header in enumerate(headers):
                last = index == len(headers) - 1
                table.add_column(header, no_wrap=not last, ratio=1 if last else None)
            for row in rows:
                cells = list(row)
                style = self._styles.get(cells[state_column])
                if style:
                    cells[state_column] = f"[{style}]{cells[state_column]}[/]"
                table.add_row(*cells)
            self._console.print(table)
            return
        self._console.print(Text("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=False)), style="bold"))
        for row in rows:
            names = Text()
            for index, (cell, width) in enumerate(zip(row, widths, strict=False)):
                names.append(
                    str(cell).ljust(width) + "  ", style=self._styles.get(cell, "") if index == state_column else ""
                )
            names.rstrip()
            self._console.print(names)
            self._console.print(Padding(Text(str(row[-1])), (0, 0, 0, 4)))

    def diff(self, text: str) -> None:
        self._console.print(Syntax(text, "diff", theme="ansi_dark", background_color="default"))
