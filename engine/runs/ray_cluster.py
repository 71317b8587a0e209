"""The `ray` executor: one Ray task per cell, owned by one detached supervisor actor per grid.

The supervisor (`hbt-grid-<digest of the grid path>` in namespace `hbt`, zero CPUs) submits each cell as a task that
reserves the cell's CPUs/GPUs and runs the worker command in a child process on whichever node Ray picks. Because the
tasks are owned by a detached actor, not by the submitting process, they keep running when that process dies (kill
-9): `--resume`, `hbt-bench status` and `hbt-bench cancel` find the supervisor by name and ask it about its tasks.
A cancel is Ray's own `ray.cancel`: the task gets a KeyboardInterrupt, asks its worker to stop after the current step
(it checkpoints and marks the cell cancelled) and waits for it. Without `--ray-address` the submitting process starts
a local Ray instance (it ends with that process; the grid's tasks then end too).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import ray

from ..common.errors import UserError
from .executor import ExecutorSpec, check_available
from .jobs import ENDED, QUEUED, RUNNING, UNKNOWN, CellLaunch, JobRecord, JobState, this_host

NAMESPACE = "hbt"
STOP_GRACE_S = 120.0
LOCAL_OBJECT_STORE = 256 * 2**20  # a local instance needs next to no object store: cells exchange no data
PASSED_ENV = ("HBT_", "HF_", "TRANSFORMERS_", "TQDM_", "TOKENIZERS_")  # the submitter's settings a task must see


def supervisor_name(out: Path) -> str:
    return "hbt-grid-" + hashlib.sha1(str(out.resolve()).encode()).hexdigest()[:16]


def run_cell(command: list[str], env: dict[str, str], cwd: str, supervisor: Any, cell: str) -> int:
    """A Ray task: tell the supervisor where it runs, run the cell's worker, stop it cleanly when cancelled."""
    context = ray.get_runtime_context()
    node = f"{ray.util.get_node_ip_address()} node {context.get_node_id()[:8]}"
    supervisor.started.remote(cell, {"node": node, "pid": os.getpid()})
    proc = subprocess.Popen(
        command, env={**os.environ, **env}, cwd=cwd, start_new_session=True, preexec_fn=_unblock_signals
    )
    try:
        while proc.poll() is None:
            if _canceled(context):  # ray.cancel raises KeyboardInterrupt here; is_canceled() tells it too
                raise KeyboardInterrupt
            time.sleep(0.5)
    except KeyboardInterrupt:  # ray.cancel: the cell stops after its current step, with a checkpoint
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + STOP_GRACE_S
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        if proc.poll() is None:
            proc.kill()
        raise
    return int(proc.returncode)


def _unblock_signals() -> None:
    """In the worker, before exec: a Ray worker's threads block SIGINT, and a child inherits its thread's signal mask;
    the cell's worker must receive the SIGINT that asks it to stop after its step."""
    signal.pthread_sigmask(signal.SIG_SETMASK, set())


def _canceled(context: Any) -> bool:
    """`RuntimeContext.is_canceled()` where this Ray version has it."""
    check = getattr(context, "is_canceled", None)
    return bool(check()) if callable(check) else False


