"""History: earlier grids and runs under a runs root (the engine's results index), reopened in Results."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from rich.console import JustifyMethod
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import DataTable, Input, Label, Static
from textual.worker import Worker, WorkerState

from ...engine.common.text import safe
from ...engine.common.vocabulary import strategy_key
from ...engine.evaluation.results import HEADLINE_FIELD, SETTINGS
from ...engine.runs.grid_doc import peek_grid
from ..backend import display_path, error_text
from ..components.cell_table import STATUS_STYLES
from ..components.keyed_input import KeyedInput
from ..messages import AttachGrid, LaunchGrid
from .base import SectionScreen

METRICS = tuple((HEADLINE_FIELD[s], s) for s in SETTINGS)  # (mono_map, mono), ...
CELL_ORDER = ("complete", "running", "failed", "cancelled", "interrupted")  # how a grid's cells are counted


@dataclass
class HistoryRow:
    """One grid (its cells summed up) or one run outside a grid."""

    key: str
    path: Path
    kind: str  # grid | run
    name: str
    backbones: list[str]
    strategies: list[str]
    statuses: dict[str, int]
    best: dict[str, tuple[float, str] | None]  # metric -> (value, strategy of the best cell)
    started: float | None
    errors: list[str]
    total: int | None = None  # cells the grid planned (grid.json), when known

    @property
    def done(self) -> int:
        """Cells with a run directory (complete, failed, cancelled...): not cells finished."""
        return sum(self.statuses.values())

    def cells_text(self) -> str:
        """A grid's cells by status, as the Run screen names them: 'complete 2 · cancelled 1 · of 4' (a cancelled
        cell is not a done one; cells that never ran are the rest of the 'of'); a grid whose every cell is complete
        reads 'complete 7'."""
        order = sorted(self.statuses, key=lambda s: (CELL_ORDER.index(s) if s in CELL_ORDER else len(CELL_ORDER), s))
        parts = [f"{s} {self.statuses[s]}" for s in order]
        total = self.total if self.total is not None else self.done
        return " · ".join(parts if self.statuses.get("complete", 0) == total else [*parts, f"of {total}"])

    @property
    def status(self) -> str:
        total = sum(self.statuses.values())
        if self.statuses.get("complete", 0) == total:
            # cells that never started: the grid was stopped (one name with the Run screen: cancelled)
            return "cancelled" if self.total is not None and total < self.total else "complete"
        for s in ("running", "failed", "cancelled", "interrupted"):
            if self.statuses.get(s):
                return s
        return next(iter(self.statuses), "?")


def history_rows(runs: list[dict[str, Any]], root: Path) -> list[HistoryRow]:
    """Group the index rows by grid (a grid is one row), newest first."""
    grids: dict[str, list[dict[str, Any]]] = defaultdict(list)
    singles: list[dict[str, Any]] = []
    for r in runs:
        (grids[r["grid"]] if r.get("grid") else singles).append(r)
    out: list[HistoryRow] = []
    for name, cells in grids.items():
        path = Path(cells[0]["path"]).parent.parent
        try:
            key = path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            key = str(path)
        row = _row(key, path, "grid", name, cells)
        row.total = grid_size(path)
        out.append(row)
    for r in singles:
        out.append(_row(r["key"], Path(r["path"]), "run", r.get("id") or r["key"], [r]))
    out.sort(key=lambda h: (h.started is None, -(h.started or 0.0), h.key))
    return out


def grid_size(path: Path) -> int | None:
    """How many cells grid.json plans (cells that never started have no run directory to index)."""
    grid = peek_grid(path)
    return None if grid is None else len(grid.cells)


def _row(key: str, path: Path, kind: str, name: str, cells: list[dict[str, Any]]) -> HistoryRow:
    statuses: dict[str, int] = {}
    for c in cells:
        statuses[c.get("status") or "?"] = statuses.get(c.get("status") or "?", 0) + 1
    best: dict[str, tuple[float, str] | None] = {}
    for metric, _ in METRICS:
        values = [(c[metric], c.get("strategy") or "?") for c in cells if isinstance(c.get(metric), int | float)]
        best[metric] = max(values) if values else None
    started = [c["started"] for c in cells if isinstance(c.get("started"), int | float)]
    return HistoryRow(  # names and errors come from files: control characters escaped for the terminal
        key=key,
        path=path,
        kind=kind,
        name=safe(name),
        backbones=list(dict.fromkeys(safe(c.get("backbone") or "?") for c in cells)),
        strategies=sorted({safe(c.get("strategy") or "?") for c in cells}, key=strategy_key),
        statuses={safe(k): v for k, v in statuses.items()},
        best={k: None if v is None else (v[0], safe(v[1])) for k, v in best.items()},
        started=min(started) if started else None,
        errors=[safe(f"{c.get('id')}: {c['error']}") for c in cells if c.get("error")],
    )


def when(t: float | None) -> str:
    return "–" if t is None else time.strftime("%Y-%m-%d %H:%M", time.localtime(t))


class HistoryScreen(SectionScreen):
    SECTION = "history"
    HELP = (
        "Every grid and run under the runs root (default ./runs), newest first, from the engine's results index "
        "(index.sqlite in the root, rebuilt with r). The metric columns show the best cell's macro mAP and its "
        "strategy. Enter opens the selected grid or run in Results; u resumes a grid that stopped; a attaches to a "
        "grid running elsewhere (hbt-bench run, another terminal) and follows it on Run."
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("o", "open", "Open"),
        Binding("u", "resume", "Resume"),
        Binding("a", "attach", "Attach"),
        Binding("r", "reindex", "Reindex"),
        Binding("ctrl+f", "focus_root", "Runs root", show=False),
        Binding("escape", "focus_table", "Runs table", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[HistoryRow] = []

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="history-bar"):
            yield Label("runs root ", classes="inline-label")
            yield KeyedInput(id="runs-root", compact=True)
        yield DataTable(id="runs", cursor_type="row", zebra_stripes=True)
        yield Static("", id="run-detail")

    def on_mount(self) -> None:
        table = self.query_one("#runs", DataTable)
        self.query_one("#runs-root", Input).value = str(self.hbt.runs_root)
        self.reload()
        table.focus()

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        if self.is_mounted:
            self.reload()

    @property
    def root(self) -> Path:
        return Path(self.query_one("#runs-root", Input).value.strip() or ".")

    def reload(self, reindex: bool = False) -> None:
        self.query_one("#run-detail", Static).update(Text("reading the results index…", style="italic dim"))
        self._load(self.root, reindex)

    @work(thread=True, exclusive=True, group="history", exit_on_error=False)
    def _load(self, root: Path, reindex: bool) -> list[HistoryRow]:
        return history_rows(self.hbt.backend.list_runs(root, reindex=reindex), root)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "history":
            return
        if event.state == WorkerState.SUCCESS:
            self.show(event.worker.result)  # type: ignore[arg-type]
        elif event.state == WorkerState.ERROR:
            self.show([])
            error = event.worker.error
            self.hbt.show_error(error, title="history", log=False)
            self.query_one("#run-detail", Static).update(
                Text.assemble(("✗ ", "bold red"), (error_text(error) if error else "error", "red"))
            )

    def show(self, rows: list[HistoryRow]) -> None:
        self.rows = rows
        table = self.query_one("#runs", DataTable)
        lines: list[tuple[str, list[Text]]] = []
        for r in rows:
            cells = r.cells_text() if r.kind == "grid" else r.strategies[0]
            metrics = []
            for metric, _ in METRICS:
                best = r.best[metric]
                metrics.append(Text("–" if best is None else f"{best[0]:.4f}", justify="right"))
            line = [
                Text(r.name, style="bold" if r.kind == "grid" else ""),
                Text(", ".join(r.backbones)),
                Text(cells),
                Text(r.status, style=STATUS_STYLES.get(r.status, "")),
                *metrics,
                Text(when(r.started)),
            ]
            lines.append((r.key, line))
        table.clear(columns=True)
        labels = ["run", "backbone", "cells", "status", *(label for _, label in METRICS), "started"]
        for i, label in enumerate(labels):  # explicit widths: the table never has to measure itself later
            width = max([len(label), *(line[i].cell_len for _, line in lines)])
            justify: JustifyMethod = "right" if label in ("mono", "cross", "multi") else "left"
            table.add_column(Text(label, justify=justify), key=label, width=width)
        for key, line in lines:
            table.add_row(*line, key=key)
        self._detail()

    @on(DataTable.RowHighlighted, "#runs")
    def _highlighted(self) -> None:
        self._detail()

    @on(DataTable.RowSelected, "#runs")
    def _selected(self) -> None:
        self.action_open()

    @on(Input.Submitted, "#runs-root")
    def _root_submitted(self) -> None:
        self.reload()
        self.query_one("#runs", DataTable).focus()

    def selected(self) -> HistoryRow | None:
        table = self.query_one("#runs", DataTable)
        if not self.rows or table.cursor_row >= len(self.rows):
            return None
        return self.rows[table.cursor_row]

    def _detail(self) -> None:
        detail = self.query_one("#run-detail", Static)
        row = self.selected()
        if row is None:
            detail.update(Text(f"no runs under {self.root} yet: launch a grid from Setup (1)", style="dim"))
            return
        text = Text.assemble((f"{row.kind} ", "bold"), (display_path(row.path), "cyan"))
        counts = ", ".join(f"{n} {s}" for s, n in row.statuses.items())
        if row.total is not None and row.total > row.done:
            counts += f" of {row.total} planned ({row.total - row.done} never ran)"
        text.append(f"\n{counts}; strategies {' '.join(row.strategies)}", style="dim")
        best = [f"{label} {b[1]}" for (metric, label) in METRICS if (b := row.best[metric])]
        if best:
            text.append(f"; best cell: {', '.join(best)}", style="dim")
        if row.errors:
            text.append(f"\n{row.errors[0]}", style="red")
        detail.update(text)

    def action_open(self) -> None:
        row = self.selected()
        if row is not None:
            self.hbt.open_results(row.path)

    def action_resume(self) -> None:
        """Resume the selected grid: complete cells are kept, the interrupted one restarts from its checkpoint."""
        row = self.selected()
        if row is None or row.kind != "grid":
            self.notify("select a grid to resume", severity="warning")
            return
        if row.total is not None and row.statuses.get("complete", 0) >= row.total:
            self.notify(f"{row.name} is complete: nothing to resume")
            return
        if self.hbt.backend.grid_live(row.path):
            self.notify(f"{row.name} is still running: following it instead", title="resume")
            self.post_message(AttachGrid(row.path))
            return
        try:
            preset = self.hbt.backend.grid_preset(row.path)
        except Exception as exc:
            self.hbt.show_error(exc, title="resume")
            return
        self.post_message(LaunchGrid(preset, row.path, resume=True))

    def action_attach(self) -> None:
        """Follow the selected grid on Run (it runs elsewhere; detaching or quitting leaves it running)."""
        row = self.selected()
        if row is None or row.kind != "grid":
            self.notify("select a grid to attach to", severity="warning")
            return
        self.post_message(AttachGrid(row.path))

    def action_reindex(self) -> None:
        self.reload(reindex=True)

    def action_focus_table(self) -> None:
        self.query_one("#runs", DataTable).focus()

    def action_focus_root(self) -> None:
        self.query_one("#runs-root", Input).focus()
