"""Interruption, resume and numerical faults on real data with the tiny random model (plumbing, not quality)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from hbt.engine.common.events import EventBus, TrainStep
from hbt.engine.common.interrupts import CancelFlag, Cancelled
from hbt.engine.common.run_config import RunConfig
from hbt.engine.runs.grid import run_grid
from hbt.engine.runs.presets import load_preset
from hbt.engine.runs.run import execute
from hbt.engine.runs.rundir import RunDir

PRESET = """
[preset]
name = "rel"
description = "reliability test"
backbones = ["tiny-random"]
strategies = ["xx", "hybrid"]
seeds = [0]
baseline = true

[run]
train_data = "mlqa-r"
eval_data = ["xquad-r"]
langs = ["de", "en"]
train_langs = ["de", "en"]
max_queries = 12
max_train_pairs = 40
steps = 4
batch_size = 4
lr = 1e-3
checkpoint_steps = 1
save_model = true
"""
CELLS = ["tiny-random__none__s0", "tiny-random__xx__s0", "tiny-random__hybrid__s0"]


def _config(data_dir: Path) -> RunConfig:
    return RunConfig(
        backbone="tiny-random", strategy="hybrid", train_data="mlqa-r", train_langs=["de", "en"], langs=["de", "en"],
        max_queries=12, max_train_pairs=40, steps=6, batch_size=4, lr=1e-3, data_dir=str(data_dir), seed=3,
    )  # fmt: skip


def _cancel_at(step: int, bus: EventBus) -> CancelFlag:
    flag = CancelFlag()

    def listener(event: object) -> None:
        if isinstance(event, TrainStep) and event.step == step:
            flag.set()

    bus.subscribe(listener)
    return flag


def test_cancel_checkpoints_then_resume_equals_uninterrupted(tmp_path: Path, data_dir: Path) -> None:
    config = _config(data_dir)
    straight = execute(config, tmp_path / "straight")

    bus = EventBus()
    out = tmp_path / "cut"
    with pytest.raises(Cancelled) as info:
        execute(config, out, bus, cancel=_cancel_at(2, bus))
    run = RunDir(out)
    status = run.status()
    assert status["status"] == "cancelled" and status["step"] == info.value.step == 3
    assert Path(status["checkpoint"]).name == "checkpoint-3" and Path(status["checkpoint"]).is_dir()
    assert not run.results_file.exists() and not run.model_dir.exists()

    resumed = execute(config, out, resume=True)
    assert run.status()["status"] == "complete"
    # the trainer restores model, optimizer, scheduler and RNG state and skips the batches already seen: on CPU the
    # resumed run reproduces the uninterrupted one exactly
    assert resumed["training"]["loss_curve"] == straight["training"]["loss_curve"]
    assert resumed["training"]["composition"] == straight["training"]["composition"]
    a, b = (r["datasets"]["xquad-r"]["multilingual"]["macro"]["map"] for r in (straight, resumed))
    assert a == pytest.approx(b, abs=1e-9)


def test_resume_after_training_skips_to_evaluation(tmp_path: Path, data_dir: Path) -> None:
    config = _config(data_dir)
    out = tmp_path / "cell"
    first = execute(config, out)
    RunDir(out).results_file.unlink()  # as if killed during evaluation
    RunDir(out).mark("running")
    bus = EventBus()
    seen: list[str] = []
    bus.subscribe(lambda e: seen.append(getattr(e, "name", "")))
    again = execute(config, out, bus, resume=True)
    assert "train" not in seen and "load-data" in seen
    assert again["training"] == first["training"]
    for doc in (again, first):
        doc["datasets"]["xquad-r"].pop("timings")
    assert again["datasets"] == first["datasets"]  # the saved model scores exactly as the one it was saved from


def test_nan_loss_marks_cell_failed_and_grid_goes_on(tmp_path: Path, data_dir: Path) -> None:
    """A huge learning rate drives the tiny model's loss to NaN within a couple of steps."""
    preset = load_preset("smoke")
    preset = replace(preset, strategies=["xx", "xy"], run=replace(preset.run, lr=1e30, data_dir=str(data_dir)))
    summary = run_grid(preset, tmp_path / "g", EventBus())
    assert summary == {"complete": 1, "failed": 2, "skipped": 0, "cancelled": 0}
    for strategy in ("xx", "xy"):
        status = RunDir(tmp_path / "g" / "cells" / f"tiny-random__{strategy}__s0").status()
        assert status["status"] == "failed" and "NaN/inf" in status["error"]
        assert status["step"] >= 1 and status["last_finite_loss"] is not None
    assert RunDir(tmp_path / "g" / "cells" / "tiny-random__none__s0").is_complete()


