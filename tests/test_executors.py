"""Executors (issue 25): where a grid's cells run, the settings (flags win over a preset's [executor] table), the
failures a user meets as one line, a cell's state joined from its folder and its job, and real smoke grids run by the
`processes` executor and by submitit's local executor: the same numbers as the local grid, status and cancel on each,
and a --resume after kill -9 of the submitting process that follows the still-running worker instead of submitting it
twice. (Slurm through fake sbatch/sacct/...: test_executors_slurm.py; a two-node Ray cluster: test_executors_ray.py.)
"""

from __future__ import annotations

import os
import re
import signal
import socket
import time
from pathlib import Path

import pytest
from hbt.engine.cli.main import main
from hbt.engine.common.errors import ConfigError, UserError
from hbt.engine.common.events import EventTail, RunStarted, Stage, read_events
from hbt.engine.common.io import write_json
from hbt.engine.runs import executor as executor_module
from hbt.engine.runs.executor import ExecutorSpec, check_available, parse_executor, with_flags
from hbt.engine.runs.jobs import ENDED, QUEUED, RUNNING, JobRecord, JobState, cell_status
from hbt.engine.runs.presets import load_preset
from hbt.engine.runs.rundir import RunDir

from tests import executors_common
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
    trained_steps,
    wait_until,
    worker_pid,
)

# ---- settings: the [executor] table, the flags, what is checked before anything starts -----------------------------


def test_preset_executor_table_and_flags_win(tmp_path: Path) -> None:
    preset = tmp_path / "p.toml"
    preset.write_text(
        '[preset]\nname = "p"\nbackbones = ["tiny-random"]\nstrategies = ["xx"]\n'
        '[run]\ntrain_langs = ["de", "en"]\nlangs = ["de", "en"]\n'
        '[executor]\nkind = "slurm"\n[executor.slurm]\npartition = "gpu"\ngpus = 2\ntime_min = 240\n'
        'sbatch = ["--exclusive"]\n[executor.ray]\nnum_cpus = 4\n'
    )
    spec = load_preset(str(preset)).executor
    assert (spec.kind, spec.slurm.partition, spec.slurm.gpus, spec.slurm.time_min) == ("slurm", "gpu", 2, 240)
    assert spec.slurm.sbatch == ["--exclusive"] and spec.ray.num_cpus == 4
    flagged = with_flags(spec, executor="ray", slurm_partition="long", ray_num_gpus=1.0, workers=None)
    assert (flagged.kind, flagged.slurm.partition, flagged.slurm.gpus, flagged.ray.num_gpus) == ("ray", "long", 2, 1)
    assert load_preset("smoke").executor == ExecutorSpec()  # no table: local, as before


