"""Pilot tests of the TUI flows hardened in issue 16: a resumed grid shows its true state, quitting or stopping a
running grid asks first, the command palette has the app's commands, every key press counts, Results follows a
running grid, Setup's lists/validation/datasets/ETA, and the polish items (one-point chart, names, notes)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hbt.engine.common.events import EventBus, Progress, RunFinished, Stage, TrainStep
from hbt.engine.common.io import write_json
from hbt.tui.components.cell_table import CellTable
from hbt.tui.components.loss_chart import LossChart
from hbt.tui.components.report_table import ReportTable
from hbt.tui.components.run_stats import RunStats
from hbt.tui.run_state import RunState
from hbt.tui.screens.confirm import QuitGridScreen
from hbt.tui.screens.history import HistoryScreen
from hbt.tui.screens.results import ResultsScreen
from hbt.tui.screens.run import RunScreen
from hbt.tui.screens.setup import SetupScreen
from textual import events
from textual.command import CommandPalette
from textual.pilot import Pilot
from textual.widgets import Button, DataTable, Input, SelectionList, Static

from tests.test_tui import history_screen, paused_grid, settle, setup_screen, wait_for
from tests.test_tui_fakes import T0, FakeBackend, FakeEngine, FakeGridProcess, make_grid


def burst(pilot: Pilot, *keys: str) -> None:
    """Send keys the way a terminal does when they come fast: all queued before any is handled."""
    for key in keys:
        char = " " if key == "space" else (key if len(key) == 1 else None)
        event = events.Key(key, char)
        event.set_sender(pilot.app)
        pilot.app._driver.send_message(event)  # type: ignore[union-attr]


async def report_loaded(pilot: Pilot, results: ResultsScreen) -> None:
    """Wait for the Results screen's report worker only (settle would also wait for a paused grid worker)."""
    for _ in range(500):
        await pilot.pause(0.02)
        if results.report is not None and not results.loading:
            return
    raise AssertionError("the report never loaded")


async def settle_workers(pilot: Pilot) -> None:
    """Let the app's workers (the cancel's) finish, without waiting for a held grid."""
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def text_of(widget: Static) -> str:
    return str(widget.render())


# ---- 1. a resumed grid shows the true state of every cell ---------------------------------------------------------


async def test_resume_from_history_shows_complete_cells_as_complete(tmp_path: Path, data_folder: Path) -> None:
    runs = tmp_path / "runs"
    grid = make_grid(runs, "smoke-cut", started=T0)
    cut = grid / "cells" / "tiny-random__hybrid__s0"
    (cut / "results.json").unlink()
    write_json(cut / "run.json", {"status": "cancelled", "step": 2, "error": "cancelled at step 2"})
    engine = FakeEngine(steps=4, pause_at=(3, 3))  # the resumed hybrid cell, at step 3
    backend = FakeBackend(engine, fixed_catalogue=True)
    async with history_screen(tmp_path, data_folder, backend) as (app, pilot, history):
        history.query_one("#runs", DataTable).focus()
        await pilot.press("u")
        await wait_for(engine)
        await pilot.pause()
        state = app.run_state
        run = app.screen
        assert state is not None and isinstance(run, RunScreen)
        statuses = {c.strategy: c.status for c in state.cells.values()}
        assert statuses == {"none": "complete", "xx": "complete", "xy": "complete", "hybrid": "running"}
        table = run.query_one(CellTable)
        assert [table.status_of(c) for c in state.cells] == ["complete", "complete", "complete", "running"]
        # the kept cells keep their numbers and loss curves; the header and bar count them
        assert state.cells["tiny-random__xx__s0"].metrics["mono_map"] == pytest.approx(0.575)
        assert str(table.get_cell("tiny-random__xx__s0", "mono")).strip() == "0.5750"
        assert "3/4 cells" in text_of(run.query_one("#run-title", Static))
        assert run.query_one("#grid-progress").progress == 3  # type: ignore[attr-defined]
        assert {"xx", "xy"} <= set(run.query_one("#loss", LossChart).curves)
        log = [line.message for line in state.logs]
        assert any("was cancelled at step 2" in m for m in log), log
        engine.resume.set()
        await settle(pilot)
        assert state.status == "complete" and "4/4 cells" in text_of(run.query_one("#run-title", Static))


# ---- 2. quitting or stopping a running grid asks first; keys keep one meaning -------------------------------------


