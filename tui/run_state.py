"""The state of the grid being run, folded from engine events (pure: no widgets, easy to test).

The app keeps one `RunState`; the Run screen renders it, so leaving and coming back to the screen loses nothing.
Times come from the events themselves (`event.t`), never from a clock read here.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..engine.common.events import EvalDone, Event, Log, Progress, RunFinished, RunStarted, Stage, TrainStep
from ..engine.common.vocabulary import BASELINE
from ..engine.evaluation.results import MISSING

FINAL = ("complete", "failed", "cancelled")


@dataclass
class CellState:
    id: str
    backbone: str
    strategy: str
    seed: int
    status: str = "pending"  # pending | running | complete | failed | cancelled
    step: int = 0
    total_steps: int = 0
    loss: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)  # mono_map, cross_map, multi_map
    error: str = ""
    started: float | None = None  # time of the cell's first event (event.t)
    finished: float | None = None  # time of its RunFinished
    kept: bool = False  # complete before this session (a resumed grid skips it)
    executor: str = ""  # where it runs (grid.json's job record): local, processes, slurm, ray
    job_id: str = ""
    node: str = ""
    curve: dict[int, float] = field(default_factory=dict)  # its loss by step (a later attempt's point replaces one)


@dataclass(frozen=True)
class CellSnapshot:
    """What a grid directory says about one cell before a resume (read by the backend from run.json/results.json)."""

    id: str
    status: str  # complete | failed | cancelled | interrupted | running | pending (no run directory yet)
    error: str = ""
    step: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    loss_curve: list[tuple[int, float]] = field(default_factory=list)


@dataclass
class LogLine:
    level: str
    message: str
    cell: str = ""


@dataclass
class RunState:
    name: str
    out: Path
    batch_size: int = 0
    cells: dict[str, CellState] = field(default_factory=dict)
    status: str = "running"  # running | cancelling | complete | failed | cancelled
    grid_done: int = 0
    grid_total: int = 0
    current: str = ""  # the cell being run
    stage: str = ""
    lr: float | None = None
    samples_per_s: float | None = None
    epoch: float | None = None
    batches: dict[str, int] = field(default_factory=dict)
    task: tuple[str, int, int] | None = None  # progress of the current stage's task (e.g. search 5/12)
    task_start: tuple[float, int] | None = None  # (time, done) at the task's first progress event: its rate
    task_t: float = 0.0  # time of the task's latest progress event
    error: str = ""
    last_t: float = 0.0  # time of the newest event
    logs: list[LogLine] = field(default_factory=list)
    started_at: float = 0.0  # when this session began following the grid (cells complete before it are 'kept')

    @property
    def running(self) -> bool:
        return self.status in ("running", "cancelling")

    @property
    def current_cell(self) -> CellState | None:
        return self.cells.get(self.current)

    def add_cell(self, cell_id: str, backbone: str, strategy: str, seed: int) -> None:
        self.cells[cell_id] = CellState(cell_id, backbone, strategy, seed)
        self.grid_total = len(self.cells)

    def cell(self, cell_id: str) -> CellState:
        if cell_id not in self.cells:  # a cell the preset did not announce (e.g. an id rule changed): show it anyway
            backbone, strategy, seed = [*cell_id.split("__"), "", "", ""][:3]
            self.cells[cell_id] = CellState(cell_id, backbone, strategy, int(seed[1:]) if seed[1:].isdigit() else 0)
        return self.cells[cell_id]

    def seed(self, snapshots: list[CellSnapshot]) -> None:
        """A resumed grid: cells already complete are shown complete (the engine skips them without events); the
        others will run again and stay pending, with a log line saying how they stopped."""
        for snap in snapshots:
            cell = self.cell(snap.id)
            if snap.status == "complete":
                cell.status, cell.kept = "complete", True
                cell.metrics = dict(snap.metrics)
                cell.step = cell.total_steps = snap.step
                cell.curve.update(dict(snap.loss_curve))
                cell.loss = snap.loss_curve[-1][1] if snap.loss_curve else None
            elif snap.status != "pending":
                where = f" at step {snap.step}" if snap.step else ""
                reason = f": {snap.error}" if snap.error else ""
                self.log(f"was {snap.status}{where}{reason}; runs again", "warning", snap.id)
        kept = sum(1 for c in self.cells.values() if c.kept)
        self.log(f"resumed: {kept} of {len(self.cells)} cells already complete, kept")

    def log(self, message: str, level: str = "info", cell: str = "") -> LogLine:
        line = LogLine(level, message, cell)
        self.logs.append(line)
        return line

    # ---- events ------------------------------------------------------------------------------------------------

    def apply(self, event: Event) -> LogLine | None:
        """Fold one event in; returns the log line it produced, if any."""
        self.last_t = max(self.last_t, event.t)
        cell = self.cell(event.cell) if event.cell else None
        if cell is not None and cell.started is None:
            cell.started = event.t
        if cell is not None and cell.status == "pending" and not isinstance(event, RunFinished):
            cell.status = "running"
            self.current = cell.id
        elif cell is not None and isinstance(event, TrainStep | Stage) and cell.status == "running":
            self.current = cell.id  # cells running at once (processes, Slurm, Ray): the live numbers follow the newest
            self.lr = self.samples_per_s = self.epoch = None  # the live numbers are the new cell's from here
            self.batches, self.task = {}, None
        if isinstance(event, Progress):
            if event.task == "grid":
                self.grid_done, self.grid_total = event.done, max(event.total, self.grid_total)
                return None
            if self.task is None or self.task[0] != event.task or event.done < self.task[1]:
                self.task_start = (event.t, event.done)  # a new task (or one started over): its rate from here
            self.task, self.task_t = (event.task, event.done, event.total), event.t
            return None
        if isinstance(event, TrainStep):
            self.lr, self.samples_per_s, self.epoch = event.lr, event.samples_per_s, event.epoch
            self.batches = dict(event.batches)
            if cell is not None:
                cell.step, cell.total_steps, cell.loss = event.step, event.total_steps, event.loss
                cell.curve[event.step] = event.loss
                if event.strategy and cell.strategy != event.strategy:
                    cell.strategy = event.strategy
            return None
        if isinstance(event, Stage):
            self.stage = f"{event.name} {event.detail}".strip()
            self.task = self.task_start = None
            return self.log(self.stage, "stage", event.cell)
        if isinstance(event, EvalDone):
            if cell is not None:
                cell.metrics.update({k: float(v) for k, v in event.summary.items() if v is not None})
            shown = "  ".join(f"{k} {MISSING if v is None else f'{v:.4f}'}" for k, v in event.summary.items())
            return self.log(f"{event.dataset}: {shown}", "result", event.cell)
        if isinstance(event, Log):
            return self.log(event.message, event.level, event.cell)
        if isinstance(event, RunStarted):
            if cell is not None:  # a new attempt (a resumed or requeued cell): it runs again
                cell.status, cell.error, cell.finished = "running", "", None
                if cell.kept:
                    cell.kept = False
            return self.log(f"started {event.run_dir}", "info", event.cell)
        if isinstance(event, RunFinished):
            if cell is not None:
                cell.status = event.status
                cell.error = event.error
                cell.finished = event.t
                cell.kept = event.status == "complete" and 0 < event.t < self.started_at
            self.stage = ""
            level = "error" if event.status == "failed" else "info"
            text = f"{event.status}" + (f": {event.error}" if event.error else "")
            return self.log(text, level, event.cell)
        return None

    def finish(self, status: str, error: str = "") -> None:
        """The grid worker ended: cells that never ran are cancelled (or failed, when the grid stopped on an error)."""
        self.status = status
        self.error = error
        for cell in self.cells.values():
            if status == "cancelled" and cell.status == "complete" and 0 < cell.step < cell.total_steps:
                self.log(
                    f"training stopped at step {cell.step}/{cell.total_steps} by the cancel; "
                    "the engine evaluated what was trained and kept the cell",
                    "warning",
                    cell.id,
                )
            if cell.status == "pending":
                cell.status = "cancelled" if status == "cancelled" else ("failed" if status == "failed" else "pending")
            elif cell.status == "running":
                cell.status = "failed" if status == "failed" else "cancelled"
                if error and not cell.error:
                    cell.error = error
        self.stage = ""
        self.current = ""
        self.lr = self.samples_per_s = self.epoch = None  # nothing is training any more: no stale live numbers
        self.task, self.task_start, self.batches = None, None, {}

    # ---- derived -----------------------------------------------------------------------------------------------

    def curves(self) -> dict[str, list[tuple[float, float]]]:
        """One loss line per strategy: the mean over the cells of that strategy at each step (each cell's curve with
        a later attempt's point for a step replacing an earlier one's)."""
        by_step: dict[str, dict[int, list[float]]] = defaultdict(dict)
        for cell in self.cells.values():
            for step, loss in cell.curve.items():
                by_step[cell.strategy].setdefault(step, []).append(loss)
        return {
            strategy: [(float(step), sum(v) / len(v)) for step, v in sorted(steps.items())]
            for strategy, steps in by_step.items()
        }

    def place(self, jobs: dict[str, Any]) -> None:
        """Where each cell runs, from grid.json's job records (executor, job id, node)."""
        for cell_id, job in jobs.items():
            if cell_id in self.cells:
                cell = self.cells[cell_id]
                cell.executor, cell.job_id, cell.node = job.executor, job.id, job.node

    def task_eta_s(self) -> float | None:
        """Seconds left in the current task (encoding, search) at the rate of its progress events so far."""
        if self.task is None or self.task_start is None:
            return None
        _, done, total = self.task
        t0, done0 = self.task_start
        if done <= done0 or self.task_t <= t0 or done >= total:
            return None
        return (total - done) / ((done - done0) / (self.task_t - t0))

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for cell in self.cells.values():
            out[cell.status] = out.get(cell.status, 0) + 1
        return out

    def eta_s(self) -> float | None:
        """Seconds left in the current cell's training, from the throughput the engine reports; None once its
        training is over (encoding or evaluating: no training ETA, never a false '0s')."""
        cell = self.current_cell
        if cell is None or not self.samples_per_s or not self.batch_size or not cell.total_steps:
            return None
        if cell.step >= cell.total_steps:
            return None
        steps_per_s = self.samples_per_s / self.batch_size
        return max(cell.total_steps - cell.step, 0) / steps_per_s if steps_per_s > 0 else None

    def grid_eta_s(self) -> float | None:
        """Seconds left in the whole grid: the cells still to run, each at the mean duration of the cells of its kind
        (baseline: evaluation only; trained: training + evaluation) finished in this session, plus what is left of
        the current cell (the training ETA, or its kind's mean minus the time it has run). None until a cell of
        each kind still to run has finished, when nothing is left to run, or when the grid is not running."""
        if not self.running:
            return None

        def kind(c: CellState) -> str:
            return "eval" if c.strategy == BASELINE else "train"

        spans: dict[str, list[float]] = {}
        for c in self.cells.values():
            if c.status == "complete" and not c.kept and c.started is not None and c.finished is not None:
                spans.setdefault(kind(c), []).append(max(c.finished - c.started, 0.0))
        mean = {k: sum(v) / len(v) for k, v in spans.items()}
        left = 0.0
        pending = [c for c in self.cells.values() if c.status == "pending"]
        current = self.current_cell
        if not pending and current is None:
            return None
        for c in pending:
            if kind(c) not in mean:
                return None
            left += mean[kind(c)]
        if current is not None and current.status == "running":
            elapsed = max(self.last_t - (current.started or self.last_t), 0.0)
            if kind(current) in mean:
                left += max(mean[kind(current)] - elapsed, self.eta_s() or 0.0)
            elif (eta := self.eta_s()) is not None:
                left += eta
            else:
                return None
        return left
