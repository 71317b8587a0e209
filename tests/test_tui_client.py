"""hbt-tui as a client (issue 25): every grid runs in its own process, the TUI follows its folder, shows where each cell
runs, attaches to a grid started by `hbt-bench run`, detaches, and its keys keep answering while a real grid runs;
Setup offers the executor. Also issue 23's items 15 (a stop during evaluation stops at once, and the dialog says so)
and 20 (the Run screen's stage text, ETA, loss and a resumed cell's steps)."""

from __future__ import annotations

import asyncio
import os
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hbt.engine.common.events import EventBus, JsonlSink, Log, Progress, RunFinished, RunStarted, Stage, TrainStep
from hbt.engine.common.io import read_json, write_json
from hbt.engine.runs.control import GridFollower
from hbt.engine.runs.rundir import RunDir
from hbt.tui.app import SECTIONS, HbtApp
from hbt.tui.components.cell_table import CellTable
from hbt.tui.components.loss_chart import LossChart
from hbt.tui.components.run_stats import RunStats
from hbt.tui.run_state import RunState
from hbt.tui.screens.confirm import ConfirmScreen
from hbt.tui.screens.run import RunScreen
from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import Static

from tests.conftest import SHARED_DATA
from tests.executors_common import bench, needs_data, start, wait_until
from tests.test_tui import POLL_S, launch, make_app, paused_grid, pick_preset, set_and_validate, setup_screen, wait_for
from tests.test_tui_fakes import T0, FakeBackend, FakeEngine

XX = "tiny-random__xx__s0"


# ---- Setup offers the executor -------------------------------------------------------------------------------------


async def test_setup_offers_the_executor_and_its_settings(tmp_path: Path, data_folder: Path) -> None:
    backend = FakeBackend(FakeEngine(steps=2), fixed_catalogue=True)
    async with setup_screen(tmp_path, data_folder, backend) as (_, pilot, setup):
        shown = {r: setup.query_one(f"#row-{r}").display for r in ("workers", "slurm-partition", "ray-address")}
        assert shown == {"workers": False, "slurm-partition": False, "ray-address": False}  # local: nothing to set
        result = await set_and_validate(pilot, setup, "executor", "processes")
        assert setup.query_one("#row-workers").display and not setup.query_one("#row-ray-address").display
        assert result.preset is not None and result.preset.executor.kind == "processes"
        assert "on processes (2 workers)" in str(setup.query_one("#validation", Static).render())
        result = await set_and_validate(pilot, setup, "workers", "0")
        assert result.preset is None and result.field == "workers" and "workers must be positive" in result.message
        assert setup.query_one("#row-workers").has_class("-invalid")
        await set_and_validate(pilot, setup, "workers", "3")
        result = await set_and_validate(pilot, setup, "executor", "ray")
        assert setup.query_one("#row-ray-address").display and not setup.query_one("#row-workers").display
        result = await set_and_validate(pilot, setup, "ray-address", "head-without-port")
        assert result.preset is None and result.field == "ray-address" and "host:port" in result.message
        await set_and_validate(pilot, setup, "ray-address", "")
        await set_and_validate(pilot, setup, "executor", "processes")
        await launch(pilot)
        assert backend.launched[-1].executor.kind == "processes" and backend.launched[-1].executor.workers == 3


# ---- issue 23 item 15: a stop during evaluation ---------------------------------------------------------------------


