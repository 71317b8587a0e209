"""Snapshot tests of every hbt-tui screen at 100x30 (and the Run screen at 80x24), on deterministic fake data:
a fixed preset catalogue, the fake grid runner, a fixed clock and UTC, paths relative to a temporary folder.

Update after an intended change: `python -m pytest tests/test_tui_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hbt.tui.app import LIGHT, HbtApp
from hbt.tui.components.report_table import ReportTable
from hbt.tui.screens.results import ResultsScreen
from textual.pilot import Pilot
from textual.widgets import Collapsible, Input, Tabs

from tests.test_tui_fakes import T0, FakeBackend, FakeEngine, make_grid

SIZE = (100, 30)
GRID = "smoke-20260101-000000"


@pytest.fixture
def stage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Work in a temporary folder (data/, runs/) with UTC times, so every rendered path and date is fixed."""
    monkeypatch.delenv("HBT_DATA_DIR", raising=False)  # the form shows data/ (relative), not the real data dir
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "runs").mkdir()
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield tmp_path
    if old is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old
    time.tzset()


def app(**kw: object) -> HbtApp:
    engine = kw.pop("engine", None) or FakeEngine(steps=4)
    return HbtApp(
        backend=FakeBackend(engine, fixed_catalogue=True),  # type: ignore[arg-type]
        runs_root="runs",
        data_dir="data",
        start_preset="smoke",
        clock=lambda: T0,
        **kw,  # type: ignore[arg-type]
    )


async def settle(pilot: Pilot) -> None:
    """Workers done, a launched fake grid's process ended and its folder read by the app, notifications cleared."""
    app = pilot.app
    for _ in range(3):
        await app.workers.wait_for_complete()
        process = getattr(app, "grid_process", None)
        if process is not None and hasattr(process, "join"):
            await asyncio.to_thread(process.join, 120.0)
        if isinstance(app, HbtApp):
            app.poll_grid()
        await pilot.pause()
    app.clear_notifications()
    await pilot.pause()


def laid_out(table: ReportTable, rows: int | None = None) -> bool:
    """A table holds its rows and the layout has given it the height they need (a hidden table counts as laid out:
    the significance table is hidden when no comparison can be made)."""
    if not table.display:
        return True
    want = len(table.data) if rows is None else rows
    return table.row_count == want and table.size.height >= want + 1


def underline_at_rest(tabs: Tabs) -> bool:
    """The bar under a Tabs spans its active tab (Textual moves it a refresh after the switch and animates it for
    0.3 s: a snapshot taken before that shows the bar anywhere, which is what made test_results_summary flaky)."""
    active = tabs.active_tab
    if active is None:
        return True
    bar = tabs.query_one("Underline")  # (by its CSS type name: the class itself is not public)
    start, end = active.virtual_region.shrink(active.styles.gutter).column_span
    return (getattr(bar, "highlight_start", None), getattr(bar, "highlight_end", None)) == (start, end)


async def tabs_at_rest(pilot: Pilot) -> None:
    """Every tab bar of the screen drawn under its active tab, no animation pending."""
    for _ in range(2000):  # a bound on frames, not a time
        await pilot.wait_for_scheduled_animations()
        await pilot.pause()
        if all(underline_at_rest(tabs) for tabs in pilot.app.screen.query(Tabs)):
            return
    raise AssertionError("a tab bar never came to rest under its active tab")


async def results_rendered(pilot: Pilot, rows: int | None = None) -> None:
    """Wait for the rendered state of Results, not for a number of pauses: the report loaded, its summary rows in
    the table and laid out on screen. Under CPU load a worker's result can be handled, and the layout follow it,
    several frames after the worker ends; a fixed number of pauses then snapshots an empty table."""
    screen = pilot.app.screen
    for _ in range(2000):  # a bound on frames, not a time: ends as soon as the state is there
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        screen = pilot.app.screen
        if isinstance(screen, ResultsScreen) and screen.report is not None and not screen.loading:
            table = screen.query_one("#summary-table", ReportTable)
            want = rows if rows is not None else len(table.data)
            if want and laid_out(table, want) and laid_out(screen.query_one("#significance-table", ReportTable)):
                break
    else:
        raise AssertionError(f"Results never rendered its summary table ({type(screen).__name__})")
    pilot.app.clear_notifications()
    await tabs_at_rest(pilot)


async def launched(pilot: Pilot) -> None:
    await pilot.pause()
    await pilot.press("ctrl+l")
    await settle(pilot)


def test_setup(snap_compare, stage: Path) -> None:
    assert snap_compare(app(), terminal_size=SIZE)


def test_setup_invalid_choice(snap_compare, stage: Path) -> None:
    async def before(pilot: Pilot) -> None:
        await pilot.pause()
        pilot.app.screen.set_field("train-langs", "de, xx")  # type: ignore[attr-defined]
        await pilot.pause()

    assert snap_compare(app(), terminal_size=SIZE, run_before=before)


