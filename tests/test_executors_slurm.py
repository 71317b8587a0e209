"""The slurm executor against a fake Slurm on PATH (tests/fake_slurm.py: sbatch, srun, squeue, sacct, scancel,
scontrol that record their arguments and answer like Slurm, running the batch scripts submitit writes on this
machine): the sbatch lines a preset produces, `status` and `cancel` of queued jobs, a cell killed at its time limit
(failed with the scheduler's reason, then resumed), and a preemption that submitit's checkpointing requeues and the
cell resumes from its training checkpoint, ending with the numbers of an uninterrupted run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import submitit
from hbt.engine.common.events import RunStarted, read_events
from hbt.engine.runs.rundir import RunDir

from tests import fake_slurm
from tests.conftest import SHARED_DATA
from tests.executors_common import (
    bench,
    exported,
    grid_doc,
    needs_data,
    paused,
    run_smoke,
    start,
    states,
    status,
    trained_steps,
    wait_until,
    worker_pid,
)

XX = "tiny-random__xx__s0"


@pytest.fixture
def slurm(tmp_path: Path) -> dict[str, str]:
    """The fake Slurm's environment: its commands first on PATH, its state folder."""
    fake_slurm.install(tmp_path / "bin", tmp_path / "slurm-state")
    path = f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}"
    return {"PATH": path, "FAKE_SLURM_DIR": str(tmp_path / "slurm-state")}


def calls(slurm: dict[str, str], command: str) -> list[list[str]]:
    lines = (Path(slurm["FAKE_SLURM_DIR"]) / "calls.jsonl").read_text().splitlines()
    return [c["args"] for c in map(json.loads, lines) if c["command"] == command]


def fake(slurm: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, fake_slurm.__file__, *args], env={**os.environ, **slurm}, check=True)


def job_ids(grid: Path) -> dict[str, str]:
    return {c["id"]: (c.get("job") or {}).get("id", "") for c in grid_doc(grid)["cells"]}


PRESET = """
[preset]
name = "slurm-smoke"
backbones = ["tiny-random"]
strategies = ["xx", "xy", "hybrid"]
[run]
eval_data = ["xquad-r"]
langs = ["de", "en"]
train_langs = ["de", "en"]
max_queries = 12
max_train_pairs = 40
steps = 3
batch_size = 4
[executor]
kind = "slurm"
[executor.slurm]
partition = "gpu"
time_min = 240
cpus_per_task = 8
mem_gb = 32
gpus = 2
account = "proj"
qos = "high"
constraint = "a100"
sbatch = ["--exclusive", "--mail-type=END"]
setup = ["module load cuda/12"]
"""


@pytest.mark.slow
def test_sbatch_lines_status_and_cancel_of_queued_jobs(tmp_path: Path, slurm: dict[str, str]) -> None:
    needs_data()
    preset = tmp_path / "slurm-smoke.toml"
    preset.write_text(PRESET)
    grid = tmp_path / "grid"
    submitter = start("run", preset, "--data-dir", SHARED_DATA, "--out", grid, log=tmp_path / "run.log",
                      FAKE_SLURM_HOLD="1", **slurm)  # fmt: skip
    wait_until(lambda: (grid / "grid.json").exists() and all(job_ids(grid).values()), 180, "jobs submitted", submitter)
    assert len(calls(slurm, "sbatch")) == 1  # the grid's 4 cells: one job array
    script = (Path(slurm["FAKE_SLURM_DIR"]) / "scripts" / "1000.sh").read_text().splitlines()
    for line in ("#SBATCH --partition=gpu", "#SBATCH --time=240", "#SBATCH --cpus-per-task=8", "#SBATCH --mem=32GB",
                 "#SBATCH --gpus-per-node=2", "#SBATCH --account=proj", "#SBATCH --qos=high",
                 "#SBATCH --constraint=a100", "#SBATCH --exclusive", "#SBATCH --mail-type=END",
                 "#SBATCH --array=0-3%4", "#SBATCH --signal=USR2@90", "#SBATCH --job-name=hbt-grid",
                 "module load cuda/12", "export SUBMITIT_EXECUTOR=slurm"):  # fmt: skip
        assert line in script, (line, script)
    assert any(x.startswith("srun --unbuffered") and "-m submitit.core._submit" in x for x in script)
    assert job_ids(grid) == {f"tiny-random__{s}__s0": f"1000_{i}" for i, s in enumerate(("none", "xx", "xy", "hybrid"))}
    # each job runs its cell's worker under torchrun with 2 processes (gpus = 2)
    pickled = grid / "slurm" / "1000_1" / "1000_1_submitted.pkl"
    command = submitit.helpers.DelayedSubmission.load(pickled).function.command
    assert command[1:4] == ["-m", "torch.distributed.run", "--nproc-per-node=2"] and "hbt.engine.runs.worker" in command
    assert command[command.index("--out") + 1] == str((grid / "cells" / XX).resolve())
    seen = status(grid, **slurm)
    assert [c["state"] for c in seen["cells"]] == ["queued"] * 4
    assert {c["reason"] for c in seen["cells"]} == {"waiting: Resources"}  # squeue's reason
    assert calls(slurm, "sacct") and calls(slurm, "squeue")
    cancel = bench("cancel", grid, "--wait", "120", **slurm)
    assert cancel.returncode == 0, cancel.stdout + cancel.stderr
    assert submitter.wait(timeout=120) == 130
    assert sorted(a[0] for a in calls(slurm, "scancel")) == ["1000_0", "1000_1", "1000_2", "1000_3"]
    assert set(states(grid, **slurm).values()) == {"cancelled"}
    assert RunDir(grid / "cells" / XX).status()["error"] == "cancelled before it started"