@pytest.mark.slow  # ~30 s: a real cell trained, stopped in its evaluation, resumed (still run in CI)
def test_a_stop_during_evaluation_stops_at_once_and_keeps_the_trained_model(tmp_path: Path) -> None:
    needs_data()
    out = tmp_path / "cell"
    flags = ("train", "--strategy", "xx", "--backbone", "tiny-random", "--steps", "3", "--batch-size", "4",
             "--langs", "de,en", "--train-langs", "de,en", "--max-queries", "12", "--max-train-pairs", "40",
             "--data-dir", SHARED_DATA, "--out", out)  # fmt: skip
    stopped = bench(*flags, HBT_FAULT_KILL_AT="SIGINT@stage:load-data")  # Ctrl-C as the evaluation begins
    assert stopped.returncode == 130, stopped.stdout[-2000:] + stopped.stderr[-2000:]
    run = RunDir(out).status()
    assert run["status"] == "cancelled" and not (out / "results.json").exists()
    assert (
        run["error"]
        == "stopped during the evaluation of xquad-r (the trained model is kept; --resume evaluates it again)"
    )
    assert (out / "model" / "config.json").exists() and (out / "training.json").exists()


async def test_the_stop_dialog_says_what_a_stop_does(tmp_path: Path, data_folder: Path) -> None:
    async with paused_grid(tmp_path, data_folder, (1, 2)) as (app, pilot, _, engine):
        state = app.run_state
        assert state is not None
        state.cells["tiny-random__none__s0"].status = "running"  # (as if the baseline were evaluating meanwhile)
        await pilot.press("ctrl+c")
        dialog = app.screen
        assert isinstance(dialog, ConfirmScreen)
        body = str(dialog.query_one("#confirm-body", Static).render())
        assert "a cell being evaluated stops at once" in body and "tiny-random__none__s0 (evaluating)" in body
        await pilot.press("n")
        engine.resume.set()


# ---- issue 23 item 20: the Run screen's live numbers ---------------------------------------------------------------


def _state() -> RunState:
    state = RunState(name="smoke", out=Path("runs/g"), batch_size=4)
    for strategy in ("none", "xx"):
        state.add_cell(f"tiny-random__{strategy}__s0", "tiny-random", strategy, 0)
    return state


def test_no_training_eta_once_training_is_over_but_the_encoding_task_has_one() -> None:
    state = _state()
    bus = EventBus(state.apply)
    bus.cell = XX
    bus.emit(TrainStep(step=3, total_steps=3, epoch=1.0, loss=1.2, lr=1e-3, batches={"xx": 3}, samples_per_s=8.0,
                       strategy="xx", t=T0))  # fmt: skip
    assert state.eta_s() is None  # training is over: not "0s" while 2,456 passages encode
    bus.emit(Stage(name="encode", detail="xquad-r: 24 queries, 2456 candidates", t=T0 + 1))
    bus.emit(Progress(task="encode passages", done=0, total=2456, t=T0 + 1))
    bus.emit(Progress(task="encode passages", done=1024, total=2456, t=T0 + 11))
    assert state.eta_s() is None and state.task_eta_s() == pytest.approx(1432 / 102.4)


async def test_long_stage_text_is_not_cut_at_200_columns(tmp_path: Path, data_folder: Path) -> None:
    engine = FakeEngine(steps=4, pause_at=(1, 2))
    app = make_app(tmp_path, data_folder, FakeBackend(engine), start_preset="smoke")
    async with app.run_test(size=(200, 50)) as pilot:
        await pick_preset(pilot, "smoke")
        run = await launch(pilot)
        await wait_for(engine)
        stage = "write runs/smoke-20260101-000000/cells/tiny-random__xx__s0/results.json (then per_query.json)"
        assert app.run_state is not None
        app.run_state.stage = stage
        stats = run.query_one(RunStats)
        drawn: list[object] = []
        stats.update = drawn.append  # type: ignore[method-assign]
        run.apply_update()
        console = Console(width=stats.content_size.width, record=True)
        console.print(drawn[-1])
        text = console.export_text()
        assert stats.content_size.width > 60 and "".join(stage.split()) in "".join(text.split()), text
        engine.resume.set()


