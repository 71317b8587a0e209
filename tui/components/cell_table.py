"""The grid's cells and their status (Run screen): one row per cell, updated in place as events arrive."""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import JustifyMethod
from rich.text import Text
from textual.widgets import DataTable

from ...engine.common.text import safe
from ...engine.common.vocabulary import BASELINE
from ...engine.evaluation.results import HEADLINE_FIELD, MISSING, SETTINGS
from ..run_state import CellState

STATUS_STYLES = {
    "pending": "dim",
    "running": "bold cyan",
    "complete": "green",
    "failed": "bold red",
    "cancelled": "yellow",
    "cancelling": "yellow",
    "partial": "yellow",
    "interrupted": "yellow",
}
COLUMNS = (  # key, label, width (None: the longest cell id)
    ("cell", "cell", None),
    ("status", "status", 9),
    ("step", "step", 5),
    ("loss", "loss", 6),
    ("mono", "mono", 6),  # macro mAP of the first evaluation dataset, per setting
    ("cross", "cross", 6),
    ("multi", "multi", 6),
    ("job", "job", 12),  # where the cell runs (grid.json's record): a Slurm job, a pid, a Ray task
    ("node", "node", 16),
)


def _num(value: float | None, digits: int = 4) -> Text:
    return Text(MISSING if value is None else f"{value:.{digits}f}", justify="right")


def row_of(cell: CellState) -> dict[str, Text]:
    step = f"{cell.step}/{cell.total_steps}" if cell.total_steps else (MISSING if cell.strategy == BASELINE else "")
    return {
        "cell": Text(safe(cell.id)),
        "status": Text(cell.status, style=STATUS_STYLES.get(cell.status, "")),
        "step": Text(step, justify="right"),
        "loss": _num(cell.loss),
        **{s: _num(cell.metrics.get(HEADLINE_FIELD[s])) for s in SETTINGS},
        "job": Text(safe(cell.job_id) or MISSING, style="dim" if not cell.job_id else ""),
        "node": Text(safe(cell.node) or MISSING, style="dim" if not cell.node else ""),
    }


class CellTable(DataTable[Text]):
    DEFAULT_CSS = """
    CellTable {
        height: auto;
        max-height: 10;
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes, cursor_type="row", zebra_stripes=True)

    def show(self, cells: Iterable[CellState]) -> None:
        """Add the cells not shown yet; update the others in place. Widths are fixed (the cell column from the
        first cells shown), so the table never waits for an idle moment to measure itself."""
        cells = list(cells)
        if not self.columns:
            id_width = max([len(c.id) for c in cells] + [4])
            for key, label, width in COLUMNS:
                justify: JustifyMethod = "left" if key in ("cell", "status", "job", "node") else "right"
                self.add_column(Text(label, justify=justify), key=key, width=width or id_width)
        for cell in cells:
            values = row_of(cell)
            if cell.id not in self.rows:
                self.add_row(*(values[k] for k, _, _ in COLUMNS), key=cell.id)
                continue
            for key, _, _ in COLUMNS[1:]:
                self.update_cell(cell.id, key, values[key])

    def status_of(self, cell_id: str) -> str:
        return str(self.get_cell(cell_id, "status"))