@pytest.mark.parametrize(
    ("table", "says"),
    [
        ({"kind": "cluster"}, "unknown executor 'cluster' (allowed: local, processes, slurm, ray)"),
        ({"workers": 0}, "workers must be positive, got 0"),
        ({"slurm": {"gpus": "two"}}, "[executor.slurm] gpus: expected int, got 'two'"),
        ({"slurm": {"sbatch": ["exclusive"]}}, "expects sbatch options such as --exclusive"),
        ({"ray": {"address": "head"}}, "expects host:port of the Ray head"),
        ({"nodes": 3}, "unknown key [executor] 'nodes' (allowed: kind, workers)"),
    ],
)
def test_bad_executor_tables_are_one_line_naming_the_file(table: dict[str, object], says: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_executor(table, "p.toml")
    assert str(err.value).startswith("p.toml: ") and says in str(err.value) and "\n" not in str(err.value)


def test_missing_extra_is_one_line_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = executor_module.importlib.util.find_spec
    monkeypatch.setattr(
        executor_module.importlib.util, "find_spec", lambda n: None if n in ("ray", "submitit") else real(n)
    )
    for kind in ("ray", "slurm"):
        with pytest.raises(UserError, match=re.escape(f"pip install 'hbt[{kind}]'")):
            check_available(ExecutorSpec(kind=kind))
    code = main(["run", "smoke", "--executor", "ray", "--out", str(tmp_path / "g")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err == "hbt: --executor ray needs ray, which is not installed: pip install 'hbt[ray]'"
    assert not (tmp_path / "g").exists()


def test_no_sbatch_on_path_is_one_line(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    result = bench("run", "smoke", "--executor", "slurm", "--out", tmp_path / "g", PATH=str(empty))
    assert result.returncode == 2 and not (tmp_path / "g").exists()
    assert result.stderr.strip().splitlines() == [
        "hbt: --executor slurm: no `sbatch` on PATH (run on a Slurm login node, or pass --slurm-backend local to run "
        "the same jobs on this machine)"
    ]


def test_unreachable_ray_address_is_one_line_within_the_stated_timeout(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    result = bench("run", "smoke", "--executor", "ray", "--ray-address", f"127.0.0.1:{port}", "--out", tmp_path / "g")
    assert result.returncode == 2 and not (tmp_path / "g").exists()
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"hbt: Ray at 127.0.0.1:{port} does not answer (") and "waited up to 30 s" in line
    assert time.monotonic() - t0 < 60  # the interpreter's start and imports included; the probe itself is bounded
    # an address where no Ray head answers (nothing, or something else, there): reported once the timeout has passed
    spec = ExecutorSpec(kind="ray", ray=executor_module.RaySettings(address="10.255.255.1:6379"))
    t0 = time.monotonic()
    with pytest.raises(UserError, match=r"Ray at 10\.255\.255\.1:6379 does not answer \(.*5 s\)"):
        check_available(spec, connect_timeout_s=5.0)
    assert time.monotonic() - t0 < 8


def test_launcher_with_a_remote_executor_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "smoke", "--executor", "processes", "--launcher", "torchrun", "--out", "never-made"]) == 2
    assert "--launcher torchrun spreads one cell in this process" in capsys.readouterr().err


# ---- a cell's state: its folder joined with its job ----------------------------------------------------------------


def _cell(tmp_path: Path, run_json: dict[str, object] | None = None) -> RunDir:
    run = RunDir(tmp_path / "cells" / "m__xx__s0")
    run.path.mkdir(parents=True)
    if run_json is not None:
        write_json(run.status_file, run_json)
    return run


@pytest.mark.parametrize(
    ("run_json", "job", "want"),
    [
        (None, None, ("pending", "")),
        (None, JobState(QUEUED, "PENDING", "waiting: Priority"), ("queued", "waiting: Priority")),
        ({"status": "running", "started": 1.0}, JobState(RUNNING, "RUNNING", node="n1"), ("running", "")),
        # the job ended under a cell that says running: killed (time limit, OOM, node failure) -> failed, with why
        ({"status": "running"}, JobState(ENDED, "TIMEOUT", "time limit"),
         ("failed", "the job ended without finishing the cell (time limit)")),
        (None, JobState(ENDED, "OUT_OF_MEMORY", "out of memory"),
         ("failed", "the job died without writing (out of memory)")),
        (None, JobState(ENDED, "CANCELLED by 0", "cancelled"), ("cancelled", "cancelled before it started")),
        # a preempted cell marked itself cancelled; its job is requeued: the job's word wins while it lives
        ({"status": "cancelled", "error": "stopped during training"}, JobState(QUEUED, "REQUEUED", "requeued"),
         ("queued", "requeued")),
        ({"status": "cancelled", "error": "stopped during training"}, JobState(ENDED, "COMPLETED"),
         ("cancelled", "stopped during training")),
        # this attempt marked its cell ended and its process is still exiting (a second or so): the mark wins
        ({"status": "cancelled", "error": "stopped during training", "updated": 2.0}, JobState(RUNNING, "RUNNING"),
         ("cancelled", "stopped during training")),
    ],
)  # fmt: skip
def test_cell_state_joins_folder_and_scheduler(
    tmp_path: Path, run_json: dict[str, object] | None, job: JobState | None, want: tuple[str, str]
) -> None:
    record = JobRecord("slurm", id="42_0", submitted=1.0) if job is not None else None
    row = cell_status(_cell(tmp_path, run_json), record, job, waiting=False)
    assert (row.state, row.reason) == want


def test_waiting_cells_are_queued_in_their_submitter(tmp_path: Path) -> None:
    record = JobRecord("processes", submitted=1.0, state=QUEUED)
    assert cell_status(_cell(tmp_path), record, None, waiting=True).state == "queued"
    assert cell_status(RunDir(tmp_path / "other"), record, None, waiting=False).state == "pending"


def test_event_tail_reads_only_complete_new_lines(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"type": "stage", "name": "train", "t": 1}\n{"type": "stage", "na')
    tail = EventTail(path)
    assert [e.name for e in tail.read() if isinstance(e, Stage)] == ["train"]
    with open(path, "a") as fh:
        fh.write('me": "evaluate", "t": 2}\n')
    assert [e.name for e in tail.read() if isinstance(e, Stage)] == ["evaluate"] and tail.read() == []
    assert EventTail.at_end(path).read() == []


# ---- real grids: the processes executor and submitit's local executor ----------------------------------------------


@pytest.mark.slow  # ~1 min each on 2 busy cores (still run in CI)
@pytest.mark.parametrize("flags", [("--executor", "processes", "--workers", "2"),
                                   ("--executor", "slurm", "--slurm-backend", "local", "--workers", "2")])  # fmt: skip
def test_smoke_grid_gives_the_local_numbers(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, flags: tuple[str, ...]
) -> None:
    reference = executors_common.smoke_reference(tmp_path_factory)
    grid = tmp_path / "grid"
    run_smoke(grid, *flags)
    assert exported(grid) == reference  # every table, number by number
    doc = grid_doc(grid)
    jobs = [c["job"] for c in doc["cells"]]
    assert all(j["executor"] == flags[1] and j["id"].isdigit() and j["node"] == socket.gethostname() for j in jobs)
    assert len({j["id"] for j in jobs}) == 4 and doc["submitter"]["status"] == "complete"
    assert set(states(grid).values()) == {"complete"}


XX = "tiny-random__xx__s0"
LONG_XX = ("--strategies", "xx", "--steps", "40")  # smoke with only the baseline and a 40-step xx cell


@pytest.mark.slow
def test_resume_after_kill_9_follows_the_running_worker_and_gives_the_same_numbers(tmp_path: Path) -> None:
    needs_data()
    reference = tmp_path / "reference"
    run_smoke(reference, *LONG_XX)
    grid = tmp_path / "grid"
    xx = grid / "cells" / XX
    submitter = start("run", "smoke", "--data-dir", SHARED_DATA, "--out", grid, *LONG_XX,
                      "--executor", "processes", "--workers", "2", log=tmp_path / "first.log")  # fmt: skip
    wait_until(lambda: len(trained_steps(xx)) >= 2, 300, "xx trains", submitter)
    os.kill(submitter.pid, signal.SIGKILL)
    submitter.wait()
    worker = grid_doc(grid)["cells"][1]["job"]["id"]
    assert int(worker) == worker_pid(xx)
    with paused(int(worker)):  # (held mid-training while the resume starts)
        assert states(grid)[XX] == "running"  # its worker outlived the submitter
        resume = start("run", "smoke", "--resume", grid, "--data-dir", SHARED_DATA, log=tmp_path / "resume.log")
        followed = f"cell {XX} is still running as job {worker}: followed, not resubmitted"
        wait_until(lambda: followed in (tmp_path / "resume.log").read_text(), 300, "the resume follows xx", resume)
    assert resume.wait(timeout=600) == 0, (tmp_path / "resume.log").read_text()[-3000:]
    assert grid_doc(grid)["cells"][1]["job"]["id"] == worker
    assert sum(isinstance(e, RunStarted) for e in read_events(xx / "events.jsonl")) == 1  # one attempt, never two
    assert trained_steps(xx) == list(range(1, 41))
    assert exported(grid) == exported(reference)


@pytest.mark.slow
def test_status_and_cancel_of_a_local_grid(tmp_path: Path) -> None:
    """local: the cells run in the submitting process; cancel asks it (SIGINT), the cell stops after its step."""
    needs_data()
    grid = tmp_path / "grid"
    xx = grid / "cells" / XX
    submitter = start("run", "smoke", "--data-dir", SHARED_DATA, "--out", grid, *LONG_XX, log=tmp_path / "run.log")
    wait_until(lambda: len(trained_steps(xx)) >= 2, 300, "xx trains", submitter)
    with paused(submitter.pid):
        seen = bench("status", grid)
        assert seen.returncode == 0
        row = next(line for line in seen.stdout.splitlines() if XX in line)
        assert "running" in row and str(submitter.pid) in row and socket.gethostname() in row
        cancel = bench("cancel", grid, "--wait", "0")
        assert cancel.returncode == 0, cancel.stdout + cancel.stderr
        assert f"asked the submitting process (pid {submitter.pid}) to cancel" in cancel.stdout
    assert submitter.wait(timeout=300) == 130
    assert states(grid) == {"tiny-random__none__s0": "complete", XX: "cancelled"}
    run = RunDir(xx).status()
    assert run["status"] == "cancelled" and 2 <= run["step"] < 40 and run["checkpoint"]


@pytest.mark.slow
def test_cancel_a_processes_grid_whose_submitter_is_gone(tmp_path: Path) -> None:
    """The submitter killed (kill -9): cancel reaches the worker itself (SIGINT); the cell checkpoints and says so."""
    needs_data()
    grid = tmp_path / "grid"
    xx = grid / "cells" / XX
    submitter = start("run", "smoke", "--data-dir", SHARED_DATA, "--out", grid, *LONG_XX,
                      "--executor", "processes", log=tmp_path / "run.log")  # fmt: skip
    wait_until(lambda: len(trained_steps(xx)) >= 2, 300, "xx trains", submitter)
    os.kill(submitter.pid, signal.SIGKILL)
    submitter.wait()
    with paused(worker_pid(xx)):
        cancel = bench("cancel", grid, "--wait", "0")
        assert cancel.returncode == 0, cancel.stdout + cancel.stderr
        assert "cancelled 1 job(s) of 1 queued or running cell(s)" in cancel.stdout
    wait_until(lambda: RunDir(xx).status().get("status") == "cancelled", 300, "xx marks itself cancelled")
    settled = bench("status", grid)
    row = next(line for line in settled.stdout.splitlines() if XX in line)
    assert "cancelled" in row and "stopped during training at step" in row
    run = RunDir(xx).status()
    assert run["checkpoint"] and trained_steps(xx)[-1] < 40


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda d: d["cells"][0].update(job="1234"), "cells[0].job should be a job record"),
        (lambda d: d["cells"][0].update(job={"id": 7}), "cells[0].job should be a job record"),
        (lambda d: d.update(executor=["slurm"]), "'executor' should be an object"),
        (lambda d: d["cells"][1].update(dir="/tmp/x"), "leaves the grid folder"),  # (after a job record's check)
    ],
)
def test_a_damaged_job_record_in_grid_json_is_one_line(tmp_path: Path, change: object, says: str) -> None:
    from hbt.engine.runs.grid_doc import grid_document, read_grid

    doc = grid_document(load_preset("smoke"))
    doc["cells"][0]["job"] = JobRecord("slurm", id="42_0").to_dict()
    change(doc)  # type: ignore[operator]
    write_json(tmp_path / "grid.json", doc)
    with pytest.raises(UserError, match=re.escape(says)):
        read_grid(tmp_path)
