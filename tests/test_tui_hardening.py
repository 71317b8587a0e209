"""Issue 23 (TUI): Pilot tests of the defects met driving hbt-tui as a user at 80x24, 100x30 and 200x50.

13 the Results view keys after a grid finishes, 14 History's cell counts, 17 state shown in text as well as colour,
18 what an export wrote, 19 Setup's feedback and checks, 21 Help and an 80-column footer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hbt.engine.common.io import write_json
from hbt.tui.screens.export import ExportScreen
from hbt.tui.screens.help import HelpScreen
from hbt.tui.screens.history import HistoryScreen
from hbt.tui.screens.results import TABS, ResultsScreen
from hbt.tui.screens.setup import SetupScreen
from textual.widget import Widget
from textual.widgets import Checkbox, DataTable, Footer, Input, Label, OptionList, SelectionList, Static, TabbedContent

from tests.test_tui import history_screen, make_app, paused_grid, settle, setup_screen
from tests.test_tui_fakes import T0, FakeBackend, make_grid
from tests.test_tui_flows import report_loaded, text_of

# ---- 13. the view keys keep working once the grid has finished ------------------------------------------------------


async def test_results_view_keys_stay_put_after_the_grid_finishes(tmp_path: Path, data_folder: Path) -> None:
    """Before: Results open while the grid finished had the focus moved into the Summary view; then v, m and ]
    switched the view and it snapped back to Summary (the focused table's neighbour took the focus back there)."""
    async with paused_grid(tmp_path, data_folder, (2, 2)) as (app, pilot, _, engine):
        await pilot.press("o")
        results = app.screen
        assert isinstance(results, ResultsScreen)
        await report_loaded(pilot, results)
        engine.resume.set()
        await settle(pilot, rounds=6)
        assert app.run_state is not None and app.run_state.status == "complete"
        tabs = results.query_one(TabbedContent)
        for key, view in (("v", "tab-langs"), ("m", "tab-langs"), ("right_square_bracket", "tab-pairs"),
                          ("v", "tab-bias"), ("m", "tab-langs"), ("v", "tab-pairs")):  # fmt: skip
            await pilot.press(key)
            await pilot.pause(0.5)
            assert tabs.active == view, (key, tabs.active)
            focused = app.focused
            assert focused is None or not any(
                getattr(a, "id", None) in {f"tab-{t}" for t in TABS} - {view} for a in focused.ancestors
            ), focused  # the focus is never left in a hidden view


# ---- 14. History counts cancelled cells apart ------------------------------------------------------------------------


def _cut(grid: Path, cell: str, status: str | None) -> None:
    """Make `cell` cancelled (no results) or, with None, a cell that never ran (no run directory)."""
    folder = grid / "cells" / cell
    if status is None:
        for p in sorted(folder.rglob("*"), reverse=True):
            p.unlink() if p.is_file() else p.rmdir()
        folder.rmdir()
        return
    (folder / "results.json").unlink()
    write_json(folder / "run.json", {"status": status, "step": 2, "started": T0, "updated": T0 + 5})


async def test_history_counts_cancelled_cells_apart_from_complete_ones(tmp_path: Path, data_folder: Path) -> None:
    """Before: 2 complete + 1 cancelled of 4 showed '3/4', and 3 + 1 showed '4', which reads as complete."""
    runs = tmp_path / "runs"
    two = make_grid(runs, "smoke-two", started=T0)
    _cut(two, "tiny-random__xy__s0", "cancelled")
    _cut(two, "tiny-random__hybrid__s0", None)
    three = make_grid(runs, "smoke-three", started=T0 + 3600)
    _cut(three, "tiny-random__hybrid__s0", "cancelled")
    async with history_screen(tmp_path, data_folder) as (_, pilot, history):
        for reindexed in (False, True):
            table = history.query_one("#runs", DataTable)
            shown = {r.name: (str(table.get_cell(r.key, "cells")), str(table.get_cell(r.key, "status"))) for r in
                     history.rows}  # fmt: skip
            assert shown == {
                "smoke-two": ("complete 2 · cancelled 1 · of 4", "cancelled"),
                "smoke-three": ("complete 3 · cancelled 1 · of 4", "cancelled"),
            }, reindexed
            await pilot.press("r")  # reindex: the same counts from the rebuilt index
            await settle(pilot)


# ---- 17. state in text, not colour alone -----------------------------------------------------------------------------


def _plain(widget: Widget) -> str:
    return str(widget.render())


async def test_checkboxes_and_the_focused_row_show_their_state_in_text(tmp_path: Path, data_folder: Path) -> None:
    """Before: every box read ▐X▌, ticked or not, and the focused row differed by colour only."""
    async with setup_screen(tmp_path, data_folder) as (_, pilot, setup):
        xx = setup.query_one("#strat-xx", Checkbox)
        assert xx.value and _plain(xx).startswith("▐✓▌")
        xx.value = False
        await pilot.pause()
        assert _plain(xx).startswith("▐ ▌")
        assert _plain(setup.query_one("#baseline", Checkbox)).startswith("▐✓▌")
        langs = setup.query_one("#langs", SelectionList)

        def marks() -> list[tuple[str, bool]]:
            """(what a line's box shows, whether its option is selected), line by line."""
            lines = [langs.render_line(y).text for y in range(langs.option_count)]
            chosen = set(langs.selected)
            return [(line[:3], langs.get_option_at_index(i).value in chosen) for i, line in enumerate(lines)]

        before = marks()
        assert {box for box, _ in before} == {"▐✓▌", "▐ ▌"}  # smoke picks de and en: both kinds of box
        assert all(box == ("▐✓▌" if on else "▐ ▌") for box, on in before), before
        langs.focus()
        langs.highlighted = 0
        await pilot.press("space")  # the first option, 'all': picking it clears de and en
        await pilot.pause()
        after = marks()
        assert after[0] == ("▐✓▌", True) and all(box == ("▐✓▌" if on else "▐ ▌") for box, on in after), after
        label = setup.query_one("#row-langs").query_one(".row-label", Label)
        assert _plain(label).startswith("▸")  # the row holding the focus is marked
        setup.query_one("#steps", Input).focus()
        await pilot.pause()
        assert not _plain(label).startswith("▸")
        assert _plain(setup.query_one("#row-steps").query_one(".row-label", Label)).startswith("▸")
        setup.set_field("steps", "0")
        await pilot.pause()
        setup.validate()
        assert _plain(setup.query_one("#row-steps").query_one(".row-label", Label)).startswith("▸✗")


# ---- 18. an export says what it wrote, in full, and that it replaced a file -----------------------------------------


async def test_export_shows_the_absolute_path_and_marks_a_replaced_file(
    tmp_path: Path, data_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    grid = make_grid(tmp_path / "runs", "smoke-x")
    app = make_app(tmp_path, data_folder, FakeBackend(fixed_catalogue=True), open_path="runs/smoke-x")
    async with app.run_test(size=(80, 24)) as pilot:
        results = app.screen
        assert isinstance(results, ResultsScreen)
        await report_loaded(pilot, results)
        status = results.query_one("#export-status", Static)
        assert not status.display
        for expected in ("wrote", "replaced"):
            await pilot.press("x")
            await pilot.pause()
            dialog = app.screen
            assert isinstance(dialog, ExportScreen)
            assert text_of(dialog.query_one("#export-target", Label)) == str(grid.resolve())
            md = dialog.query_one("#export-formats", OptionList).get_option("md").prompt
            assert ("exists: replaced" in str(md)) == (expected == "replaced"), str(md)
            await pilot.press("m")
            await settle(pilot)
            assert status.display
            shown = text_of(status).splitlines()
            assert shown == [f"✓ {expected} the Markdown report", str(grid.resolve() / "report.md")], shown
            await pilot.pause(6)  # longer than a toast lasts: the line stays
            assert text_of(status).splitlines()[1] == str(grid.resolve() / "report.md")


# ---- 19. Setup: launch explains itself, and what the form accepts is checked -----------------------------------------


async def test_launch_on_an_invalid_form_says_why_and_goes_to_the_field(
    tmp_path: Path, data_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with setup_screen(tmp_path, data_folder) as (app, pilot, setup):
        told: list[str] = []
        monkeypatch.setattr(setup, "notify", lambda message, **kw: told.append(str(message)))
        setup.set_field("batch-size", "1")
        await pilot.pause()
        setup.query_one("#presets", OptionList).focus()
        await pilot.press("ctrl+l")
        await pilot.pause()
        assert isinstance(app.screen, SetupScreen)  # not launched
        assert told == ["batch_size must be at least 2 for in-batch negatives, got 1"], told
        assert app.focused is setup.query_one("#batch-size", Input)


@pytest.mark.parametrize(
    ("wid", "value", "message", "row"),
    [
        ("train-langs", ", ,", "train langs: ', ,' names no language (leave it empty for all)", "row-train-data"),
        ("steps", "9" * 20, f"steps must be at most 2147483647, got {'9' * 20}", "row-steps"),
        ("data-dir", "", "no data dir, and the hub is turned off (HF_HUB_OFFLINE=1): nothing can be downloaded; "
         "give a data dir", "row-data-dir"),
    ],
    ids=["commas-only", "20-digit-steps", "offline-without-data"],
)  # fmt: skip
async def test_setup_refuses_what_would_fail_or_mean_something_else(
    tmp_path: Path, data_folder: Path, monkeypatch: pytest.MonkeyPatch, wid: str, value: str, message: str, row: str
) -> None:
    """Before: ', ,' silently meant every language, 20-digit steps were accepted, and an empty data dir read as
    'online' with the hub turned off."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("HBT_DATA_DIR", raising=False)
    async with setup_screen(tmp_path, data_folder) as (_, pilot, setup):
        assert setup.validate().preset is not None
        setup.set_field(wid, value)
        await pilot.pause()
        result = setup.validate()
        assert result.preset is None and result.message == message
        assert setup.query_one(f"#{row}").has_class("-invalid")


async def test_the_seeds_placeholder_does_not_look_like_a_value(tmp_path: Path, data_folder: Path) -> None:
    async with setup_screen(tmp_path, data_folder) as (_, pilot, setup):
        seeds = setup.query_one("#seeds", Input)
        assert seeds.placeholder.startswith("required")
        setup.set_field("seeds", "")
        await pilot.pause()
        assert setup.validate().message == "seeds: give at least one integer (e.g. 0)"


# ---- 21. Help covers every view; the footer keeps Help and Theme at 80 columns ---------------------------------------


async def test_help_names_every_results_view(tmp_path: Path, data_folder: Path) -> None:
    async with setup_screen(tmp_path, data_folder) as (app, pilot, _):
        await pilot.press("question_mark")
        await pilot.pause()
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        results = help_screen.plain.split("\nResults\n", 1)[1].split("\nHistory\n", 1)[0]
        for view in ("Summary", "Per language", "Pairs", "Bias", "Paper", "Loss", "Cells"):
            assert view in results, view
        for key in ("s  Sort", "c  Cell", "]  Strategy"):  # keys left out of the footer are listed here
            assert key in results, key


def _footer_keys(screen: Any) -> dict[str, tuple[int, int]]:
    footer = screen.query_one(Footer)
    return {str(w.render()).strip(): (w.region.x, w.region.right) for w in footer.query("FooterKey")}


async def test_the_footer_keeps_help_and_theme_at_80_columns(tmp_path: Path, data_folder: Path) -> None:
    grid = make_grid(tmp_path / "runs")
    app = make_app(tmp_path, data_folder, FakeBackend(fixed_catalogue=True), start_preset="smoke", open_path=grid)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        for key, section in (("1", SetupScreen), ("3", ResultsScreen), ("4", HistoryScreen)):
            await pilot.press(key)
            await settle(pilot)
            await pilot.pause(0.2)
            assert isinstance(app.screen, section)
            keys = _footer_keys(app.screen)
            palette = keys.pop("^p palette")
            for name in ("? Help", "^t Theme", "^q Quit"):
                assert name in keys and keys[name][1] <= palette[0], (section.__name__, name, keys, palette)