def test_setup_more_settings(snap_compare, stage: Path) -> None:
    """The generated fields of the other [run] keys (one per RunConfig declaration), opened, one of them at fault."""

    async def before(pilot: Pilot) -> None:
        await pilot.pause()
        screen = pilot.app.screen
        screen.set_field("weight-decay", "-1")  # type: ignore[attr-defined]
        await pilot.pause()
        screen.action_launch()  # type: ignore[attr-defined]  # (refused: opens "more settings" at the field at fault)
        await pilot.pause()
        pilot.app.clear_notifications()
        for field in screen.query(Input):  # the focused field's cursor blinks: a snapshot would catch either phase
            field.cursor_blink = False
        row, form = screen.query_one("#row-weight-decay"), screen.query_one("#form")
        last = None
        for _ in range(2000):  # a bound on frames, not a time: the section open, the row in view, the scroll at rest
            await pilot.wait_for_scheduled_animations()
            await pilot.pause()
            if not screen.query_one("#more-settings", Collapsible).collapsed and row.region.height > 0:
                row.scroll_visible(animate=False, top=True)
                await pilot.pause()
                here = (form.scroll_y, row.region)
                if form.content_region.contains_region(row.region) and here == last:
                    return
                last = here
        raise AssertionError("'more settings' never opened with the field at fault in view")

    assert snap_compare(app(), terminal_size=SIZE, run_before=before)


def test_run(snap_compare, stage: Path) -> None:
    assert snap_compare(app(), terminal_size=SIZE, run_before=launched)


def test_run_80x24(snap_compare, stage: Path) -> None:
    assert snap_compare(app(), terminal_size=(80, 24), run_before=launched)


def test_results_summary(snap_compare, stage: Path) -> None:
    make_grid(stage / "runs", GRID, seeds=(0, 1))
    assert snap_compare(app(open_path=f"runs/{GRID}"), terminal_size=SIZE, run_before=results_rendered)


async def test_results_wait_is_for_the_rendered_table_not_a_time(stage: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A loaded CPU, played deterministically: the report worker's result is handled 0.3 s after the worker ends.
    Waiting for the workers and a few pauses (what test_results_summary did) sees no table yet; the wait for the
    rendered state sees every row."""
    make_grid(stage / "runs", GRID, seeds=(0, 1))
    handle = ResultsScreen.on_worker_state_changed

    def late(self: ResultsScreen, event: object) -> None:
        self.set_timer(0.3, lambda: handle(self, event))  # type: ignore[arg-type]

    monkeypatch.setattr(ResultsScreen, "on_worker_state_changed", late)
    the_app = app(open_path=f"runs/{GRID}")
    async with the_app.run_test(size=SIZE) as pilot:
        await results_rendered(pilot)
        table = the_app.screen.query_one("#summary-table", ReportTable)
        assert table.first_column() == ["none", "xx", "xy", "hybrid"] and table.size.height >= 5


async def test_results_tables_are_laid_out_in_every_app_of_a_process(stage: Path) -> None:
    """The root of the flaky summary snapshot: with `height: auto`, a report table laid out before it had measured
    its rows kept a height of 0, which happened to the second app of a process (the significance table vanished).
    Report tables now set their height from their rows."""
    make_grid(stage / "runs", GRID, seeds=(0, 1))
    for _ in range(2):
        the_app = app(open_path=f"runs/{GRID}")
        async with the_app.run_test(size=SIZE) as pilot:
            for _ in range(50):
                await pilot.app.workers.wait_for_complete()
                await pilot.pause()
                if getattr(the_app.screen, "report", None) is not None:
                    break
            await pilot.pause()
            for wid, rows in (("#summary-table", 4), ("#significance-table", 5)):
                table = the_app.screen.query_one(wid, ReportTable)
                assert table.row_count == rows and table.size.height == rows + 1, (wid, table.size)


def test_results_pairs_heatmap(snap_compare, stage: Path) -> None:
    make_grid(stage / "runs", GRID, langs=("ar", "de", "en", "es", "zh"))

    async def before(pilot: Pilot) -> None:
        await results_rendered(pilot)
        await pilot.press("right_square_bracket", "right_square_bracket", "right_square_bracket")  # xy
        await tabs_at_rest(pilot)

    assert snap_compare(app(open_path=f"runs/{GRID}"), terminal_size=SIZE, run_before=before)


def test_results_per_language_sorted_light(snap_compare, stage: Path) -> None:
    make_grid(stage / "runs", GRID, langs=("ar", "de", "en", "es", "zh"))

    async def before(pilot: Pilot) -> None:
        await results_rendered(pilot)
        await pilot.press("m")
        table = pilot.app.screen.query_one("#langs-table")
        table.focus()
        table.move_cursor(column=4)  # type: ignore[attr-defined]
        await pilot.press("s")
        await tabs_at_rest(pilot)

    assert snap_compare(app(open_path=f"runs/{GRID}", theme=LIGHT), terminal_size=SIZE, run_before=before)


def test_history(snap_compare, stage: Path) -> None:
    make_grid(stage / "runs", "smoke-20251231-120000", started=T0 - 43_200)
    make_grid(stage / "runs", GRID, seeds=(0, 1), started=T0)

    async def before(pilot: Pilot) -> None:
        await pilot.press("4")
        await settle(pilot)

    assert snap_compare(app(), terminal_size=SIZE, run_before=before)


def test_help(snap_compare, stage: Path) -> None:
    assert snap_compare(app(), terminal_size=SIZE, press=["f1"])
