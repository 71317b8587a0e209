"""Where each cell of a grid runs: the job records grid.json keeps, and what a cell's state is.

grid.json is written by the submitting process alone; a job writes only its own cell folder. For every cell the
submitter records the executor, the job id (a Slurm job or array task, a worker's pid, a Ray task) and the node it ran
on, and records itself (host, pid, state). A cell's state joins both sides: its folder (run.json, results.json) is
the truth about what the cell did; the scheduler tells whether its job is still queued or running, or why it ended
(time limit, out of memory, preempted, node failure) when the cell could not say so itself.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from ..common.events import Event, RunFinished, Stage, TrainStep, read_events
from ..common.io import write_json
from .rundir import RunDir

# what `status` shows for a cell
CELL_STATES = ("pending", "queued", "running", "complete", "failed", "cancelled", "interrupted")
# a job as the scheduler sees it
QUEUED, RUNNING, ENDED, UNKNOWN = "queued", "running", "ended", "unknown"


def this_host() -> str:
    return socket.gethostname()


@dataclass(frozen=True)
class CellLaunch:
    """What a job needs to run one cell: its id, folder and worker command line (the dispatcher makes it, a backend
    submits it)."""

    cell_id: str
    out: Path
    command: list[str]


@dataclass
class JobRecord:
    """One cell's job, as grid.json records it."""

    executor: str
    id: str = ""  # scheduler job id; "" while the cell waits in the submitter's own queue (local, processes)
    node: str = ""
    host: str = ""  # where the submitter started it (a pid means something only there)
    submitted: float = 0.0
    state: str = QUEUED  # queued | running | ended | unknown: the scheduler's last answer
    raw: str = ""  # the scheduler's own word for it (PENDING, RUNNING, TIMEOUT, exit code 1, ...)
    reason: str = ""  # why it waits or why it ended, in words
    match: str = ""  # a string in the job process's command line (a reused pid is not taken for the job)

    @classmethod
    def from_dict(cls, data: Any) -> JobRecord | None:
        if not isinstance(data, dict) or not isinstance(data.get("executor"), str):
            return None
        names = {f.name for f in fields(cls)}
        try:
            return cls(**{k: v for k, v in data.items() if k in names})
        except TypeError:
            return None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class JobState:
    """A scheduler's answer about one job."""

    state: str  # queued | running | ended | unknown
    raw: str = ""
    reason: str = ""
    node: str = ""


def pid_alive(pid: int, match: str = "") -> bool:
    """A process `pid` exists on this machine, is not a zombie, and (when `match` is given and /proc can tell) has
    `match` in its command line."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    proc = Path("/proc") / str(pid)
    with contextlib.suppress(OSError):
        stat = (proc / "stat").read_text()
        if stat.rpartition(")")[2].split()[:1] == ["Z"]:
            return False
    if match:
        with contextlib.suppress(OSError):
            return match in (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
    return True


class GridRecord:
    """grid.json as the submitting process keeps it; every change is written at once (atomically)."""

    def __init__(self, out: Path, doc: dict[str, Any], read_only: bool = False) -> None:
        self.out = out
        self.doc = doc
        self.read_only = read_only  # a torchrun node other than 0 follows node 0's grid: it never writes grid.json

    @property
    def file(self) -> Path:
        return self.out / "grid.json"

    def job(self, cell_id: str) -> JobRecord | None:
        cell = self._cell(cell_id)
        return JobRecord.from_dict(cell.get("job")) if cell else None

    def set_job(self, cell_id: str, record: JobRecord) -> None:
        cell = self._cell(cell_id)
        if cell is not None and cell.get("job") != record.to_dict():
            cell["job"] = record.to_dict()
            self.save()

    def set_submitter(self, status: str, **extra: Any) -> None:
        """The submitting process: host, pid, status (running, complete, cancelled, failed), times."""
        record = dict(self.doc.get("submitter") or {})
        if status == "running":
            record = {"host": this_host(), "pid": os.getpid(), "started": time.time()}
        record.update(status=status, updated=time.time(), **extra)
        self.doc["submitter"] = record
        self.save()

    def update_submitter(self, **extra: Any) -> None:
        self.doc["submitter"] = {**(self.doc.get("submitter") or {}), **extra}
        self.save()

    def save(self) -> None:
        if not self.read_only:
            write_json(self.file, self.doc)

    def _cell(self, cell_id: str) -> dict[str, Any] | None:
        return next((c for c in self.doc.get("cells", []) if c.get("id") == cell_id), None)


def worker_alive(run: RunDir) -> bool:
    """The process run.json names as running the cell (pid, host) still runs here (a job's wrapper may end before
    the worker it started has marked the cell)."""
    status = run.status() if run.status_file.exists() else {}
    pid = status.get("pid")
    return (
        status.get("status") == "running"
        and status.get("host") == this_host()
        and isinstance(pid, int)
        and pid != os.getpid()
        and pid_alive(pid, run.path.name)
    )


def submitter_alive(doc: dict[str, Any]) -> bool | None:
    """Whether the process that submits this grid still runs: True / False on its own host, None elsewhere (it
    cannot be seen from here)."""
    sub = doc.get("submitter")
    if not isinstance(sub, dict) or sub.get("status") != "running":
        return False
    if sub.get("host") != this_host():
        return None
    pid = sub.get("pid")
    return isinstance(pid, int) and pid_alive(pid)


@dataclass
class CellStatus:
    """One row of `hbt-bench status`."""

    id: str
    state: str  # one of CELL_STATES
    executor: str = ""
    job_id: str = ""
    node: str = ""
    elapsed_s: float | None = None
    last_event: str = ""
    reason: str = ""


def describe_event(event: Event) -> str:
    """A cell's newest event in a few words: 'train 3/10 loss 1.3821', 'evaluate xquad-r', 'failed: ...'."""
    if isinstance(event, TrainStep):
        return f"train {event.step}/{event.total_steps} loss {event.loss:.4f}"
    if isinstance(event, Stage):
        return f"{event.name} {event.detail}".strip()
    if isinstance(event, RunFinished):
        return event.status
    return event.kind.replace("_", " ")


