"""Pilot tests of hbt-tui: Setup → Run → Results → export, cancel, worker errors, History, small terminals.

The flow tests run the app for real with a fake grid runner (tests/test_tui_fakes.py: the engine's events, a real
grid directory); `test_real_smoke_preset` runs the real engine on the smoke preset when its data and backbone exist.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hbt.engine.common.io import read_json, write_json
from hbt.tui.app import DARK, LIGHT, HbtApp
from hbt.tui.backend import Backend
from hbt.tui.components.cell_table import CellTable
from hbt.tui.components.heatmap import Heatmap
from hbt.tui.components.log_pane import LogPane
from hbt.tui.components.loss_chart import LossChart
from hbt.tui.components.report_table import ReportTable
from hbt.tui.screens.confirm import ConfirmScreen
from hbt.tui.screens.export import ExportScreen
from hbt.tui.screens.help import HelpScreen
from hbt.tui.screens.history import HistoryScreen
from hbt.tui.screens.results import ResultsScreen
from hbt.tui.screens.run import RunScreen
from hbt.tui.screens.setup import SetupScreen, Validation, row_for
from textual.pilot import Pilot
from textual.widgets import Button, DataTable, OptionList

from tests.conftest import SHARED_DATA
from tests.test_tui_fakes import T0, FakeBackend, FakeEngine, make_grid

SIZE = (100, 30)


POLL_S = 0.02  # the app reads the followed grid folder this often in the tests


def make_app(tmp_path: Path, data_folder: Path, backend: Backend, **kw: object) -> HbtApp:
    return HbtApp(  # type: ignore[arg-type]
        backend=backend, runs_root=tmp_path / "runs", data_dir=str(data_folder), clock=lambda: T0, poll_s=POLL_S, **kw
    )


async def settle(pilot: Pilot, rounds: int = 3) -> None:
    """Let every worker finish, a fake grid's process end (unless it is held at a pause point) and the app read its
    folder, and the messages they posted be handled."""
    app = pilot.app
    for _ in range(rounds):
        await app.workers.wait_for_complete()
        process = getattr(app, "grid_process", None)
        if process is not None and hasattr(process, "join"):
            await asyncio.to_thread(process.join, 120.0)
        if isinstance(app, HbtApp):
            app.poll_grid()
        await pilot.pause()


async def pick_preset(pilot: Pilot, name: str) -> SetupScreen:
    screen = pilot.app.screen
    assert isinstance(screen, SetupScreen)
    options = screen.query_one("#presets", OptionList)
    options.focus()
    options.highlighted = next(i for i in range(options.option_count) if options.get_option_at_index(i).id == name)
    await pilot.press("enter")
    await pilot.pause()
    assert screen.base_name == name
    return screen


async def launch(pilot: Pilot) -> RunScreen:
    await pilot.press("ctrl+l")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, RunScreen)
    return screen


async def set_and_validate(pilot: Pilot, screen: SetupScreen, wid: str, value: object) -> Validation:
    """Set Setup's field `wid` to `value`, let the screen handle it, and validate the form."""
    screen.set_field(wid, value)
    await pilot.pause()
    return screen.validate()


async def wait_for(engine: FakeEngine) -> None:
    """The fake grid has reached its pause point and the app has read the folder since (its poll timer ran)."""
    for _ in range(500):
        if engine.reached.is_set():
            await asyncio.sleep(10 * POLL_S)
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the fake engine never reached its pause point")


# One app session brought to a screen: `async with smoke_launched(...) as (app, pilot, run):` and so on.


@contextlib.asynccontextmanager
async def setup_screen(
    tmp_path: Path, data_folder: Path, backend: Backend | None = None, size: tuple[int, int] = SIZE
) -> AsyncIterator[tuple[HbtApp, Pilot, SetupScreen]]:
    """The app started on the smoke preset (a fake backend with a fixed catalogue unless given), at Setup."""
    app = make_app(tmp_path, data_folder, backend or FakeBackend(fixed_catalogue=True), start_preset="smoke")
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        setup = app.screen
        assert isinstance(setup, SetupScreen)
        yield app, pilot, setup