async def test_quit_during_a_run_asks_then_stops_the_grid_before_exiting(tmp_path: Path, data_folder: Path) -> None:
    async with paused_grid(tmp_path, data_folder, (1, 2)) as (app, pilot, _, engine):
        await pilot.press("ctrl+q")
        assert isinstance(app.screen, QuitGridScreen) and not app._exit
        await pilot.press("escape")  # stay
        state = app.run_state
        assert state is not None and state.status == "running" and not app._exit
        await pilot.press("ctrl+q")
        await pilot.press("s")  # stop it, then quit
        assert state.status == "cancelling" and not app._exit  # stopping first: the cell gets its checkpoint
        engine.resume.set()
        await settle(pilot)
        assert state.status == "cancelled" and app._exit
        assert state.cells["tiny-random__xx__s0"].step == 2


async def test_quit_leaves_the_grid_running_in_its_own_process(tmp_path: Path, data_folder: Path) -> None:
    """The TUI is a client: quitting (y) leaves the grid's process running, unstopped (it finishes on its own)."""
    async with paused_grid(tmp_path, data_folder, (1, 2)) as (app, pilot, _, engine):
        process = app.grid_process
        assert isinstance(process, FakeGridProcess)
        await pilot.press("ctrl+q", "y")
        assert app._exit and process.poll() is None and not process.cancel.is_set()
    engine.resume.set()
    process.join()
    assert process.poll() == 0 and (process.out / "cells" / "tiny-random__hybrid__s0" / "results.json").exists()


async def test_a_second_quit_while_stopping_exits_at_once(tmp_path: Path, data_folder: Path) -> None:
    async with paused_grid(tmp_path, data_folder, (1, 2)) as (app, pilot, _, engine):
        process = app.grid_process
        assert isinstance(process, FakeGridProcess)
        await pilot.press("ctrl+q", "s")
        assert app.quitting and not app._exit
        await settle_workers(pilot)
        await pilot.press("ctrl+q")  # the step is taking long: quit now (the grid goes on stopping by itself)
        assert app._exit and app.grid_running and process.cancel.is_set()
        engine.resume.set()  # the grid's process sees the cancel at its next step and ends
    process.join()
    assert process.poll() == 130


async def test_quit_without_a_running_grid_does_not_ask(tmp_path: Path, data_folder: Path) -> None:
    async with setup_screen(tmp_path, data_folder) as (app, pilot, _):
        await pilot.press("ctrl+q")
        assert app._exit


async def test_single_letter_keys_are_inert_in_text_fields(tmp_path: Path, data_folder: Path) -> None:
    runs = tmp_path / "runs"
    make_grid(runs, "smoke-a", started=T0)
    backend = FakeBackend(FakeEngine(steps=2), fixed_catalogue=True)
    async with setup_screen(tmp_path, data_folder, backend) as (app, pilot, setup):
        seeds = setup.query_one("#seeds", Input)
        seeds.focus()
        seeds.value = ""
        await pilot.press("2", "4", "question_mark")
        assert isinstance(app.screen, SetupScreen) and seeds.value == "24?"
        await pilot.press("escape", "4")  # Esc leaves the field, then 4 switches section
        await settle(pilot)
        history = app.screen
        assert isinstance(history, HistoryScreen)
        root = history.query_one("#runs-root", Input)
        root.focus()
        await pilot.press("u", "o", "r", "c")
        assert root.value.endswith("uorc") and backend.resumed == [] and isinstance(app.screen, HistoryScreen)


# ---- 3. the command palette has the app's commands ----------------------------------------------------------------


async def palette(pilot: Pilot, query: str) -> list[str]:
    """Open ctrl+p, type `query`, return the titles offered (the palette stays open)."""
    await pilot.press("ctrl+p")
    await pilot.pause()
    assert isinstance(pilot.app.screen, CommandPalette)
    await pilot.press(*query)
    for _ in range(40):  # the palette searches in a worker; wait for its list to fill
        await pilot.pause(0.05)
        titles = [str(o.prompt).split("\n")[0] for o in pilot.app.screen.query_one("CommandList").options]  # type: ignore[attr-defined]
        if titles:
            return titles
    return []


