"""The `slurm` executor: one Slurm job per cell (one job array per submission), submitted with submitit.

Each job runs a `CellJob`: the cell's worker command in a child process (under torchrun when a cell has several
GPUs). submitit's checkpointing handles preemption and the time limit: when Slurm signals the job (USR2, `--signal`
in the sbatch file), `CellJob.checkpoint` asks the worker to stop after its current step (it writes a training
checkpoint and marks the cell cancelled) and returns the same cell with `--resume`; submitit requeues the job, which
picks the cell up from its checkpoint. `--slurm-backend local` runs the same machinery through submitit's
LocalExecutor (the job id is then the pid of submitit's local controller on this machine).

Job states come from `sacct` through submitit's watcher, a pending job's reason from `squeue`; a cancel sends the
running jobs SIGINT (`scancel --signal=INT`: the cell checkpoints and stops) and removes the queued ones (`scancel`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import submitit

from ..common.errors import UserError
from .executor import ExecutorSpec
from .jobs import ENDED, QUEUED, RUNNING, UNKNOWN, CellLaunch, JobRecord, JobState, pid_alive, this_host
from .rundir import RunDir

STOP_GRACE_S = 75.0  # how long a signalled worker gets to checkpoint (submitit's default signal delay is 90 s)
FORCE_EVERY_S = 5.0  # a cell that has marked its end gets its job's state asked (not the watcher's cache) this often
SQUEUE_EVERY_S = 30.0
# sacct states: still queued / running; the others ended (with what they mean)
QUEUED_STATES = ("PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING", "SUSPENDED", "RESIZING")
RUNNING_STATES = ("RUNNING", "COMPLETING", "STAGE_OUT", "SIGNALING")
REASONS = {
    "TIMEOUT": "time limit",
    "OUT_OF_MEMORY": "out of memory",
    "PREEMPTED": "preempted",
    "NODE_FAIL": "node failure",
    "BOOT_FAIL": "node failed to boot",
    "DEADLINE": "deadline reached",
    "CANCELLED": "cancelled",
    "FAILED": "the job's command failed",
    "COMPLETED": "the job finished",
}
LOCAL_MATCH = "submitit.local._local"  # submitit's local controller, in the command line of a local job's pid


def preempt_signal() -> signal.Signals:
    """The signal submitit checkpoints on (USR2 unless SUBMITIT_PREEMPT_SIGNAL says otherwise)."""
    return signal.Signals[f"SIG{submitit.JobEnvironment.USR_SIG}"]


def under_slurm() -> bool:
    """Inside a real Slurm job (submitit's sbatch file exports SUBMITIT_EXECUTOR=slurm). Slurm signals every process
    of a job step itself (scancel --signal, preemption); submitit's local controller signals only its task."""
    return os.environ.get("SUBMITIT_EXECUTOR") == "slurm"


def _worker_signals() -> None:
    """In the worker, before exec: the preemption signal (and, under Slurm, the SIGTERM that comes with a preemption)
    is for CellJob, which asks the worker to stop cleanly; the worker must not die of it. An ignored signal stays
    ignored through exec (in torchrun's ranks too)."""
    signal.signal(preempt_signal(), signal.SIG_IGN)
    if under_slurm():
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


class CellJob(submitit.helpers.Checkpointable):
    """One cell as a submitit job (see the module docstring). Picklable: only the command line travels.

    Under Slurm the worker stays in the job step (its SIGINT from `scancel --signal=INT` reaches it directly, once);
    under submitit's local executor it gets its own session and CellJob passes a cancel on to it."""

    def __init__(self, command: list[str]) -> None:
        self.command = list(command)
        self.proc: subprocess.Popen[bytes] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"command": self.command}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.command, self.proc = list(state["command"]), None

    def __call__(self) -> int:
        forward = not under_slurm()
        proc = subprocess.Popen(self.command, preexec_fn=_worker_signals, start_new_session=forward)
        self.proc = proc
        try:
            _wait(proc, None)  # (polling, not wait(): the preemption handler may need to poll it meanwhile)
        except KeyboardInterrupt:  # a cancel: the cell stops after its current step
            if forward:
                _stop(proc)
            else:
                _wait(proc, STOP_GRACE_S)
        code = proc.returncode
        if code not in (0, 130):
            raise RuntimeError(f"the cell's worker exited with code {code} (its run.json says why)")
        return int(code)

    def checkpoint(self, *args: Any, **kwargs: Any) -> submitit.helpers.DelayedSubmission:
        """Preempted or near the time limit: stop the worker at its next step (it checkpoints), requeue resuming."""
        if self.proc is not None and self.proc.poll() is None:
            _stop(self.proc)
        command = self.command if "--resume" in self.command else [*self.command, "--resume"]
        return submitit.helpers.DelayedSubmission(CellJob(command))