def cell_status(run: RunDir, record: JobRecord | None, job: JobState | None, waiting: bool) -> CellStatus:
    """Join a cell's folder with its job: `job` is the scheduler's answer now (None: not asked), `waiting` whether the
    submitter still holds the cell in its own queue (alive, not started yet)."""
    status = run.status() if run.status_file.exists() else {}
    mark = "" if stale(status, record) and not run.is_complete() else str(status.get("status") or "")
    events = read_events(run.events_file)
    row = CellStatus(id=run.path.name, state="pending", last_event=describe_event(events[-1]) if events else "")
    if record is not None:
        row.executor, row.job_id, row.node = record.executor, record.id, record.node or (job.node if job else "")
    started, updated = status.get("started"), status.get("updated")
    if isinstance(started, int | float):
        end = time.time() if mark == "running" else (updated if isinstance(updated, int | float) else started)
        row.elapsed_s = max(end - started, 0.0)
    error = str(status["error"]) if isinstance(status.get("error"), str) else ""
    # the job's word wins while it lives (a preempted cell marked cancelled waits in the queue again), except a
    # running job whose cell this very attempt has already marked ended: its process is only exiting
    ending = job is not None and job.state == RUNNING and mark in ("failed", "cancelled", "interrupted")
    alive = job is not None and job.state in (QUEUED, RUNNING) and not ending
    if run.is_complete():
        row.state = "complete"
    elif alive:
        assert job is not None
        row.state, row.reason = job.state, job.reason if job.state == QUEUED else ""
    elif mark == "running":
        ended = job is not None and job.state == ENDED
        row.state = "failed" if ended else "running"
        row.reason = f"the job ended without finishing the cell ({_why(job)})" if ended and job else ""
    elif mark in ("failed", "cancelled", "interrupted"):
        row.state, row.reason = mark, error
    elif record is not None and record.id and job is not None and job.state == ENDED:
        cancelled = job.raw.upper().startswith("CANCELLED")
        row.state = "cancelled" if cancelled else "failed"
        row.reason = "cancelled before it started" if cancelled else f"the job died without writing ({_why(job)})"
    elif (record is not None and record.id) or waiting:
        row.state = "queued"
        row.reason = (job.reason if job else "") or ("" if record and record.id else "waiting for a worker slot")
    return row


def stale(status: dict[str, Any], record: JobRecord | None) -> bool:
    """run.json was last written before this job was submitted: it tells an earlier attempt's end, not this one's."""
    updated = status.get("updated")
    return record is not None and bool(record.id) and isinstance(updated, int | float) and updated < record.submitted


def _why(job: JobState) -> str:
    return job.reason or job.raw or "no reason given"
