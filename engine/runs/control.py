"""A grid seen from any process (`hbt-bench status` / `cancel`, the TUI attached to it): every cell's state, job and
node, and a cancel that reaches its jobs wherever they run. Read-only on grid.json (its submitter alone writes it)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..common.errors import UserError
from ..common.events import Event, EventTail
from .dispatch import backend_for
from .executor import ExecutorSpec, spec_from_dict
from .grid_doc import GRID_FILE, GridCell, GridDoc, peek_grid, read_grid
from .jobs import (
    ENDED,
    QUEUED,
    UNKNOWN,
    CellStatus,
    JobRecord,
    JobState,
    cell_status,
    submitter_alive,
)
from .rundir import RunDir

LIVE = ("queued", "running")


@dataclass
class GridStatus:
    out: Path
    preset: str
    executor: ExecutorSpec
    submitter: dict[str, Any]
    submitter_alive: bool | None  # None: it runs on another host (cannot be checked from here)
    cells: list[CellStatus]

    @property
    def live(self) -> list[CellStatus]:
        return [c for c in self.cells if c.state in LIVE]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for cell in self.cells:
            out[cell.state] = out.get(cell.state, 0) + 1
        return out


def _spec_for(kind: str, recorded: ExecutorSpec) -> ExecutorSpec:
    return recorded if recorded.kind == kind else replace(ExecutorSpec(), kind=kind)


def probe_jobs(out: Path, doc: dict[str, Any], records: dict[str, JobRecord]) -> dict[str, JobState]:
    """Ask each executor about the jobs it ran (a backend that cannot be reached answers 'unknown', with why)."""
    recorded = spec_from_dict(doc.get("executor"))
    states: dict[str, JobState] = {}
    kinds = {r.executor for r in records.values()}
    for kind in sorted(kinds):
        mine = {cid: r for cid, r in records.items() if r.executor == kind}
        try:
            backend = backend_for(_spec_for(kind, recorded), out, doc)
        except UserError as exc:
            states.update({cid: JobState(UNKNOWN, reason=str(exc)) for cid in mine})
            continue
        try:
            states.update(backend.probe(mine))
        finally:
            backend.close()
    return states


def grid_status(out: Path, ask: bool = True) -> GridStatus:
    """Every cell of the grid at `out` (`ask`: ask the schedulers about live jobs; else the folders only)."""
    grid = read_grid(out)
    alive = submitter_alive(grid.raw)
    records = {c.id: c.job for c in grid.cells if c.job is not None}
    asked = {cid: r for cid, r in records.items() if r.id and r.state != ENDED}
    states = probe_jobs(out, grid.raw, asked) if ask and asked else {}
    rows = []
    for cell in grid.cells:
        record = records.get(cell.id)
        waiting = alive is not False and record is not None and not record.id and record.state == QUEUED
        rows.append(cell_status(RunDir(out / cell.dir), record, states.get(cell.id), waiting))
    return GridStatus(
        out=out,
        preset=grid.preset,
        executor=spec_from_dict(grid.executor),
        submitter=grid.submitter,
        submitter_alive=alive,
        cells=rows,
    )


def cancel_grid(out: Path) -> str:
    """Stop the grid at `out`. Its submitting process, when it runs here, is asked (SIGINT, as Ctrl-C): it cancels
    its jobs and marks every cell. Otherwise the jobs are cancelled directly (scancel, Ray cancel, SIGINT to a
    worker): a started cell marks itself cancelled, one that never started reads cancelled from its scheduler's state.
    Returns what was done, in one line."""
    grid = read_grid(out)
    doc, sub = grid.raw, grid.submitter
    if submitter_alive(doc):
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(sub["pid"]), signal.SIGINT)
        return f"asked the submitting process (pid {sub['pid']}) to cancel: it stops every job and marks its cell"
    status = grid_status(out)
    live = {c.id for c in status.live}
    if not live:
        return "nothing to cancel: no cell of the grid is queued or running"
    recorded = spec_from_dict(grid.executor)
    records = {c.id: c.job for c in grid.cells if c.id in live and c.job is not None}
    asked = 0
    for kind in sorted({r.executor for r in records.values()}):
        mine = {cid: r for cid, r in records.items() if r.executor == kind and r.id}
        if not mine:
            continue
        backend = backend_for(_spec_for(kind, recorded), out, doc)
        try:
            backend.cancel(mine)
            asked += len(mine)
        finally:
            backend.close()
    where = f" (the submitting process runs on {sub.get('host')}: it sees the jobs end)" if sub.get("host") else ""
    return f"cancelled {asked} job(s) of {len(live)} queued or running cell(s){where}"


def wait_until_settled(out: Path, timeout_s: float, poll_s: float = 2.0) -> GridStatus:
    """Poll the grid until no cell is queued or running (or `timeout_s` passes); the last status."""
    deadline = time.monotonic() + timeout_s
    status = grid_status(out)
    while status.live and time.monotonic() < deadline:
        time.sleep(poll_s)
        status = grid_status(out)
    return status


@dataclass
class FollowUpdate:
    """What changed in a followed grid since the last poll."""

    events: list[Event]  # new events of every cell, stamped with the cell's id, in time order
    jobs: dict[str, JobRecord]  # every cell's job record as grid.json has it now
    submitter: dict[str, Any]
    cells: list[GridCell]  # grid.json's cells


class GridFollower:
    """A grid followed from its folder by another process (the TUI, launched or attached): each cell's events from the
    start of its events.jsonl (earlier attempts included), and grid.json's job records and submitter."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.tails: dict[str, EventTail] = {}
        self.grid: GridDoc | None = None
        self._stamp: tuple[int, int] | None = None

    def _read_grid(self) -> None:
        try:
            st = (self.out / GRID_FILE).stat()
        except OSError:
            return
        if (st.st_mtime_ns, st.st_size) != self._stamp:  # grid.json changes only when its submitter writes it
            grid = peek_grid(self.out)
            if grid is not None:
                self.grid, self._stamp = grid, (st.st_mtime_ns, st.st_size)

    @property
    def doc(self) -> dict[str, Any]:
        return self.grid.raw if self.grid is not None else {}

    def poll(self) -> FollowUpdate:
        self._read_grid()
        cells = self.grid.cells if self.grid is not None else []
        events: list[Event] = []
        for cell in cells:
            tail = self.tails.setdefault(cell.id, EventTail(self.out / cell.dir / "events.jsonl"))
            events += [e if e.cell else replace(e, cell=cell.id) for e in tail.read()]
        events.sort(key=lambda e: e.t)
        jobs = {c.id: c.job for c in cells if c.job is not None}
        submitter = self.grid.submitter if self.grid is not None else {}
        return FollowUpdate(events, jobs, submitter, cells)

    def ended(self) -> tuple[str, str] | None:
        """How the grid's submitting process ended ((status, why) from grid.json, or 'interrupted' when it is gone
        without saying); None while it runs (or runs where it cannot be seen)."""
        sub = self.doc.get("submitter") or {}
        status = str(sub.get("status") or "")
        if status and status != "running":
            return status, ""
        if status == "running" and submitter_alive(self.doc) is False:
            return "interrupted", f"the submitting process (pid {sub.get('pid')}) is gone: resume the grid to finish it"
        return None