def _wait(proc: subprocess.Popen[bytes], timeout_s: float | None) -> None:
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while proc.poll() is None and (deadline is None or time.monotonic() < deadline):
        time.sleep(0.5)


def _stop(proc: subprocess.Popen[bytes], grace_s: float = STOP_GRACE_S) -> None:
    """SIGINT the worker (it finishes its step, checkpoints, marks the cell cancelled) and wait for it; kill it when
    it does not stop within `grace_s` (the cell then resumes from its last checkpoint)."""
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGINT)
    _wait(proc, grace_s)
    if proc.poll() is None:
        proc.kill()
        _wait(proc, None)


def sbatch_options(lines: list[str]) -> dict[str, Any]:
    """Extra sbatch lines ('--exclusive', '--mail-type=END') as submitit's slurm_additional_parameters."""
    out: dict[str, Any] = {}
    for line in lines:
        key, sep, value = line.removeprefix("--").partition("=")
        out[key] = value if sep else True
    return out


class SlurmBackend:
    """Slurm jobs (or submitit's local jobs) for the cells of the grid at `out`."""

    def __init__(self, spec: ExecutorSpec, out: Path, doc: dict[str, Any] | None = None) -> None:
        self.spec = spec
        self.dirs = {str(c["id"]): out / str(c["dir"]) for c in (doc or {}).get("cells", [])}
        self.local = spec.slurm.backend == "local"
        self.kind = "slurm"
        self.capacity: int | None = spec.workers if self.local else None  # the local backend shares this machine
        self.folder = out / "slurm" / "%j"  # submitit's pickles and logs (inside the grid folder)
        self.jobs: dict[str, submitit.Job[Any]] = {}
        self.forced: dict[str, float] = {}
        self.reasons: dict[str, str] = {}
        self.squeued = 0.0
        self.name = f"hbt-{out.name}"

    def _executor(self, n: int) -> submitit.AutoExecutor:
        s = self.spec.slurm
        cluster = "local" if self.local else "slurm"
        try:
            executor = submitit.AutoExecutor(folder=self.folder, cluster=cluster, slurm_max_num_timeout=s.max_requeue)
        except RuntimeError as exc:  # submitit's own check: no srun on PATH
            raise UserError(f"--executor slurm: {exc}") from None
        params: dict[str, Any] = {
            "timeout_min": s.time_min,
            "name": self.name,
            "gpus_per_node": s.gpus or None,
            "cpus_per_task": s.cpus_per_task,
            "mem_gb": s.mem_gb,
        }
        if not self.local:
            params.update(
                slurm_partition=s.partition,
                slurm_account=s.account,
                slurm_qos=s.qos,
                slurm_constraint=s.constraint,
                slurm_setup=list(s.setup) or None,
                slurm_additional_parameters=sbatch_options(s.sbatch) or None,
                slurm_array_parallelism=max(n, 1),
            )
        executor.update_parameters(**params)
        return executor

    def submit(self, cells: list[CellLaunch]) -> list[JobRecord]:
        executor = self._executor(len(cells))
        array = self.spec.slurm.array and not self.local
        try:
            with executor.batch() if array else contextlib.nullcontext():
                jobs = [executor.submit(CellJob(cell.command)) for cell in cells]
        except (RuntimeError, OSError) as exc:  # sbatch's error (submitit's FailedJobError / FailedSubmissionError)
            detail = " ".join(str(exc).split())[:300]
            raise UserError(f"Slurm refused the job submission ({detail})") from None
        host, now, records = this_host(), time.time(), []
        for cell, job in zip(cells, jobs, strict=True):
            self.jobs[cell.cell_id] = job
            records.append(
                JobRecord(
                    "slurm",
                    id=str(job.job_id),
                    host=host,
                    submitted=now,
                    state=QUEUED,
                    raw="PENDING",
                    node=host if self.local else "",
                    match=LOCAL_MATCH if self.local else "",
                )
            )
        return records

    # ---- asking about jobs -------------------------------------------------------------------------------------

    def probe(self, records: dict[str, JobRecord], force: bool = False) -> dict[str, JobState]:
        if self.local:
            return {cid: self._probe_local(cid, r) for cid, r in records.items()}
        out = {cid: self._probe_slurm(cid, r, force) for cid, r in records.items()}
        pending = [r.id for cid, r in records.items() if out[cid].raw in QUEUED_STATES]
        if pending and (force or time.monotonic() - self.squeued > SQUEUE_EVERY_S):
            self._squeue(pending)
        for cid, state in out.items():
            why = self.reasons.get(records[cid].id)
            if state.state == QUEUED and why:
                out[cid] = JobState(QUEUED, state.raw, why, state.node)
        return out

    def _job(self, cid: str, record: JobRecord) -> submitit.Job[Any]:
        job = self.jobs.get(cid)
        if job is None or str(job.job_id) != record.id:
            job = submitit.SlurmJob(folder=self.folder, job_id=record.id)  # a job submitted by an earlier process
            self.jobs[cid] = job
        return job

    def _probe_slurm(self, cid: str, record: JobRecord, force: bool) -> JobState:
        job = self._job(cid, record)
        now = time.monotonic()
        ask_now = force or (self._cell_marked_end(cid) and now - self.forced.get(cid, 0.0) > FORCE_EVERY_S)
        if ask_now:
            self.forced[cid] = now
        info = job.get_info(mode="force" if ask_now else "standard")
        raw = str(info.get("State") or "").split()[0] if info.get("State") else ""
        node = str(info.get("NodeList") or "")
        node = "" if node in ("None assigned", "(null)") else node
        if not raw:
            return JobState(QUEUED, "", "submitted; Slurm does not list it yet")
        if raw in QUEUED_STATES:
            return JobState(QUEUED, raw, "requeued" if raw.startswith("REQUEUE") else "", node)
        if raw in RUNNING_STATES:
            return JobState(RUNNING, raw, "", node)
        return JobState(ENDED, raw, REASONS.get(raw, raw.lower()), node)

    def _probe_local(self, cid: str, record: JobRecord) -> JobState:
        job = self.jobs.get(cid)
        if job is not None and str(job.job_id) == record.id:
            state = str(job.state)
            if state == "RUNNING":
                return JobState(RUNNING, "RUNNING", "", this_host())
            return JobState(ENDED, state, "the local job finished" if state == "FINISHED" else state.lower())
        if record.host and record.host != this_host():
            return JobState(UNKNOWN, reason=f"a local job of {record.host}: it cannot be checked from here")
        if record.id.isdigit() and pid_alive(int(record.id), LOCAL_MATCH):
            return JobState(RUNNING, "RUNNING", "", this_host())
        return JobState(ENDED, "gone", "the local job's process is gone")

    def _squeue(self, ids: list[str]) -> None:
        """Why each pending job waits (Priority, Resources, QOSMaxJobsPerUser, ...), from squeue."""
        self.squeued = time.monotonic()
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            result = subprocess.run(
                ["squeue", "--noheader", "--format=%i|%r", "--jobs", ",".join(ids)],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            for line in result.stdout.splitlines():
                job_id, _, reason = line.partition("|")
                if job_id.strip() and reason.strip() and reason.strip() != "None":
                    self.reasons[job_id.strip()] = f"waiting: {reason.strip()}"

    # ---- cancelling --------------------------------------------------------------------------------------------

    def cancel(self, records: dict[str, JobRecord], hard: bool = False) -> None:
        states = self.probe(records, force=True)
        for cid, record in records.items():
            state = states[cid]
            if state.state == ENDED:
                continue
            if self.local:
                if record.id.isdigit() and pid_alive(int(record.id), LOCAL_MATCH):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(record.id), signal.SIGINT)  # the controller passes it on; the cell stops
                continue
            if state.state == RUNNING and not hard:
                _scancel("--signal=INT", record.id)  # the job's CellJob stops the worker after its step
            else:
                self._job(cid, record).cancel(check=False)  # queued (or a hard stop): scancel

    def finish(self) -> None:
        pass

    def close(self) -> None:
        self.jobs.clear()

    def _cell_marked_end(self, cid: str) -> bool:
        """The cell's folder already says how it ended: its job's end is asked about at once, not at the watcher's
        pace (which slows to one sacct call every 10 minutes)."""
        folder = self.dirs.get(cid)
        return folder is not None and RunDir(folder).status().get("status") in ("complete", "failed", "cancelled")


def _scancel(*args: str) -> None:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(["scancel", *args], capture_output=True, timeout=60, check=False)