@contextlib.asynccontextmanager
async def smoke_picked(
    tmp_path: Path, data_folder: Path, backend: Backend
) -> AsyncIterator[tuple[HbtApp, Pilot, SetupScreen]]:
    """The app started on Setup with the smoke preset picked from the presets list."""
    app = make_app(tmp_path, data_folder, backend)
    async with app.run_test(size=SIZE) as pilot:
        yield app, pilot, await pick_preset(pilot, "smoke")


@contextlib.asynccontextmanager
async def smoke_launched(
    tmp_path: Path, data_folder: Path, backend: Backend
) -> AsyncIterator[tuple[HbtApp, Pilot, RunScreen]]:
    """The smoke preset picked and launched on `backend` (a fake grid runner), at the Run screen."""
    async with smoke_picked(tmp_path, data_folder, backend) as (app, pilot, _):
        yield app, pilot, await launch(pilot)


@contextlib.asynccontextmanager
async def paused_grid(
    tmp_path: Path, data_folder: Path, pause_at: tuple[int, int]
) -> AsyncIterator[tuple[HbtApp, Pilot, RunScreen, FakeEngine]]:
    """The smoke preset launched on a 4-step fake engine paused at (cell, step) until `engine.resume` is set."""
    engine = FakeEngine(steps=4, pause_at=pause_at)
    async with smoke_launched(tmp_path, data_folder, FakeBackend(engine)) as (app, pilot, run):
        await wait_for(engine)
        yield app, pilot, run, engine


@contextlib.asynccontextmanager
async def history_screen(
    tmp_path: Path, data_folder: Path, backend: Backend | None = None
) -> AsyncIterator[tuple[HbtApp, Pilot, HistoryScreen]]:
    """The app started and switched to History (key 4), its run list loaded."""
    app = make_app(tmp_path, data_folder, backend or FakeBackend(fixed_catalogue=True))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        await settle(pilot)
        history = app.screen
        assert isinstance(history, HistoryScreen)
        yield app, pilot, history


# ---- Setup --------------------------------------------------------------------------------------------------------