async def test_command_palette_launches_exports_and_switches_views(tmp_path: Path, data_folder: Path) -> None:
    backend = FakeBackend(FakeEngine(steps=2), fixed_catalogue=True)
    async with setup_screen(tmp_path, data_folder, backend) as (app, pilot, _):
        titles = await palette(pilot, "launch grid")
        assert any("Launch grid" in t for t in titles), titles
        await pilot.press("enter")
        await settle(pilot)
        state = app.run_state
        assert state is not None and state.status == "complete" and isinstance(app.screen, RunScreen)
        titles = await palette(pilot, "open results")
        assert any("Open results of the current grid" in t for t in titles), titles
        await pilot.press("enter")
        await settle(pilot)
        results = app.screen
        assert isinstance(results, ResultsScreen) and results.report is not None
        titles = await palette(pilot, "export csv")
        assert any("Export report as CSV" in t for t in titles), titles
        await pilot.press("enter")
        await settle(pilot)
        assert (state.out / "report.csv").exists() and app.last_export == state.out / "report.csv"
        titles = await palette(pilot, "results view pairs")
        assert any("Results view: Pairs" in t for t in titles), titles
        await pilot.press("enter")
        await pilot.pause()
        assert results.query_one("#results-tabs").active == "tab-pairs"  # type: ignore[attr-defined]
        names = [c.title for c in app.get_system_commands(app.screen)]
        for title in ("Go to History", "Toggle light/dark theme", "Export report as LaTeX", "Reindex History"):
            assert title in names or title == "Reindex History", names


# ---- 4. every key press counts -------------------------------------------------------------------------------------


async def test_language_toggles_follow_every_key_press(tmp_path: Path, data_folder: Path) -> None:
    """Key presses handled back to back, before the list's toggle messages are: no toggle is lost."""
    async with setup_screen(tmp_path, data_folder) as (_, pilot, setup):
        langs = setup.query_one("#langs", SelectionList)
        values = [langs.get_option_at_index(i).value for i in range(langs.option_count)]
        assert values[:4] == ["all", "ar", "de", "el"] and list(langs.selected) == ["de", "en"]
        langs.focus()
        langs.highlighted = 0
        await pilot.pause()
        burst(pilot, "space", "down", "space", "down", "down", "space")  # all on, ar on, el on: as fast as they come
        await settle(pilot)
        assert list(langs.selected) == ["ar", "el"]
        assert setup.validation.preset is not None and setup.validation.preset.run.langs == ["ar", "el"]
        burst(pilot, "space", "up", "up", "space")  # el off, ar off: the last language off means all again
        await settle(pilot)
        assert list(langs.selected) == ["all"] and setup.validation.preset.run.langs is None
        # fast typing: editing keys apply in the order pressed (Textual's Input ran backspace after the keys typed
        # behind it), and the bar shows the reason for what the field holds now
        steps = setup.query_one("#steps", Input)
        steps.focus()
        steps.value = ""
        await pilot.pause()
        burst(pilot, "1", "2", "x", "backspace", "5")
        await settle(pilot)
        assert steps.value == "125" and setup.validation.preset is not None
        assert setup.validation.preset.run.steps == 125 and "✓" in text_of(setup.query_one("#validation", Static))
        burst(pilot, "ctrl+u", "x", "left", "9")
        await settle(pilot)
        assert steps.value == "9x" and "'9x' is not a whole number" in text_of(setup.query_one("#validation", Static))


# ---- 5. Results follows a running grid ----------------------------------------------------------------------------


async def test_results_opened_during_a_run_follow_the_grid(tmp_path: Path, data_folder: Path) -> None:
    async with paused_grid(tmp_path, data_folder, (2, 2)) as (app, pilot, _, engine):
        await pilot.press("o")
        results = app.screen
        assert isinstance(results, ResultsScreen)
        await report_loaded(pilot, results)
        assert "2/4 with results" in text_of(results.query_one("#results-title", Static))
        assert results.query_one("#summary-table", ReportTable).first_column() == ["none", "xx"]
        cells = {r[0]: (r[4], r[5]) for r in results.query_one("#cells-table", ReportTable).data}
        assert cells["tiny-random__hybrid__s0"] == ("pending", "not run yet")  # not "run directory missing"
        notes = text_of(results.query_one("#summary-notes", Static))
        assert "tiny-random__hybrid__s0 (not run yet" in notes and "missing" not in notes
        engine.resume.set()
        await settle(pilot, rounds=6)
        assert "4/4 with results" in text_of(results.query_one("#results-title", Static))
        assert results.query_one("#summary-table", ReportTable).first_column() == ["none", "xx", "xy", "hybrid"]
        assert "complete 4/4" in text_of(results.query_one("#nav-status", Static))


# ---- 6. Setup: focus, lists, long reasons, datasets, whole-grid ETA -----------------------------------------------