def test_a_resumed_cell_that_reused_its_model_shows_its_steps_and_curve(tmp_path: Path) -> None:
    """Its first attempt trained (and was stopped in its evaluation), the second loaded the saved model: followed
    from its folder, the cell shows the steps and the loss curve of the training it reuses, and a loss only with it."""
    cell = tmp_path / "cells" / XX
    write_json(tmp_path / "grid.json", {"schema": "hbt.grid/1", "preset": "smoke", "run": {}, "cells": [
        {"id": XX, "backbone": "tiny-random", "strategy": "xx", "seed": 0, "dir": f"cells/{XX}"}]})  # fmt: skip
    sink = JsonlSink(cell / "events.jsonl")
    sink(RunStarted(run_dir=str(cell), config={}, t=T0))
    for step in (1, 2, 3):
        sink(TrainStep(step=step, total_steps=3, epoch=step / 3, loss=1.5 - step / 10, lr=1e-3, batches={"xx": step},
                       samples_per_s=8.0, strategy="xx", t=T0 + step))  # fmt: skip
    sink(RunFinished(run_dir=str(cell), status="cancelled", error="stopped during the evaluation of xquad-r", t=T0 + 5))
    sink(RunStarted(run_dir=str(cell), config={}, t=T0 + 60))
    sink(Log(level="info", message=f"training already finished: loading {cell / 'model'}", t=T0 + 61))
    sink.close()
    state = _state()
    for event in GridFollower(tmp_path).poll().events:
        state.apply(event)
    xx = state.cells[XX]
    assert (xx.status, xx.step, xx.total_steps, xx.loss) == ("running", 3, 3, pytest.approx(1.2))
    assert state.curves() == {"xx": [(1.0, 1.4), (2.0, 1.3), (3.0, pytest.approx(1.2))]}


# ---- real grids in their own processes ------------------------------------------------------------------------------


