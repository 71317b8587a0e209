"""Submit a grid's cells as jobs (worker processes, Slurm jobs, Ray tasks) and follow them to their end.

The submitting process is the only writer of grid.json: it records each job (executor, id, node) as it learns it.
Every job runs `python -m hbt.engine.runs.worker` on one cell and writes only that cell's folder; the submitter
re-emits the events each cell appends to its events.jsonl, so the CLI and the TUI show the same progress as for a
local grid. A job that ends without marking its cell (killed, time limit, out of memory, node failure) leaves the
cell failed with the scheduler's word for it. `resume` never submits a second copy of a cell whose job is still
queued or running: it follows that job instead. A cancel asks every live job to stop (the cell checkpoints and marks
itself cancelled); cells not submitted yet are marked cancelled.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from ..common.errors import UserError
from ..common.events import Event, EventBus, EventTail, RunFinished
from ..common.io import ensure_dir, write_json
from ..common.run_config import RunConfig
from .executor import ExecutorSpec
from .jobs import ENDED, QUEUED, RUNNING, CellLaunch, GridRecord, JobRecord, JobState, stale, worker_alive
from .launch import Launch
from .local_procs import ProcessBackend
from .rundir import RunDir, record_failure

POLL_S = 1.0
WORKER_CONFIG = "launch-config.json"  # the cell's settings, written by the submitter before its job starts


class JobBackend(Protocol):
    """One executor's side of the loop: submit cells, say how their jobs are, cancel them."""

    kind: str
    capacity: int | None  # cells at once (None: the scheduler decides)

    def submit(self, cells: list[CellLaunch]) -> list[JobRecord]: ...

    def probe(self, records: dict[str, JobRecord]) -> dict[str, JobState]: ...

    def cancel(self, records: dict[str, JobRecord], hard: bool = False) -> None: ...

    def finish(self) -> None: ...  # the grid's jobs are all over (release what the backend keeps for them)

    def close(self) -> None: ...  # this process is done with the backend


def backend_for(spec: ExecutorSpec, out: Path, doc: dict[str, Any] | None = None, connect: bool = True) -> JobBackend:
    """The job backend of an executor for the grid at `out` (`connect`: join the Ray cluster; a status or cancel
    of a grid elsewhere reconnects to the address its grid.json recorded)."""
    if spec.kind == "slurm":
        # (extra: slurm)
        from .slurm import SlurmBackend

        return SlurmBackend(spec, out, doc)
    if spec.kind == "ray":
        # (extra: ray)
        from .ray_cluster import RayBackend

        return RayBackend(spec, out, doc)

    return ProcessBackend(spec.workers if spec.kind == "processes" else 1, kind=spec.kind)


def worker_command(config_file: Path, out: Path, resume: bool, nproc: int = 1) -> list[str]:
    """`python -m hbt.engine.runs.worker ...`, under torchrun when a cell has several GPUs."""
    args = ["--config", str(config_file.resolve()), "--out", str(out.resolve()), *(["--resume"] if resume else [])]
    return Launch("torchrun" if nproc > 1 else "none", nproc=max(nproc, 1)).command(args)


def _stamped(event: Event, cell_id: str) -> Event:
    return replace(event, cell=cell_id) if not event.cell else event


@dataclass
class _Live:
    record: JobRecord
    tail: EventTail
    owner: JobBackend