async def test_setup_lists_presets_and_validates_the_smoke_preset(
    tmp_path: Path, data_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with smoke_picked(tmp_path, data_folder, FakeBackend()) as (_, _, screen):
        names = [r.name for r in screen.preset_rows]
        assert {"smoke", "quick"} <= set(names)
        result = screen.validate()
        assert result.preset is not None, result.message
        assert len(result.preset.cells()) == 4
        assert not screen.query_one("#launch", Button).disabled
        assert "4 cells" in str(screen.query_one("#validation").render())


async def test_setup_explains_invalid_choices_and_blocks_launch(
    tmp_path: Path, data_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with smoke_picked(tmp_path, data_folder, FakeBackend()) as (app, pilot, screen):
        launch_button = screen.query_one("#launch", Button)
        cases = [
            ("steps", "abc", "steps", "not a whole number"),
            ("batch-size", "1", "batch-size", "at least 2"),
            ("hybrid-p", "1.5", "hybrid-p", "[0, 1]"),
            ("train-langs", "de, xx", "train-langs", "unknown language for mlqa-r 'xx'"),
            ("data-dir", str(tmp_path / "missing"), "data-dir", "does not exist"),
            ("seeds", "0, one", "seeds", "not an integer"),
        ]
        for wid, bad, field, words in cases:
            good = screen.query_one(f"#{wid}").value  # type: ignore[attr-defined]
            result = await set_and_validate(pilot, screen, wid, bad)
            assert result.preset is None and words in result.message, (wid, result.message)
            assert result.field == field
            assert screen.query_one(f"#{row_for(field)}").has_class("-invalid")
            assert launch_button.disabled
            assert words in str(screen.query_one("#validation").render())
            await pilot.press("ctrl+l")  # disabled binding: nothing launches
            assert isinstance(app.screen, SetupScreen) and app.run_state is None
            assert (await set_and_validate(pilot, screen, wid, good)).preset is not None
            assert not launch_button.disabled
        for s in ("xx", "xy", "hybrid", "baseline"):  # nothing to run
            screen.set_field(f"strat-{s}" if s != "baseline" else "baseline", False)
        await pilot.pause()
        assert "nothing to run" in screen.validate().message


# ---- the main flow ------------------------------------------------------------------------------------------------


async def test_flow_run_chart_results_sort_export(
    tmp_path: Path, data_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with smoke_launched(tmp_path, data_folder, FakeBackend(FakeEngine(steps=4))) as (app, pilot, run):
        await settle(pilot)
        state = app.run_state
        assert state is not None and state.status == "complete"
        assert [c.status for c in state.cells.values()] == ["complete"] * 4
        # the live chart got one line per strategy, every step
        chart = run.query_one("#loss", LossChart)
        assert set(chart.curves) == {"xx", "xy", "hybrid"}
        assert chart.point_count == 3 * 4
        assert chart.curves["xx"][0][0] == 1.0 and chart.curves["xx"][-1][0] == 4.0
        table = run.query_one(CellTable)
        assert table.row_count == 4 and {table.status_of(c) for c in state.cells} == {"complete"}
        assert "mono_map" in "\n".join(run.query_one(LogPane).plain)
        grid = state.out
        assert (grid / "grid.json").exists() and len(list(grid.glob("cells/*/results.json"))) == 4

        # results: open from the Run screen
        await pilot.press("o")
        await settle(pilot)
        results = app.screen
        assert isinstance(results, ResultsScreen) and results.report is not None
        summary = results.query_one("#summary-table", ReportTable)
        assert summary.first_column() == ["none", "xx", "xy", "hybrid"]

        # per-language table: sort by key, then by clicking a header
        await pilot.press("m")
        langs = results.query_one("#langs-table", ReportTable)
        langs.focus()
        langs.move_cursor(column=4)  # hybrid
        await pilot.press("s")
        assert langs.sort_column == 4 and langs.first_column() == ["en", "de", "macro"]  # best first, macro pinned
        await pilot.press("s")
        assert langs.first_column() == ["de", "en", "macro"]
        x = sum(col.get_render_width(langs) for col in langs.ordered_columns[:1]) + 1
        await pilot.click(langs, offset=(x, 0))  # header of the "none" column
        await pilot.pause()
        assert langs.sort_column == 1

        # heatmap of language pairs, strategy switching
        await pilot.press("right_square_bracket")  # go to the pairs view
        heatmap = results.query_one(Heatmap)
        assert heatmap.row_labels == ["de", "en"] and heatmap.col_labels == ["de", "en"]
        first = results.strategy
        await pilot.press("right_square_bracket")
        assert results.strategy != first
        assert heatmap.colour_at(0, 0) is not None and heatmap.colour_at(0, 1) != heatmap.colour_at(0, 0)

        # export md, csv, json and latex into the grid directory
        for key, name, needle in (
            ("m", "report.md", "### mAP by strategy and setting"),
            ("c", "report.csv", "strategy,seeds"),
            ("j", "report.json", '"schema"'),
            ("l", "report.tex", "\\begin{tabular}"),
        ):
            await pilot.press("x")
            await pilot.pause()
            assert isinstance(app.screen, ExportScreen)
            await pilot.press(key)
            await settle(pilot)
            written = grid / name
            assert written.exists() and app.last_export == written
            text = written.read_text(encoding="utf-8")
            assert needle in text and "hybrid" in text, name
        assert isinstance(app.screen, ResultsScreen)

        # narrow to one cell and back
        await pilot.press("c")
        await settle(pilot)
        assert results.scope == "tiny-random__none__s0"
        assert results.query_one("#summary-table", ReportTable).first_column() == ["none"]


async def test_a_grid_that_ends_while_its_folder_is_read_keeps_its_last_cell(
    tmp_path: Path, data_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race CI met once ('cancelled' for the last cell of a complete grid): the process writes its last cell's
    events and exits between the app reading the folder and asking whether the process ended. Played here
    deterministically: the read releases the paused engine and waits for its thread to end."""
    async with paused_grid(tmp_path, data_folder, (3, 4)) as (app, pilot, _run, engine):  # last cell, last step
        follower = app.follower
        assert follower is not None and app.grid_process is not None
        process = app.grid_process
        read = follower.poll

        def read_then_end() -> object:
            update = read()
            if not engine.resume.is_set():
                engine.resume.set()
                process.join(120.0)  # type: ignore[attr-defined]
            return update

        monkeypatch.setattr(follower, "poll", read_then_end)
        await settle(pilot)
        state = app.run_state
        assert state is not None and state.status == "complete"
        assert [c.status for c in state.cells.values()] == ["complete"] * 4


async def test_cancel_midway_keeps_finished_cells(
    tmp_path: Path, data_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with paused_grid(tmp_path, data_folder, (2, 2)) as (app, pilot, run, engine):  # third cell (xy), step 2
        await pilot.pause()
        state = app.run_state
        await pilot.press("c")  # 'c' is "Cell" on Results: it stops nothing here
        assert state is not None and state.status == "running" and isinstance(app.screen, RunScreen)
        await pilot.press("ctrl+c")  # asks first; "n" (or Esc) keeps the grid running
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert state.status == "running" and isinstance(app.screen, RunScreen)
        await pilot.press("ctrl+c")
        await pilot.press("y")
        assert state.status == "cancelling" and isinstance(app.screen, RunScreen)
        engine.resume.set()
        await settle(pilot)
        assert state.status == "cancelled"
        statuses = {c.strategy: c.status for c in state.cells.values()}
        # the cell in flight stops training at the next step and is still evaluated (engine semantics)
        assert statuses == {"none": "complete", "xx": "complete", "xy": "complete", "hybrid": "cancelled"}
        assert state.cells["tiny-random__xy__s0"].step == 2
        assert sorted(p.parent.name for p in state.out.glob("cells/*/results.json")) == [
            "tiny-random__none__s0",
            "tiny-random__xx__s0",
            "tiny-random__xy__s0",
        ]
        assert run.query_one(CellTable).status_of("tiny-random__hybrid__s0") == "cancelled"
        assert any("cancel" in line for line in run.query_one(LogPane).plain)
        # the kept cells open in Results
        await pilot.press("o")
        await settle(pilot)
        results = app.screen
        assert isinstance(results, ResultsScreen)
        assert results.query_one("#summary-table", ReportTable).first_column() == ["none", "xx", "xy"]


async def test_worker_error_is_shown_and_the_app_stays_usable(
    tmp_path: Path, data_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = FakeBackend(FakeEngine(steps=3, fail_at=(1, 2)))
    async with smoke_launched(tmp_path, data_folder, backend) as (app, pilot, run):
        await settle(pilot)
        state = app.run_state
        assert state is not None and state.status == "failed"
        assert app.errors and "boom" in app.errors[-1]
        assert any("boom" in n.message and n.severity == "error" for n in app._notifications)
        assert any("boom" in line for line in run.query_one(LogPane).plain)
        statuses = [c.status for c in state.cells.values()]
        assert statuses == ["complete", "failed", "failed", "failed"]
        # still usable: back to Setup, launch again into a new folder, and it runs
        backend.engine = FakeEngine(steps=3)
        await pilot.press("1")
        setup = app.screen
        assert isinstance(setup, SetupScreen)
        setup.set_field("out", str(tmp_path / "runs" / "again"))
        await pilot.pause()
        await pilot.press("ctrl+l")
        await settle(pilot)
        assert app.run_state is not state and app.run_state is not None
        assert app.run_state.status == "complete"

        # a results worker that raises: the error shows in place and as a notification
        app.open_results(tmp_path / "not-a-run")
        await settle(pilot)
        results = app.screen
        assert isinstance(results, ResultsScreen) and results.report is None
        assert "does not exist" in str(results.query_one("#empty-text").render())
        assert "does not exist" in app.errors[-1]
        await pilot.press("2")
        assert isinstance(app.screen, RunScreen)


# ---- History, help, theme, small terminals ------------------------------------------------------------------------


async def test_history_lists_grids_and_reopens_them(tmp_path: Path, data_folder: Path) -> None:
    runs = tmp_path / "runs"
    make_grid(runs, "smoke-older", started=T0)
    newer = make_grid(runs, "smoke-newer", started=T0 + 3600)
    async with history_screen(tmp_path, data_folder) as (app, pilot, history):
        assert [r.name for r in history.rows] == ["smoke-newer", "smoke-older"]
        table = history.query_one("#runs", DataTable)
        assert table.row_count == 2
        table.focus()
        await pilot.press("enter")
        await settle(pilot)
        results = app.screen
        assert isinstance(results, ResultsScreen)
        assert results.path == newer and results.report is not None
        # reindex from the key
        await pilot.press("4")
        await pilot.press("r")
        await settle(pilot)
        assert (runs / "index.sqlite").exists()


async def test_history_resumes_an_interrupted_grid(tmp_path: Path, data_folder: Path) -> None:
    """`u` on an unfinished grid relaunches it with resume (complete cells kept), from its own grid.json."""
    runs = tmp_path / "runs"
    grid = make_grid(runs, "smoke-cut", started=T0)
    cut = grid / "cells" / "tiny-random__hybrid__s0"
    (cut / "results.json").unlink()
    write_json(cut / "run.json", {"status": "cancelled", "step": 2})
    backend = FakeBackend(FakeEngine(steps=4), fixed_catalogue=True)
    async with history_screen(tmp_path, data_folder, backend) as (app, pilot, history):
        assert [r.name for r in history.rows] == ["smoke-cut"]
        history.query_one("#runs", DataTable).focus()
        await pilot.press("u")
        await settle(pilot)
        assert backend.resumed == [True]
        state = app.run_state
        assert state is not None and state.out == grid
        assert [c.id for c in state.cells.values()] == [c["id"] for c in read_json(grid / "grid.json")["cells"]]


async def test_help_screen_and_theme_toggle(tmp_path: Path, data_folder: Path) -> None:
    async with setup_screen(tmp_path, data_folder) as (app, pilot, _):
        assert app.theme == DARK
        await pilot.press("ctrl+t")
        assert app.theme == LIGHT
        await pilot.press("ctrl+t")
        assert app.theme == DARK
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        text = app.screen.plain
        for words in ("Launch", "Stop grid", "Export", "Sort", "Reindex", "Theme"):
            assert words in text
        await pilot.press("escape")
        assert isinstance(app.screen, SetupScreen)


@pytest.mark.parametrize("size", [(80, 24), (160, 50)])
async def test_every_screen_fits_small_and_large_terminals(
    tmp_path: Path, data_folder: Path, monkeypatch: pytest.MonkeyPatch, size: tuple[int, int]
) -> None:
    backend = FakeBackend(FakeEngine(steps=3), fixed_catalogue=True)
    async with setup_screen(tmp_path, data_folder, backend, size) as (app, pilot, screen):
        width, height = size
        launch_button = screen.query_one("#launch", Button)
        assert launch_button.region.right <= width and launch_button.region.bottom <= height - 1
        await pilot.press("ctrl+l")
        await settle(pilot)
        chart = app.screen.query_one("#loss", LossChart)
        assert chart.size.height >= 5 and chart.size.width >= 30
        assert app.screen.query_one(LogPane).size.height >= 3
        await pilot.press("o")
        await settle(pilot)
        assert app.screen.query_one("#summary-table", ReportTable).size.height >= 5
        await pilot.press("4")
        await settle(pilot)
        assert app.screen.query_one("#runs", DataTable).row_count == 1


# ---- the real engine ----------------------------------------------------------------------------------------------


def _tiny_backbone_problem() -> str | None:
    try:
        from hbt.engine.backbones import resolve_backbone

        resolve_backbone("tiny-random")
    except Exception as exc:
        return f"backbone 'tiny-random' is not available ({type(exc).__name__}: {exc})"
    return None


@pytest.mark.slow
async def test_real_smoke_preset(tmp_path: Path) -> None:
    if not (SHARED_DATA / "xquad-r" / "en.json").exists():
        pytest.skip(f"real LAReQA data not found at {SHARED_DATA}")
    if problem := _tiny_backbone_problem():
        pytest.skip(problem)
    app = HbtApp(runs_root=tmp_path / "runs", data_dir=str(SHARED_DATA), clock=lambda: T0, poll_s=POLL_S)
    async with app.run_test(size=SIZE) as pilot:
        await pick_preset(pilot, "smoke")
        run = await launch(pilot)
        for _ in range(4500):  # the grid runs in its own process: wait for the app to see it end (15 min at most)
            if app.run_state is None or not app.run_state.running:
                break
            await pilot.pause(0.2)
        state = app.run_state
        assert state is not None
        assert state.status == "complete", [line.message for line in state.logs if line.level == "error"]
        assert [c.status for c in state.cells.values()] == ["complete"] * 4
        assert run.query_one("#loss", LossChart).point_count > 0
        await pilot.press("o")
        await settle(pilot)
        await pilot.press("x", "m")
        await settle(pilot)
        assert "hybrid" in (state.out / "report.md").read_text(encoding="utf-8")