async def until_ended(pilot: Pilot, app: HbtApp, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while app.run_state is not None and app.run_state.running:
        if time.monotonic() > deadline:
            raise AssertionError(f"the grid did not end within {timeout_s:.0f} s")
        await pilot.pause(0.2)


async def painted(app: HbtApp, key: str) -> None:
    """Press `key` and return once its answer is on screen: the app has handled the key, then the screen shown after
    it has handled what was pending and been refreshed (Textual's public call_after_refresh, twice)."""
    handled, shown = asyncio.Event(), asyncio.Event()
    app.simulate_key(key)
    app.call_after_refresh(handled.set)
    await handled.wait()
    app.screen.call_after_refresh(shown.set)
    await shown.wait()


@pytest.mark.slow  # a real smoke grid (~1-2 min on 2 busy cores; still run in CI)
async def test_keys_answer_while_a_local_grid_runs_in_its_own_processes(tmp_path: Path) -> None:
    """The grid runs in a separate process (the submitter, which runs the cells): the TUI only reads its folder, so
    a key press is answered in a frame or two while a cell encodes. Two times per key are printed, in alternating
    rounds over the same keys (they are properties of the machine, not asserted): until the key's answer is painted,
    and until the app is idle again (Pilot's press, which also waits for the work a key schedules after the frame,
    e.g. the footer's recompose). What is asserted is that no grid work runs in the TUI's process."""
    needs_data()
    app = HbtApp(runs_root=tmp_path / "runs", data_dir=str(SHARED_DATA), clock=lambda: T0, poll_s=POLL_S)
    threads_before = {t.ident for t in threading.enumerate()}
    keys = ["1", "2", "3", "2", "4", "2", "ctrl+t", "ctrl+t", "question_mark", "escape"]

    async def answers_while(pilot: Pilot, going: Callable[[], bool], at_most: int) -> dict[str, list[float]]:
        times: dict[str, list[float]] = {"painted": [], "idle again": []}
        rounds = 0
        while going() and sum(map(len, times.values())) < at_most:
            for key in keys:
                t0 = time.perf_counter()
                if rounds % 2 == 0:
                    await painted(app, key)
                    times["painted"].append(time.perf_counter() - t0)
                    if key.isdigit():  # the answer was there when the clock stopped
                        assert app.current_mode == list(SECTIONS)[int(key) - 1]
                    await pilot.pause()  # (what the key scheduled after the frame, untimed)
                else:
                    await pilot.press(key)
                    times["idle again"].append(time.perf_counter() - t0)
            rounds += 1
        return times

    async with app.run_test(size=(100, 30)) as pilot:
        await pick_preset(pilot, "smoke")
        idle = await answers_while(pilot, lambda: True, 4 * len(keys))  # the same keys with no grid: the machine's
        await pilot.press("1")
        await pick_preset(pilot, "smoke")
        run = await launch(pilot)
        state = app.run_state
        assert state is not None and app.grid_process is not None and app.grid_process.pid != os.getpid()
        answers = await answers_while(pilot, lambda: state.running, 400)
        await until_ended(pilot, app, 900)
        for name, measured in (("with no grid", idle), ("while the grid ran", answers)):
            for until, times in measured.items():
                if not times:  # (a grid that ended within one round leaves the other clock without keys)
                    print(f"\nkey answers {name}, until {until}: no keys", end="")
                    continue
                print(f"\nkey answers {name}, until {until}: {len(times)} keys, median "
                      f"{1000 * statistics.median(times):.0f} ms, max {1000 * max(times):.0f} ms", end="")  # fmt: skip
        print()
        assert state.status == "complete", [line.message for line in state.logs if line.level == "error"]
        assert [c.status for c in state.cells.values()] == ["complete"] * 4
        grid = read_json(state.out / "grid.json")
        assert grid["submitter"]["pid"] != os.getpid()  # the grid ran in its own process, never in the TUI's
        assert {c["job"]["id"] for c in grid["cells"]} == {str(grid["submitter"]["pid"])}  # local: the submitter
        await pilot.press("2")
        table = app.screen.query_one(CellTable)
        assert str(table.get_cell(XX, "job")) == str(grid["submitter"]["pid"])
        assert run.query_one("#loss", LossChart).point_count > 0
    extra = {t.ident for t in threading.enumerate()} - threads_before
    assert not [t.name for t in threading.enumerate() if t.ident in extra and "grid" in t.name.lower()]


@pytest.mark.slow
async def test_attach_to_a_grid_started_by_hbt_bench_detach_and_follow_it_to_the_end(tmp_path: Path) -> None:
    needs_data()
    grid = tmp_path / "grid"
    cli = start("run", "smoke", "--data-dir", SHARED_DATA, "--out", grid, "--executor", "processes", "--workers", "1",
                log=tmp_path / "run.log")  # fmt: skip
    wait_until(lambda: (grid / "grid.json").exists(), 300, "the grid starts", cli)
    app = HbtApp(runs_root=tmp_path, data_dir=str(SHARED_DATA), attach_path=grid, poll_s=POLL_S)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        state = app.run_state
        assert isinstance(app.screen, RunScreen) and state is not None and state.running and app.grid_process is None
        while state.cells["tiny-random__none__s0"].status != "complete":
            await pilot.pause(0.2)
        await pilot.press("d")  # detach: the grid goes on
        assert state.status == "detached" and cli.poll() is None
        while cli.poll() is None and not RunDir(grid / "cells" / XX).is_complete():
            await asyncio.sleep(0.2)
        assert app.attach(grid)  # attach again: the cells' events from the start, where each ran
        state = app.run_state
        assert state is not None
        await until_ended(pilot, app, 900)
        assert state.status == "complete" and [c.status for c in state.cells.values()] == ["complete"] * 4
        for cell in state.cells.values():
            results = read_json(grid / "cells" / cell.id / "results.json")["datasets"]["xquad-r"]
            assert cell.metrics["multi_map"] == pytest.approx(results["multilingual"]["macro"]["map"])
            assert cell.executor == "processes" and cell.job_id.isdigit() and cell.node
    assert cli.wait(timeout=300) == 0
