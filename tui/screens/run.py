"""Run: the grid's cells with their status, the live loss chart, the current cell's numbers and the log."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.widgets import ProgressBar, Static

from ..backend import display_path
from ..components.cell_table import STATUS_STYLES, CellTable
from ..components.log_pane import LogPane
from ..components.loss_chart import LossChart
from ..components.run_stats import RunStats
from ..run_state import LogLine
from .base import SectionScreen


class RunScreen(SectionScreen):
    SECTION = "run"
    HELP = (
        "The grid being run: one row per cell (backbone × strategy × seed, plus the untrained baseline), the "
        "training loss with one line per strategy, the current cell's learning rate, throughput, ETA and batch "
        "composition, the ETA of the cell, of its current task and of the whole grid, where each cell runs (executor, "
        "job id, node) and the log. The grid runs in its own process, never in hbt-tui: d detaches (it goes on; "
        "History's a attaches again), ctrl+q asks whether to leave it running. ctrl+c stops it (after asking): cells "
        "in training after their current step (checkpointed), a cell being evaluated at once (its trained model is "
        "kept); finished cells are kept and History (u) resumes it."
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+c", "stop_grid", "Stop grid"),
        Binding("d", "detach", "Detach"),
        Binding("o", "open_results", "Open results"),
    ]

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="run-header"):
            yield Static("", id="run-title")
            yield ProgressBar(id="grid-progress", show_eta=False)
        yield CellTable(id="cells")
        with Horizontal(id="run-middle"):
            yield LossChart(id="loss")
            with Vertical(id="stats-pane"):
                yield RunStats(id="stats")
        yield LogPane(id="log")

    def on_mount(self) -> None:
        self.rebuild()

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self.rebuild()

    def rebuild(self) -> None:
        """Render the whole run state (on mount, on return to the screen, on a new run)."""
        state = self.hbt.run_state
        log = self.query_one(LogPane)
        log.reset()
        table = self.query_one(CellTable)
        table.clear(columns=True)
        if state is not None:
            table.show(state.cells.values())
            for line in state.logs:
                log.add(line.message, line.level, line.cell)
        self._refresh_live()

    def apply_update(self, line: LogLine | None = None) -> None:
        """The app folded an event (or the grid's end) into its run state: show what changed."""
        self.apply_lines([line] if line is not None else [])

    def apply_lines(self, lines: list[LogLine]) -> None:
        """The app folded a poll's events into its run state: show what changed, redrawn once."""
        state = self.hbt.run_state
        if state is None:
            return
        try:
            log = self.query_one(LogPane)
            for line in lines:
                log.add(line.message, line.level, line.cell)
            self.query_one(CellTable).show(state.cells.values())
            self._refresh_live()
        except NoMatches:  # not composed yet (on_mount's rebuild draws it all), or being taken down as the app exits
            return

    def _refresh_live(self) -> None:
        state = self.hbt.run_state
        self.query_one(RunStats).show(state)
        self.query_one(LossChart).set_curves(state.curves() if state else {})
        bar = self.query_one("#grid-progress", ProgressBar)
        title = self.query_one("#run-title", Static)
        if state is None:
            title.update(Text("no grid yet", style="dim"))
            bar.update(total=None, progress=0)
        else:
            done = sum(1 for c in state.cells.values() if c.status in ("complete", "failed"))
            bar.update(total=max(len(state.cells), 1), progress=done)
            title.update(
                Text.assemble(
                    (state.name, "bold"),
                    " → ",
                    (display_path(state.out), "cyan"),
                    "  ",
                    (state.status, STATUS_STYLES.get(state.status, "bold cyan")),
                    f"  {done}/{len(state.cells)} cells ",
                )
            )
        self.update_status()
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        state = self.hbt.run_state
        if action in ("stop_grid", "detach"):  # shown only while there is a grid to stop or leave
            return state is not None and state.status == "running"
        if action == "open_results":
            return True if state is not None else None
        return True

    def action_stop_grid(self) -> None:
        self.hbt.action_stop_grid()

    def action_detach(self) -> None:
        self.hbt.detach()

    def action_open_results(self) -> None:
        state = self.hbt.run_state
        if state is not None:
            self.hbt.open_results(state.out)
