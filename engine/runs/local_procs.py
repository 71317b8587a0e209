"""The `processes` executor: up to N cells at once, each a worker process on this machine (torch threads split).

A worker runs in its own session, so it outlives a submitter killed with kill -9; its job id is its pid (checked
against its command line before it is taken as still running, so a reused pid is not). Its output goes to the cell's
worker.log. The `local` executor's cells run inside the submitting process; their records name that process, and
this backend answers for them too (alive while the submitter is).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from contextlib import suppress
from typing import IO

from .jobs import ENDED, RUNNING, UNKNOWN, CellLaunch, JobRecord, JobState, pid_alive, this_host

LOG = "worker.log"


def thread_env(workers: int) -> dict[str, str]:
    """The environment of a worker sharing this machine's cores with `workers - 1` others: torch threads = cores //
    workers, unless OMP_NUM_THREADS is set (then every worker gets that many: a float reduction's result depends on
    the thread count, so equal counts are what makes two runs' numbers identical)."""
    threads = os.environ.get("OMP_NUM_THREADS") or str(max(1, (os.cpu_count() or 1) // max(workers, 1)))
    return {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "TOKENIZERS_PARALLELISM": "false"}


def exit_reason(code: int) -> str:
    if code < 0:
        with suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
        return f"killed by signal {-code}"
    return f"exit code {code}"


class ProcessBackend:
    """Worker processes on this machine (see the module docstring)."""

    def __init__(self, workers: int, kind: str = "processes") -> None:
        self.kind = kind
        self.capacity: int | None = workers
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: list[IO[bytes]] = []

    def submit(self, cells: list[CellLaunch]) -> list[JobRecord]:
        host, env, records = this_host(), thread_env(self.capacity or 1), []
        for cell in cells:
            log = open(cell.out / LOG, "ab")  # noqa: SIM115 - closed in close()
            self.logs.append(log)
            proc = subprocess.Popen(
                cell.command,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C in the terminal reaches the submitter only; it asks the workers
            )
            self.procs[cell.cell_id] = proc
            records.append(
                JobRecord(
                    self.kind,
                    id=str(proc.pid),
                    node=host,
                    host=host,
                    submitted=time.time(),
                    state=RUNNING,
                    raw="RUNNING",
                    match=cell.out.name,
                )
            )
        return records

    def probe(self, records: dict[str, JobRecord]) -> dict[str, JobState]:
        out: dict[str, JobState] = {}
        for cid, record in records.items():
            proc = self.procs.get(cid)
            if proc is not None and str(proc.pid) == record.id:
                code = proc.poll()
                out[cid] = JobState(RUNNING, "RUNNING") if code is None else JobState(ENDED, exit_reason(code))
            elif record.host and record.host != this_host():
                out[cid] = JobState(UNKNOWN, reason=f"started on {record.host}: its pid cannot be checked from here")
            elif record.id.isdigit() and pid_alive(int(record.id), record.match):
                out[cid] = JobState(RUNNING, "RUNNING")
            else:
                out[cid] = JobState(ENDED, "gone", "the process is gone")
        return out

    def cancel(self, records: dict[str, JobRecord], hard: bool = False) -> None:
        """SIGINT: the worker stops after its current step with a checkpoint (a second one: at once)."""
        for cid, record in records.items():
            if (record.host and record.host != this_host()) or not record.id.isdigit():
                continue
            proc = self.procs.get(cid)
            alive = proc.poll() is None if proc is not None else pid_alive(int(record.id), record.match)
            if alive:
                with suppress(ProcessLookupError):
                    os.kill(int(record.id), signal.SIGINT)

    def finish(self) -> None:
        pass

    def close(self) -> None:
        for log in self.logs:
            log.close()
        self.logs = []