class CellSupervisor:
    """The detached actor that owns a grid's cell tasks (see the module docstring)."""

    def __init__(self) -> None:
        self.refs: dict[str, Any] = {}
        self.info: dict[str, dict[str, Any]] = {}
        self.task = ray.remote(run_cell)

    def submit(self, cell: str, command: list[str], env: dict[str, str], cwd: str, cpus: float, gpus: float) -> str:
        me = ray.get_runtime_context().current_actor
        ref = self.task.options(num_cpus=cpus, num_gpus=gpus, max_retries=0, name=f"hbt {cell}").remote(
            command, env, cwd, me, cell
        )
        self.refs[cell] = ref
        self.info[cell] = {"task": ref.task_id().hex()}
        return str(self.info[cell]["task"])

    def started(self, cell: str, info: dict[str, Any]) -> None:
        self.info.setdefault(cell, {}).update(info)

    def states(self, cells: list[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for cell in cells:
            ref, info = self.refs.get(cell), self.info.get(cell, {})
            if ref is None:
                out[cell] = {"state": ENDED, "raw": "unknown", "reason": "this grid's supervisor never ran it"}
                continue
            ready, _ = ray.wait([ref], timeout=0)
            node = str(info.get("node", ""))
            if not ready:
                out[cell] = {"state": RUNNING if node else QUEUED, "raw": "RUNNING" if node else "PENDING",
                             "task": info.get("task"), "node": node}  # fmt: skip
                continue
            out[cell] = {"state": ENDED, "node": node, "task": info.get("task"), **_outcome(ref)}
        return out

    def cancel(self, cells: list[str], force: bool = False) -> None:
        for cell in cells:
            ref = self.refs.get(cell)
            if ref is not None:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=force)


def _outcome(ref: Any) -> dict[str, str]:
    """How a finished task ended, in the scheduler's words."""
    try:
        code = ray.get(ref)
        return {"raw": f"exit code {code}", "reason": "finished" if code == 0 else f"the worker exited with {code}"}
    except ray.exceptions.TaskCancelledError:
        return {"raw": "CANCELLED", "reason": "cancelled"}
    except ray.exceptions.OutOfMemoryError:
        return {"raw": "OUT_OF_MEMORY", "reason": "out of memory (Ray's memory monitor killed the task)"}
    except ray.exceptions.NodeDiedError:
        return {"raw": "NODE_DIED", "reason": "node failure"}
    except ray.exceptions.WorkerCrashedError:
        return {"raw": "WORKER_CRASHED", "reason": "the task's worker process died"}
    except ray.exceptions.RayError as exc:
        return {"raw": type(exc).__name__, "reason": " ".join(str(exc).split())[:200]}


class RayBackend:
    """Cells as Ray tasks for the grid at `out` (see the module docstring)."""

    def __init__(self, spec: ExecutorSpec, out: Path, doc: dict[str, Any] | None = None) -> None:
        self.kind = "ray"
        self.capacity: int | None = None
        self.spec = spec
        self.out = out
        submitter = (doc or {}).get("submitter") or {}
        self.address = spec.ray.address or (submitter.get("ray_address") if doc is not None else None)
        self.started_local = False
        self.supervisor: Any = None
        self._connect(create=doc is None or submitter.get("pid") == os.getpid())

    def _connect(self, create: bool) -> None:
        """Join the cluster (or start a local instance when submitting without an address) and find the supervisor."""
        if not ray.is_initialized():
            if self.address:
                check_available(self.spec if self.spec.ray.address else _with_address(self.spec, self.address))
            elif not create:
                return  # a local instance of a submitter that is gone: nothing to ask
            kwargs: dict[str, Any] = {"namespace": NAMESPACE, "log_to_driver": False, "logging_level": "error"}
            if self.address:
                kwargs["address"] = self.address
            else:
                kwargs.update(address="local", include_dashboard=False, object_store_memory=LOCAL_OBJECT_STORE)
                self.started_local = True
            try:
                ray.init(**kwargs)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise UserError(f"cannot join the Ray cluster at {self.address or 'a new local instance'}: "
                                f"{' '.join(str(exc).split())[:200]}") from None  # fmt: skip
            if self.started_local:
                self.address = ray.get_runtime_context().gcs_address
        name = supervisor_name(self.out)
        if create:
            actor = ray.remote(CellSupervisor).options(
                name=name, namespace=NAMESPACE, lifetime="detached", get_if_exists=True, num_cpus=0, max_concurrency=8
            )
            self.supervisor = actor.remote()
        else:
            with contextlib.suppress(ValueError):
                self.supervisor = ray.get_actor(name, namespace=NAMESPACE)

    def submit(self, cells: list[CellLaunch]) -> list[JobRecord]:
        env = {k: v for k, v in os.environ.items() if k.startswith(PASSED_ENV)}
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(max(1, int(self.spec.ray.num_cpus)))
        cwd, now, records = os.getcwd(), time.time(), []
        for cell in cells:
            task = ray.get(
                self.supervisor.submit.remote(
                    cell.cell_id, cell.command, env, cwd, self.spec.ray.num_cpus, self.spec.ray.num_gpus
                )
            )
            records.append(JobRecord("ray", id=str(task), host=this_host(), submitted=now, state=QUEUED, raw="PENDING"))
        return records

    def probe(self, records: dict[str, JobRecord]) -> dict[str, JobState]:
        if self.supervisor is None:
            why = "no Ray cluster to ask (the grid ran on a local instance that ended with its submitter)"
            return {cid: JobState(ENDED if not self.address else UNKNOWN, "gone", why) for cid in records}
        try:
            states = ray.get(self.supervisor.states.remote(list(records)), timeout=60)
        except ray.exceptions.RayError as exc:
            return {cid: JobState(UNKNOWN, "", f"Ray did not answer ({type(exc).__name__})") for cid in records}
        out: dict[str, JobState] = {}
        for cid, record in records.items():
            s = states.get(cid, {})
            stale = s.get("task") not in (None, record.id)  # the supervisor ran a newer attempt than this record
            out[cid] = JobState(ENDED, "gone", "superseded") if stale else JobState(
                str(s.get("state", UNKNOWN)), str(s.get("raw", "")), str(s.get("reason", "")), str(s.get("node", ""))
            )  # fmt: skip
        return out

    def cancel(self, records: dict[str, JobRecord], hard: bool = False) -> None:
        if self.supervisor is not None:
            with contextlib.suppress(ray.exceptions.RayError):
                ray.get(self.supervisor.cancel.remote(list(records), hard), timeout=60)

    def close(self) -> None:
        """Leave the cluster (a local instance this process started ends with it)."""
        if ray.is_initialized():
            ray.shutdown()

    def finish(self) -> None:
        """The grid is over: the supervisor is no longer needed."""
        if self.supervisor is not None:
            with contextlib.suppress(ray.exceptions.RayError, ValueError):
                ray.kill(self.supervisor)


def _with_address(spec: ExecutorSpec, address: str) -> ExecutorSpec:
    return replace(spec, ray=replace(spec.ray, address=address))
