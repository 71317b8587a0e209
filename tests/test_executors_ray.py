"""The ray executor on a real local Ray cluster of two nodes (`ray start --head` plus a second `ray start --address`
on this machine, one CPU each, token authentication as Ray sets it up by default): the smoke grid's cells spread over
both nodes and give the local grid's numbers; a grid whose submitting process was killed (kill -9) keeps running (its
tasks belong to the grid's detached supervisor actor), shows in `status`, is cancelled by `cancel` through Ray's own
cancel, and a --resume finishes it."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
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
    status,
    trained_steps,
    wait_until,
    worker_pid,
)

XX = "tiny-random__xx__s0"
RAY = str(Path(sys.executable).parent / "ray")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Two Ray nodes on this machine; yields the environment a client needs (its address and auth token)."""
    needs_data()
    token = tmp_path_factory.mktemp("ray") / "token"
    token.write_text(secrets.token_hex(32))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
    common = ["--num-cpus=1", "--object-store-memory=100000000", "--disable-usage-stats"]
    full = {**os.environ, **env}
    try:
        subprocess.run([RAY, "start", "--head", f"--port={port}", "--include-dashboard=false", *common], env=full,
                       check=True, capture_output=True, timeout=300)  # fmt: skip
        subprocess.run([RAY, "start", f"--address=127.0.0.1:{port}", *common], env=full, check=True,
                       capture_output=True, timeout=300)  # fmt: skip
        yield {**env, "ADDRESS": f"127.0.0.1:{port}"}
    finally:
        subprocess.run([RAY, "stop", "--force"], env=full, capture_output=True, timeout=120, check=False)


def ray_env(cluster: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in cluster.items() if k != "ADDRESS"}


@pytest.mark.slow  # ~2 min with the cluster's start (still run in CI)
def test_smoke_grid_on_two_ray_nodes_gives_the_local_numbers(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, cluster: dict[str, str]
) -> None:
    reference = executors_common.smoke_reference(tmp_path_factory)
    grid = tmp_path / "grid"
    run_smoke(grid, "--executor", "ray", "--ray-address", cluster["ADDRESS"], **ray_env(cluster))
    assert exported(grid) == reference
    jobs = [c["job"] for c in grid_doc(grid)["cells"]]
    assert all(j["executor"] == "ray" and len(j["id"]) >= 16 for j in jobs)
    nodes = {j["node"].rsplit(" ", 1)[-1] for j in jobs}
    assert len(nodes) == 2, jobs  # one CPU per node, one CPU per cell: both nodes ran cells
    assert set(states(grid, **ray_env(cluster)).values()) == {"complete"}


@pytest.mark.slow
def test_kill_9_then_status_cancel_and_resume_on_ray(tmp_path: Path, cluster: dict[str, str]) -> None:
    grid = tmp_path / "grid"
    xx = grid / "cells" / XX
    env = ray_env(cluster)
    flags = ("--strategies", "xx", "--steps", "40", "--executor", "ray", "--ray-address", cluster["ADDRESS"])
    submitter = start("run", "smoke", "--data-dir", SHARED_DATA, "--out", grid, *flags, log=tmp_path / "run.log", **env)
    wait_until(lambda: len(trained_steps(xx)) >= 2, 300, "xx trains", submitter)
    os.kill(submitter.pid, signal.SIGKILL)  # the tasks belong to the grid's supervisor actor: they go on
    submitter.wait()
    with paused(worker_pid(xx)):  # (caught mid-training, however slow the commands below start)
        row = next(c for c in status(grid, **env)["cells"] if c["id"] == XX)
        assert row["state"] == "running" and " node " in row["node"], row
        assert "gone (killed? resume with --resume)" in bench("status", grid, **env).stdout
        cancel = bench("cancel", grid, "--wait", "0", **env)
        assert cancel.returncode == 0, cancel.stdout + cancel.stderr
        assert "cancelled 1 job(s) of 1 queued or running cell(s)" in cancel.stdout
    wait_until(lambda: RunDir(xx).status().get("status") == "cancelled", 300, "ray.cancel stops the worker")
    wait_until(lambda: states(grid, **env)[XX] == "cancelled", 300, "the task ends")
    assert RunDir(xx).status()["checkpoint"]  # the worker stopped after its step, with a checkpoint
    resumed = bench("run", "smoke", "--resume", grid, "--data-dir", SHARED_DATA, **env)
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    assert "resuming from" in (xx / "events.jsonl").read_text()
    assert set(states(grid, **env).values()) == {"complete"} and trained_steps(xx)[-1] == 40