@pytest.mark.slow
def test_a_cell_killed_at_its_time_limit_is_failed_with_the_reason_then_resumed(
    tmp_path: Path, slurm: dict[str, str]
) -> None:
    needs_data()
    grid = tmp_path / "grid"
    flags = ("--strategies", "xx", "--steps", "40", "--executor", "slurm")
    submitter = start("run", "smoke", "--data-dir", SHARED_DATA, "--out", grid, *flags, log=tmp_path / "run.log",
                      **slurm)  # fmt: skip
    wait_until(lambda: len(trained_steps(grid / "cells" / XX)) >= 2, 300, "xx trains", submitter)
    fake(slurm, "_timeout", "1000_1")
    assert submitter.wait(timeout=180) == 1  # a failed cell
    error = "slurm job 1000_1 ended (TIMEOUT: time limit) without finishing the cell"
    assert RunDir(grid / "cells" / XX).status()["error"] == error
    row = next(c for c in status(grid, **slurm)["cells"] if c["id"] == XX)
    assert (row["state"], row["reason"], row["node"]) == ("failed", error, "fake-node2")
    resumed = bench("run", "smoke", "--resume", grid, "--data-dir", SHARED_DATA, **slurm)
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    assert len(calls(slurm, "sbatch")) == 2 and job_ids(grid)[XX] == "1001"  # only the failed cell, as one job
    assert job_ids(grid)["tiny-random__none__s0"] == "1000_0"
    assert set(states(grid, **slurm).values()) == {"complete"}


@pytest.mark.slow
def test_preemption_requeues_and_the_cell_resumes_from_its_checkpoint(tmp_path: Path, slurm: dict[str, str]) -> None:
    needs_data()
    flags = ("--strategies", "xx", "--steps", "40")
    reference = tmp_path / "reference"
    run_smoke(reference, *flags)
    grid = tmp_path / "grid"
    xx = grid / "cells" / XX
    submitter = start("run", "smoke", "--data-dir", SHARED_DATA, "--out", grid, *flags, "--executor", "slurm",
                      log=tmp_path / "run.log", **slurm)  # fmt: skip
    wait_until(lambda: len(trained_steps(xx)) >= 3, 300, "xx trains", submitter)
    with paused(worker_pid(xx)):  # (caught mid-training)
        fake(slurm, "_preempt", "1000_1")  # SIGTERM, then USR2: submitit checkpoints and requeues
    assert submitter.wait(timeout=400) == 0, (tmp_path / "run.log").read_text()[-3000:]
    assert calls(slurm, "scontrol") == [["requeue", "1000_1"]]
    assert len(calls(slurm, "sbatch")) == 1 and job_ids(grid)[XX] == "1000_1"  # the same job, requeued
    events = read_events(xx / "events.jsonl")
    assert sum(isinstance(e, RunStarted) for e in events) == 2
    stopped = next(e for e in events if getattr(e, "status", "") == "cancelled")
    assert "stopped during training at step" in stopped.error  # type: ignore[attr-defined]
    assert any("resuming from" in getattr(e, "message", "") for e in events)
    steps = trained_steps(xx)
    assert steps[-1] == 40 and sorted(set(steps)) == list(range(1, 41))
    assert exported(grid) == exported(reference)
