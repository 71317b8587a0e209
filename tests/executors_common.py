"""Helpers of the executor tests: `hbt-bench` in a subprocess (as a user runs it, so that a kill -9 or a Ctrl-C hits a
real submitting process), waiting for a cell to reach a point, and the smoke grid run locally as the reference every
executor must reproduce number by number."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from hbt.engine.common.events import TrainStep, read_events

from tests.conftest import REPO, SHARED_DATA

# every cell gets one torch thread whichever executor runs it: a float reduction's result depends on the thread count
THREADS = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def needs_data() -> None:
    if not (SHARED_DATA / "xquad-r" / "en.json").exists():
        pytest.skip(f"real LAReQA data not found at {SHARED_DATA} (set HBT_TEST_DATA_DIR to its folder)")


def env(**extra: str) -> dict[str, str]:
    return {**os.environ, **THREADS, "HBT_PROGRESS_INTERVAL": "1", "COLUMNS": "200", **extra}


def bench(*args: str | Path, **extra: str) -> subprocess.CompletedProcess[str]:
    """`hbt-bench ARGS` to its end (output captured)."""
    return subprocess.run(
        [sys.executable, "-m", "hbt.engine.cli", *map(str, args)],
        cwd=REPO, env=env(**extra), capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip


def start(*args: str | Path, log: Path, **extra: str) -> subprocess.Popen[bytes]:
    """`hbt-bench ARGS` started in the background, its output in `log`."""
    with open(log, "wb") as fh:
        return subprocess.Popen(
            [sys.executable, "-m", "hbt.engine.cli", *map(str, args)],
            cwd=REPO, env=env(**extra), stdout=fh, stderr=subprocess.STDOUT,
        )  # fmt: skip


def run_smoke(out: Path, *flags: str | Path, **extra: str) -> subprocess.CompletedProcess[str]:
    result = bench("run", "smoke", "--data-dir", SHARED_DATA, "--out", out, *flags, **extra)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def exported(grid: Path) -> Any:
    result = bench("export", grid, "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def wait_until(
    what: Callable[[], bool], timeout_s: float, why: str, proc: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout_s
    while not what():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{why}: the process ended first (exit {proc.returncode})")
        if time.monotonic() > deadline:
            raise AssertionError(f"{why}: not within {timeout_s:.0f} s")
        time.sleep(0.3)


@contextlib.contextmanager
def paused(pid: int) -> Iterator[None]:
    """SIGSTOP a process for the block (SIGCONT after): the cell it runs is caught mid-training however slow the
    commands the test runs meanwhile (each `hbt-bench` call starts an interpreter and imports torch)."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def worker_pid(cell: Path) -> int:
    """The process that runs the cell, as its run.json names it."""
    pid = json.loads((cell / "run.json").read_text())["pid"]
    assert isinstance(pid, int)
    return pid


def trained_steps(cell: Path) -> list[int]:
    return [e.step for e in read_events(cell / "events.jsonl") if isinstance(e, TrainStep)]


def grid_doc(grid: Path) -> dict[str, Any]:
    return dict(json.loads((grid / "grid.json").read_text()))


def status(grid: Path, **extra: str) -> dict[str, Any]:
    """`hbt-bench status GRID --json` (`extra`: environment, e.g. the fake Slurm's PATH)."""
    result = bench("status", grid, "--json", **extra)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def states(grid: Path, **extra: str) -> dict[str, str]:
    return {c["id"]: c["state"] for c in status(grid, **extra)["cells"]}


def strategies_of(doc: dict[str, Any]) -> Sequence[str]:
    return [c["strategy"] for c in doc["cells"]]


_REFERENCE: list[Any] = []


def smoke_reference(factory: pytest.TempPathFactory) -> Any:
    """The smoke grid run by the `local` executor (one torch thread per cell), once per test session: every executor
    must give it back, number by number."""
    needs_data()
    if not _REFERENCE:
        out = factory.mktemp("reference") / "smoke-local"
        run_smoke(out)
        _REFERENCE.append(exported(out))
    return _REFERENCE[0]
