"""The run log: stages, engine log lines, results and errors, one line each, coloured by level."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import RichLog

from ...engine.common.text import safe

LEVEL_STYLES = {
    "stage": "cyan",
    "result": "green",
    "warning": "yellow",
    "error": "bold red",
    "info": "",
}


def short_cell(cell: str) -> str:
    """'tiny-random__xx__s0' -> 'xx s0' (the backbone is in the cell table)."""
    parts = cell.split("__")
    return " ".join(parts[1:]) if len(parts) == 3 else cell


class LogPane(RichLog):
    DEFAULT_CSS = """
    LogPane {
        height: 7;
        border: round $panel-lighten-2;
        scrollbar-size-vertical: 1;
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes, wrap=True, markup=False, highlight=False, max_lines=2000)
        self.border_title = "log"
        self.plain: list[str] = []

    def add(self, message: str, level: str = "info", cell: str = "") -> None:
        # messages carry names and errors read from files: control characters are shown escaped, never sent
        prefix = f"[{safe(short_cell(cell))}] " if cell else ""
        message = safe(message)
        line = Text(prefix, style="dim")
        line.append(message, style=LEVEL_STYLES.get(level, ""))
        self.plain.append(prefix + message)
        self.write(line)

    def reset(self) -> None:
        self.plain.clear()
        self.clear()