async def test_setup_lists_show_focus_and_grow_with_the_window(tmp_path: Path, data_folder: Path) -> None:
    async with setup_screen(tmp_path, data_folder, size=(100, 50)) as (_, pilot, setup):
        langs = setup.query_one("#langs", SelectionList)
        assert langs.option_count == 12 and langs.size.height >= 12  # every language visible in a tall window
        label = setup.query_one("#row-langs .row-label", Static)
        other = setup.query_one("#row-backbones .row-label", Static)
        unfocused = (label.styles.color, langs.styles.border_left)
        langs.focus()
        await pilot.pause()
        assert label.styles.color != unfocused[0] and label.styles.color != other.styles.color
        assert langs.styles.border_left != unfocused[1]


async def test_setup_long_reasons_wrap_and_missing_datasets_block_launch(tmp_path: Path, data_folder: Path) -> None:
    async with setup_screen(tmp_path, data_folder) as (app, pilot, setup):
        bar = setup.query_one("#validation", Static)
        long_dir = str(tmp_path / ("a-data-folder-that-does-not-exist-" * 3))
        setup.set_field("data-dir", long_dir)
        await settle(pilot)
        message = setup.validation.message
        assert "does not exist" in message and len(message) > bar.size.width
        assert bar.size.height >= 2  # wrapped, read in full (was one line cut with an ellipsis)
        setup.set_field("data-dir", str(data_folder))
        await settle(pilot)
        assert setup.validation.preset is not None
        # datasets are marked like backbones; one without local data refuses Launch with the reason
        eval_list = setup.query_one("#eval-data", SelectionList)
        prompts = {eval_list.get_option_at_index(i).value: str(eval_list.get_option_at_index(i).prompt) for i in
                   range(eval_list.option_count)}  # fmt: skip
        assert "✓ local" in prompts["xquad-r"] and "not in the data dir" in prompts["tydi"]
        eval_list.select("tydi")
        await settle(pilot)
        assert setup.validation.preset is None and "tydi is not in the data dir" in setup.validation.message
        assert setup.validation.field == "eval-data" and setup.query_one("#launch", Button).disabled
        await pilot.press("ctrl+l")
        assert app.run_state is None


def _event(cls: type, cell: str, t: float, **kw: object) -> object:
    return cls(cell=cell, t=t, **kw)


def test_whole_grid_eta_from_finished_cells() -> None:
    state = RunState(name="g", out=Path("runs/g"), batch_size=4)
    ids = ["b__none__s0", "b__xx__s0", "b__xy__s0", "b__hybrid__s0"]
    for cid, strategy in zip(ids, ("none", "xx", "xy", "hybrid"), strict=True):
        state.add_cell(cid, "b", strategy, 0)
    bus = EventBus(state.apply)
    assert state.grid_eta_s() is None  # nothing finished yet: no estimate
    bus.emit(Stage(cell=ids[0], t=0.0, name="evaluate"))
    bus.emit(RunFinished(cell=ids[0], t=10.0, run_dir="x", status="complete"))
    bus.emit(Stage(cell=ids[1], t=10.0, name="train"))
    bus.emit(
        TrainStep(cell=ids[1], t=20.0, step=2, total_steps=4, epoch=0.5, loss=1.0, lr=1e-3, batches={"xx": 2},
                  samples_per_s=4.0, strategy="xx")
    )  # fmt: skip
    assert state.grid_eta_s() is None  # no trained cell finished: the pending ones cannot be estimated yet
    bus.emit(RunFinished(cell=ids[1], t=70.0, run_dir="x", status="complete"))  # a trained cell takes 60 s
    bus.emit(Progress(cell=ids[2], t=70.0, task="grid", done=2, total=4))
    bus.emit(
        TrainStep(cell=ids[2], t=80.0, step=1, total_steps=4, epoch=0.25, loss=1.0, lr=1e-3, batches={"xy": 1},
                  samples_per_s=4.0, strategy="xy")
    )  # fmt: skip
    # hybrid pending: 60 s; xy running for 10 s of its 60: 50 s left (more than its 3 training steps at 1 step/s)
    assert state.grid_eta_s() == pytest.approx(110.0)
    stats = RunStats()
    rendered: list[object] = []
    stats.update = rendered.append  # type: ignore[method-assign]
    stats.show(state)
    from rich.console import Console

    console = Console(width=80, record=True)
    console.print(rendered[-1])
    assert "3s cell · 1m 50s grid" in console.export_text()
    state.finish("complete")
    assert state.grid_eta_s() is None and state.lr is None and state.samples_per_s is None


# ---- 7. polish -----------------------------------------------------------------------------------------------------


