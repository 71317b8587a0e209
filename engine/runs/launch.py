"""Run a grid cell on several processes/devices/machines: hbt re-launches its own worker entry point
(`python -m hbt.engine.runs.worker`) under `torchrun` or `accelerate launch`; DDP itself is the sentence-transformers
trainer's. The grid process follows the cell's events.jsonl (written by rank 0) and re-emits the events, so the CLI,
the TUI and the files see one event stream whichever way a cell runs."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..common.errors import ConfigError, UserError
from ..common.events import EventBus, EventTail
from ..common.interrupts import Cancelled
from ..common.io import ensure_dir, write_json
from ..common.run_config import RunConfig
from .rundir import RunDir, record_failure

LAUNCHERS = ("none", "torchrun", "accelerate")
WORKER_CONFIG = "launch-config.json"


@dataclass(frozen=True)
class Launch:
    launcher: str = "none"
    nproc: int = 1  # processes per node (usually one per GPU)
    nnodes: int = 1
    node_rank: int = 0
    master_addr: str = "127.0.0.1"
    master_port: int = 29500

    def validate(self) -> Launch:
        if self.launcher not in LAUNCHERS:
            raise ConfigError(f"unknown launcher {self.launcher!r} (allowed: {', '.join(LAUNCHERS)})")
        if self.nproc < 1 or self.nnodes < 1 or not 0 <= self.node_rank < self.nnodes:
            raise ConfigError(
                f"--nproc and --nnodes must be >= 1 and 0 <= --node-rank < --nnodes "
                f"(got {self.nproc}, {self.nnodes}, {self.node_rank})"
            )
        if not 1 <= self.master_port <= 65535:
            raise ConfigError(f"--master-port must be a TCP port in 1..65535, got {self.master_port}")
        if self.launcher == "accelerate" and shutil.which("accelerate") is None:
            raise UserError("--launcher accelerate needs the `accelerate` command on PATH (pip install accelerate)")
        return self

    def command(self, worker_args: list[str]) -> list[str]:
        """The command line that starts every local rank of the worker."""
        if self.launcher == "torchrun":
            return [
                sys.executable, "-m", "torch.distributed.run",
                f"--nproc-per-node={self.nproc}", f"--nnodes={self.nnodes}", f"--node-rank={self.node_rank}",
                f"--master-addr={self.master_addr}", f"--master-port={self.master_port}",
                "-m", "hbt.engine.runs.worker", *worker_args,
            ]  # fmt: skip
        if self.launcher == "accelerate":
            world = self.nproc * self.nnodes
            return [
                "accelerate", "launch", *(["--multi_gpu"] if world > 1 else []),
                f"--num_processes={world}", f"--num_machines={self.nnodes}",
                f"--machine_rank={self.node_rank}", f"--main_process_ip={self.master_addr}",
                f"--main_process_port={self.master_port}", "-m", "hbt.engine.runs.worker", *worker_args,
            ]  # fmt: skip
        return [sys.executable, "-m", "hbt.engine.runs.worker", *worker_args]


def wait_for_grid(out: Path, timeout_s: float = 600.0) -> None:
    """Nodes other than 0 join a grid that node 0 creates on the shared file system."""
    deadline = time.monotonic() + timeout_s
    while not (out / "grid.json").exists():
        if time.monotonic() > deadline:
            raise UserError(f"{out}/grid.json did not appear: start node 0 first, with the same --out on a shared disk")
        time.sleep(1.0)


class LaunchedRunner:
    """Runs one cell as a launched worker group; same call shape as `hbt.engine.runs.run.execute`."""

    def __init__(self, launch: Launch, poll_s: float = 0.5) -> None:
        self.launch = launch.validate()
        self.poll_s = poll_s

    def __call__(
        self,
        config: RunConfig,
        out: Path,
        bus: EventBus,
        cancel: Callable[[], bool] | None = None,
        resume: bool = False,
    ) -> dict[str, Any]:
        run = RunDir(out)
        ensure_dir(out)
        write_json(out / WORKER_CONFIG, config.to_dict())
        args = ["--config", str(out / WORKER_CONFIG), "--out", str(out), *(["--resume"] if resume else [])]
        tail = EventTail.at_end(run.events_file)
        proc = subprocess.Popen(self.launch.command(args), start_new_session=True)
        asked = False
        while proc.poll() is None:
            time.sleep(self.poll_s)
            for event in tail.read():
                bus.emit(event)
            if cancel is not None and cancel() and not asked:
                proc.send_signal(signal.SIGINT)  # the workers finish the step, checkpoint and stop together
                asked = True
        for event in tail.read():
            bus.emit(event)
        if self.launch.node_rank > 0:  # rank 0 (on node 0) writes; this node only took part in training
            if proc.returncode != 0:
                raise RuntimeError(f"{self.launch.launcher} worker group exited with code {proc.returncode}")
            return {}
        status = run.status()
        if status.get("status") == "complete" and run.results_file.exists():
            return run.results()
        if status.get("status") == "cancelled":
            raise Cancelled("during training", status.get("step"), status.get("checkpoint"))
        if status.get("status") == "failed":
            error = str(status.get("error", "the cell failed"))
            raise UserError(error) if proc.returncode == 2 else RuntimeError(error)
        # a rank died (signal, abort) before rank 0 could mark the cell: record it, never leave it 'running'
        error = f"{self.launch.launcher} worker group exited with code {proc.returncode} (a rank died; see its stderr)"
        record_failure(run, error, bus)
        raise RuntimeError(error)