def _cli(args: list[str], cwd: Path, fault: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("HBT_FAULT_KILL_AT", None)
    if fault:
        env["HBT_FAULT_KILL_AT"] = fault
    return subprocess.run(
        [sys.executable, "-m", "hbt.engine.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def _complete_results(grid: Path) -> dict[str, str]:
    """Hash of results.json for every cell marked complete (each must parse: no torn writes)."""
    out = {}
    for cell in CELLS:
        run = RunDir(grid / "cells" / cell)
        if run.status().get("status") == "complete":
            text = run.results_file.read_text(encoding="utf-8")
            json.loads(text)
            out[cell] = hashlib.sha256(text.encode()).hexdigest()
    return out


@pytest.mark.parametrize(
    "faults",
    [["train_step:2", "stage:load-data#2", "stage:write#1"]],
    ids=["kill-during-training-evaluation-writing"],
)
def test_kill9_then_resume_keeps_finished_cells(tmp_path: Path, data_dir: Path, faults: list[str]) -> None:
    (tmp_path / "rel.toml").write_text(PRESET, encoding="utf-8")
    grid = tmp_path / "g"
    args = ["run", "rel.toml", "--data-dir", str(data_dir)]
    done: dict[str, str] = {}
    for i, fault in enumerate(faults):
        proc = _cli([*args, "--resume", "g"] if i else [*args, "--out", "g"], tmp_path, fault)
        assert proc.returncode == -9, proc.stderr[-2000:]
        now = _complete_results(grid)
        assert all(now[cell] == digest for cell, digest in done.items()), "a finished cell changed after a crash"
        done = now
    proc = _cli([*args, "--resume", "g"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    final = _complete_results(grid)
    assert set(final) == set(CELLS)
    assert all(final[cell] == digest for cell, digest in done.items())
    for cell in CELLS[1:]:
        curve = json.loads(RunDir(grid / "cells" / cell).results_file.read_text())["training"]["loss_curve"]
        assert [s for s, _ in curve] == [1, 2, 3, 4]  # steps before the crash are kept in the curve


def test_first_ctrl_c_checkpoints_and_exits_then_resume(tmp_path: Path, data_dir: Path) -> None:
    (tmp_path / "rel.toml").write_text(PRESET, encoding="utf-8")
    args = ["run", "rel.toml", "--data-dir", str(data_dir)]
    proc = _cli([*args, "--out", "g"], tmp_path, "SIGINT@train_step:2")
    assert proc.returncode == 130
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("hbt: stopped") and "--resume g" in last and "Traceback" not in proc.stderr
    cell = RunDir(tmp_path / "g" / "cells" / CELLS[1])
    assert cell.status()["status"] == "cancelled" and Path(tmp_path / cell.status()["checkpoint"]).is_dir()
    proc = _cli([*args, "--resume", "g"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert all(RunDir(tmp_path / "g" / "cells" / c).is_complete() for c in CELLS)


def test_internal_error_exits_1_with_traceback_file(monkeypatch: pytest.MonkeyPatch, capsys, tmp_path: Path) -> None:
    from hbt.engine.cli import main as cli

    def broken(args: object, console: object) -> int:
        raise RuntimeError("boom")

    monkeypatch.setenv("HBT_CACHE_DIR", str(tmp_path))
    monkeypatch.setitem(cli.COMMANDS, "list", broken)
    assert cli.main(["list", "presets"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hbt: internal error (RuntimeError: boom); traceback: ")
    path = Path(err[0].split("traceback: ")[1].split(" — ")[0])
    assert path.is_file() and "RuntimeError: boom" in path.read_text()