async def test_loss_chart_with_one_point_draws_sane_axes(tmp_path: Path, data_folder: Path) -> None:
    async with setup_screen(tmp_path, data_folder) as (app, pilot, _):
        await pilot.press("2")
        await pilot.pause()
        chart = app.screen.query_one("#loss", LossChart)
        chart.set_curves({"xx": [(1, 1.2)]})
        await pilot.pause()
        await pilot.pause()
        limits = chart.limits()
        assert limits is not None
        xmin, xmax, ymin, ymax = limits
        assert (xmin, xmax) == (0.0, 2.0) and ymin == pytest.approx(1.08) and ymax == pytest.approx(1.32)
        chart.set_curves({"xx": [(1, 1.2), (2, 1.0)]})  # two points: autoscaled again
        await pilot.pause()
        await pilot.pause()
        assert chart.limits() == (1.0, 2.0, 1.0, 1.2)


def test_progress_names_queries_not_querys() -> None:
    import numpy as np
    from hbt.engine.encoding.encode import encode_unique

    class Encoder:
        fingerprint = "fake"

        def encode(self, texts: list[str], role: str) -> np.ndarray:
            return np.ones((len(texts), 2), dtype=np.float32)

    tasks: list[str] = []
    bus = EventBus(lambda e: tasks.append(e.task) if isinstance(e, Progress) else None)
    encode_unique(Encoder(), ["a", "b"], "query", bus=bus)  # type: ignore[arg-type]
    encode_unique(Encoder(), ["c"], "passage", bus=bus)  # type: ignore[arg-type]
    assert set(tasks) == {"encode queries", "encode passages"}


def test_significance_rule_names_only_the_comparisons_made(tmp_path: Path) -> None:
    from hbt.tui.report import load_report

    report = load_report(make_grid(tmp_path, "no-xy", strategies=("xx", "hybrid")))
    (group,) = report.groups
    assert group.significance is not None
    assert group.significance.notes[0] == ("rule: each trained strategy vs the untrained baseline (none); hybrid vs xx")
    full = load_report(make_grid(tmp_path, "all")).groups[0].significance
    assert full is not None and full.notes[0].endswith("hybrid vs xx, hybrid vs xy")


async def test_stopped_grid_has_one_name_and_no_stale_live_numbers(tmp_path: Path, data_folder: Path) -> None:
    async with paused_grid(tmp_path, data_folder, (1, 2)) as (app, pilot, run, engine):
        await pilot.pause()

        def stop_shown() -> bool:
            return any(b.binding.action == "stop_grid" for b in run.active_bindings.values())

        assert stop_shown()  # Stop grid, while it runs
        app.cancel_run()
        engine.resume.set()
        await settle(pilot)
        state = app.run_state
        assert state is not None and state.status == "cancelled"
        assert not stop_shown()  # no Stop footer once the grid has ended
        stats = str(run.query_one(RunStats).render())
        assert state.lr is None and state.batches == {} and "samples/s" not in stats and "e-0" not in stats
        await pilot.press("4")
        await settle(pilot)
        history = app.screen
        assert isinstance(history, HistoryScreen)
        assert [r.status for r in history.rows] == ["cancelled"]  # the Run screen's word, not "partial"


# ---- engine items shown in the TUI: a failure's reason, terminal safety -------------------------------------------


async def test_failure_reasons_show_and_control_characters_are_escaped(tmp_path: Path, data_folder: Path) -> None:
    """A cell's recorded failure reason reaches History and Results; names and errors read from files never send a
    control character (ESC, BEL) to the terminal."""
    runs = tmp_path / "runs"
    grid = make_grid(runs, "smoke-\x1b[2Jevil", started=T0)
    failed = grid / "cells" / "tiny-random__xy__s0"
    (failed / "results.json").unlink()
    write_json(failed / "run.json", {"status": "failed", "error": "ConfigError: bad backbone\x07 \x1b]0;pwned\x07"})
    async with history_screen(tmp_path, data_folder) as (app, pilot, history):
        (row,) = history.rows
        assert row.name == "smoke-\\x1b[2Jevil" and row.status == "failed"
        detail = text_of(history.query_one("#run-detail", Static))
        assert "bad backbone\\x07 \\x1b]0;pwned\\x07" in detail and "\x1b" not in detail and "\x07" not in detail
        history.query_one("#runs", DataTable).focus()
        await pilot.press("enter")
        await settle(pilot)
        results = app.screen
        assert isinstance(results, ResultsScreen) and results.report is not None
        notes = {r[0]: r[5] for r in results.query_one("#cells-table", ReportTable).data}
        assert "ConfigError: bad backbone\\x07" in notes["tiny-random__xy__s0"]
        screen_text = app.export_screenshot()
        assert "\x1b" not in screen_text and "\x07" not in screen_text
        assert "smoke-\\x1b[2Jevil" in text_of(results.query_one("#results-title", Static))