class Dispatcher:
    """The submit-and-follow loop of one grid run (see the module docstring)."""

    def __init__(
        self,
        grid: GridRecord,
        base: RunConfig,
        bus: EventBus,
        backend: JobBackend,
        previous: JobBackend | None = None,
        poll_s: float = POLL_S,
        nproc: int = 1,
    ) -> None:
        self.grid = grid
        self.base = base
        self.bus = bus
        self.backend = backend
        self.previous = previous or backend  # the backend that submitted an earlier attempt's jobs (resume)
        self.poll_s = poll_s
        self.nproc = nproc
        self.live: dict[str, _Live] = {}
        self.configs: dict[str, RunConfig] = {}
        self.summary = {"complete": 0, "failed": 0, "skipped": 0, "cancelled": 0}
        self.stop_error = ""

    @property
    def out(self) -> Path:
        return self.grid.out

    def run(self, resume: bool, cancel: Callable[[], bool] | None) -> dict[str, int]:
        cells = self.grid.doc["cells"]
        waiting = self._sort(cells, resume)
        total, cancelling = len(cells), False
        try:
            while waiting or self.live:
                if ((cancel is not None and cancel()) or self.stop_error) and not cancelling:
                    cancelling = True
                    self._cancel_all(waiting)
                    waiting = []
                waiting = self._submit(waiting)
                self._follow()
                self.bus.progress("grid", self.summary["complete"] + self.summary["failed"], total)
                if self.live:
                    time.sleep(self.poll_s)
            for backend in self._backends():
                backend.finish()
        except KeyboardInterrupt:  # a second Ctrl-C: stop every job now
            for owner in {id(x.owner): x.owner for x in self.live.values()}.values():
                owner.cancel({cid: x.record for cid, x in self.live.items() if x.owner is owner}, hard=True)
            raise
        finally:
            for backend in self._backends():
                with contextlib.suppress(Exception):
                    backend.close()
        if self.stop_error:
            raise UserError(self.stop_error)
        if cancelling:
            self.summary["cancelled"] = max(self.summary["cancelled"], 1)
        return self.summary

    def _backends(self) -> list[JobBackend]:
        return list({id(b): b for b in (self.backend, self.previous)}.values())

    # ---- the steps ---------------------------------------------------------------------------------------------

    def _sort(self, cells: list[dict[str, Any]], resume: bool) -> list[CellLaunch]:
        """Complete cells are skipped; on resume a cell whose job still lives is followed, not submitted again; the
        others are prepared (their config written) and recorded as waiting."""
        records = {c["id"]: r for c in cells if (r := self.grid.job(c["id"])) is not None and r.id}
        states = self.previous.probe(records) if resume and records else {}
        waiting: list[CellLaunch] = []
        for cell in cells:
            run = RunDir(self.out / cell["dir"])
            if run.is_complete():
                self.summary["complete"] += 1
                self.summary["skipped"] += 1
                continue
            state = states.get(cell["id"])
            if state is not None and state.state in (QUEUED, RUNNING):
                record = records[cell["id"]]
                self.bus.log(f"cell {cell['id']} is still {state.state} as job {record.id}: followed, not resubmitted")
                self.live[cell["id"]] = _Live(record, EventTail.at_end(run.events_file), self.previous)
                continue
            waiting.append(self._prepare(cell, run, resume))
        for launch in waiting:  # what `status` shows until a job takes them
            self.grid.set_job(launch.cell_id, JobRecord(self.backend.kind, submitted=time.time(), state=QUEUED))
        return waiting

    def _prepare(self, cell: dict[str, Any], run: RunDir, resume: bool) -> CellLaunch:
        config = replace(self.base, backbone=cell["backbone"], strategy=cell["strategy"], seed=cell["seed"])
        self.configs[cell["id"]] = config
        ensure_dir(run.path)
        write_json(run.path / WORKER_CONFIG, config.to_dict())
        command = worker_command(run.path / WORKER_CONFIG, run.path, resume, self.nproc)
        return CellLaunch(cell["id"], run.path, command)

    def _submit(self, waiting: list[CellLaunch]) -> list[CellLaunch]:
        if not waiting:
            return waiting
        capacity = self.backend.capacity
        room = len(waiting) if capacity is None else capacity - sum(x.owner is self.backend for x in self.live.values())
        batch, rest = waiting[: max(room, 0)], waiting[max(room, 0) :]
        if batch:
            tails = {c.cell_id: EventTail.at_end(RunDir(c.out).events_file) for c in batch}
            for launch, record in zip(batch, self.backend.submit(batch), strict=True):
                self.grid.set_job(launch.cell_id, record)
                self.live[launch.cell_id] = _Live(record, tails[launch.cell_id], self.backend)
                where = f" on {record.node}" if record.node else ""
                self.bus.log(f"cell {launch.cell_id}: {record.executor} job {record.id}{where}")
        return rest

    def _follow(self) -> None:
        """Re-emit new events; ask each backend about its jobs; settle the cells whose job ended."""
        for cid, live in self.live.items():
            for event in live.tail.read():
                self.bus.emit(_stamped(event, cid))
        for owner in {id(x.owner): x.owner for x in self.live.values()}.values():
            mine = {cid: x.record for cid, x in self.live.items() if x.owner is owner}
            for cid, state in owner.probe(mine).items():
                live = self.live[cid]
                record = replace(
                    live.record,
                    state=state.state,
                    raw=state.raw,
                    reason=state.reason,
                    node=state.node or live.record.node,
                )
                if record.node and not live.record.node and state.state == RUNNING:
                    self.bus.log(f"cell {cid}: running on {record.node}")
                live.record = record
                self.grid.set_job(cid, record)
                if state.state == ENDED and not worker_alive(RunDir(self.out / self._dir(cid))):
                    for event in live.tail.read():
                        self.bus.emit(_stamped(event, cid))
                    self._settle(cid, state)
                    del self.live[cid]

    def _settle(self, cell_id: str, state: JobState) -> None:
        """The job ended: the cell's folder says how; if it says nothing conclusive, the scheduler's word does."""
        run = RunDir(self.out / self._dir(cell_id))
        status = run.status() if run.status_file.exists() else {}
        mark = None if stale(status, self.live[cell_id].record) else status.get("status")
        if run.is_complete():
            self.summary["complete"] += 1
        elif mark in ("failed", "interrupted"):
            self.summary["failed"] += 1
            if status.get("user_error") and not self.stop_error:
                self.stop_error = str(status.get("error") or "a cell met a user error")
        elif mark == "cancelled":
            self.summary["cancelled"] += 1
        else:  # killed, timed out, out of memory, lost its node, or never started
            cancelled = state.raw.upper().startswith("CANCELLED") and mark is None
            job = self.live[cell_id].record
            said = f"{state.raw}: {state.reason}" if state.reason and state.raw else (state.raw or state.reason)
            error = f"{job.executor} job {job.id} ended ({said or 'no reason given'}) without finishing the cell"
            if cancelled:
                self._mark_cancelled(run, "cancelled before it started")
                self.summary["cancelled"] += 1
                return
            bus = EventBus()  # (the event is emitted here, stamped with the cell, not through the bus's current cell)
            bus.subscribe(lambda e: self.bus.emit(_stamped(e, cell_id)))
            record_failure(run, error, bus, config=self.configs.get(cell_id))
            self.summary["failed"] += 1

    def _cancel_all(self, waiting: list[CellLaunch]) -> None:
        for owner in {id(x.owner): x.owner for x in self.live.values()}.values():
            owner.cancel({cid: x.record for cid, x in self.live.items() if x.owner is owner})
        for launch in waiting:  # never submitted: cancelled before they started
            self._mark_cancelled(RunDir(launch.out), "cancelled before it was submitted")
            self.grid.set_job(
                launch.cell_id,
                JobRecord(
                    self.backend.kind,
                    submitted=time.time(),
                    state=ENDED,
                    raw="CANCELLED",
                    reason="cancelled before it was submitted",
                ),
            )
            self.summary["cancelled"] += 1

    def _mark_cancelled(self, run: RunDir, why: str) -> None:
        ensure_dir(run.path)
        run.mark("cancelled", error=why)
        self.bus.emit(RunFinished(run_dir=str(run.path), status="cancelled", error=why, cell=run.path.name))

    def _dir(self, cell_id: str) -> str:
        return str(next(c["dir"] for c in self.grid.doc["cells"] if c["id"] == cell_id))
