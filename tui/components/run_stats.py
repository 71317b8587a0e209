"""The live numbers of the cell being trained: stage, step, learning rate, throughput, ETA, batch composition."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from ..run_state import RunState


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"


def composition(batches: dict[str, int]) -> str:
    """'xx 12 · xy 8' (batches of each kind so far)."""
    return " · ".join(f"{k} {v}" for k, v in batches.items()) if batches else "–"


def xx_share(batches: dict[str, int]) -> str:
    total = sum(batches.values())
    return f"{100 * batches.get('xx', 0) / total:.0f}%" if total else "–"


class RunStats(Static):
    DEFAULT_CSS = """
    RunStats {
        height: auto;
        padding: 0 1;
    }
    """

    def show(self, state: RunState | None) -> None:
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="dim", no_wrap=True, min_width=7)
        grid.add_column(overflow="fold")  # a long stage (a path, a dataset's sizes) wraps instead of being cut
        if state is None:
            self.update(Text("no grid running: pick a preset on Setup (1) and launch it", style="dim"))
            return
        cell = state.current_cell
        step = f"{cell.step}/{cell.total_steps}" if cell and cell.total_steps else "–"
        grid.add_row("stage", state.stage or ("–" if state.running else state.status))
        task = state.task if state.running else None
        task_eta = state.task_eta_s() if task else None
        left = f"  ~{duration(task_eta)} left" if task_eta is not None else ""
        grid.add_row("task", f"{task[0]} {task[1]}/{task[2]}{left}" if task else "–")
        if cell is not None and cell.job_id:
            grid.add_row("runs on", f"{cell.executor} job {cell.job_id}" + (f" · {cell.node}" if cell.node else ""))
        grid.add_row("step", step + (f"  epoch {state.epoch:.2f}" if state.epoch is not None and cell else ""))
        grid.add_row("lr", f"{state.lr:.2e}" if state.lr is not None else "–")
        speed = f"{state.samples_per_s:.1f} samples/s" if state.samples_per_s is not None else "–"
        grid.add_row("speed", speed)
        cell_eta, grid_eta = state.eta_s(), state.grid_eta_s()
        eta = [f"{duration(cell_eta)} cell"] if cell_eta is not None else []
        eta += [f"{duration(grid_eta)} grid"] if grid_eta is not None else []
        grid.add_row("ETA", " · ".join(eta) or "–")
        grid.add_row("batches", composition(state.batches))
        grid.add_row("X-X", xx_share(state.batches))
        self.update(grid)
