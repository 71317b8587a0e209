"""A report table (engine table model) in a DataTable, sortable by clicking a header or with a key."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import JustifyMethod
from rich.text import Text
from textual.widgets import DataTable

from ...engine.common.text import safe
from ...engine.report.export import format_value
from ..report import number

PINNED = ("macro",)  # rows that stay at the bottom whatever the sort


class ReportTable(DataTable[Text]):
    DEFAULT_CSS = """
    ReportTable {
        height: auto;
        max-height: 100%;
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes, cursor_type="cell", zebra_stripes=True)
        self.columns_names: list[str] = []
        self.data: list[list[Any]] = []
        self.sort_column: int | None = None
        self.sort_reverse = False

    def show(self, columns: Sequence[str], rows: Sequence[Sequence[Any]], keep_sort: bool = True) -> None:
        self.columns_names = list(columns)
        self.data = [list(r) for r in rows]
        if not keep_sort or self.sort_column is None or self.sort_column >= len(self.columns_names):
            self.sort_column, self.sort_reverse = None, False
        self._render_rows()

    def sort_by(self, column: int | None = None) -> None:
        """Sort by `column` (default: the cursor's); the same column again reverses the order."""
        if not self.columns_names:
            return
        column = self.cursor_column if column is None else column
        if column == self.sort_column:
            self.sort_reverse = not self.sort_reverse
        else:
            # numbers: best (highest) first; labels: alphabetical
            self.sort_column, self.sort_reverse = column, column != 0
        self._render_rows()

    def display_rows(self) -> list[list[Any]]:
        rows = [r for r in self.data if not (r and r[0] in PINNED)]
        pinned = [r for r in self.data if r and r[0] in PINNED]
        if self.sort_column is not None:
            c = self.sort_column
            present = [r for r in rows if self._key(r[c]) is not None]
            missing = [r for r in rows if self._key(r[c]) is None]
            present.sort(key=lambda r: self._key(r[c]), reverse=self.sort_reverse)  # type: ignore[arg-type,return-value]
            rows = present + missing
        return rows + pinned

    @staticmethod
    def _key(value: Any) -> Any:
        n = number(value)
        if n is not None:
            return (0, n, "")
        if value is None:
            return None
        return (1, 0.0, str(value))

    def _label(self, i: int, name: str) -> Text:
        numeric = i > 0 and any(number(r[i]) is not None for r in self.data if i < len(r))
        justify: JustifyMethod = "right" if numeric else "left"
        if i != self.sort_column:
            return Text(name, justify=justify)
        return Text(f"{name} {'▼' if self.sort_reverse else '▲'}", style="bold", justify=justify)

    def _render_rows(self) -> None:
        cursor = self.cursor_coordinate
        rows: list[list[Text]] = []
        for row in self.display_rows():
            cells = []
            for i, value in enumerate(row):
                text = safe(format_value(value))  # labels come from result files: control characters escaped
                if i == 0:
                    cells.append(Text(text, style="bold" if row[0] in PINNED else ""))
                elif value is None or number(value) is not None:
                    cells.append(Text(text, justify="right"))
                else:
                    cells.append(Text(text))
            rows.append(cells)
        self.clear(columns=True)
        for i, name in enumerate(self.columns_names):
            label = self._label(i, name)
            # explicit widths: never depend on when the table measures its content (it may be hidden in a tab)
            width = max([label.cell_len, *(r[i].cell_len for r in rows if i < len(r))])
            self.add_column(label, key=str(i), width=width)
        for cells in rows:
            self.add_row(*cells)
        if self.row_count and self.columns_names:
            self.move_cursor(
                row=min(cursor.row, self.row_count - 1), column=min(cursor.column, len(self.columns_names) - 1)
            )
        # an explicit height too (header + rows; max-height still applies): `height: auto` follows the rows only
        # once the table has measured itself, and a table laid out before that could keep a height of 0
        self.styles.height = self.row_count + (1 if self.columns_names else 0)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        self.sort_by(event.column_index)

    def first_column(self) -> list[str]:
        """The first cell of each shown row, in display order (what a test or a screen reader checks)."""
        return [str(r[0]) for r in self.display_rows()]
