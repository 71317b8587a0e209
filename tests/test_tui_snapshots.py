"""Snapshot tests of every hbt-tui screen at 100x30 (and the Run screen at 80x24), on deterministic fake data:
a fixed preset catalogue, the fake grid runner, a fixed clock and UTC, paths relative to a temporary folder.

Update after an intended change: `python -m pytest tests/test_tui_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hbt.tui.app import LIGHT, HbtApp
from textual.pilot import Pilot

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
    for _ in range(3):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
    pilot.app.clear_notifications()
    await pilot.pause()


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


def test_run(snap_compare, stage: Path) -> None:
    assert snap_compare(app(), terminal_size=SIZE, run_before=launched)


def test_run_80x24(snap_compare, stage: Path) -> None:
    assert snap_compare(app(), terminal_size=(80, 24), run_before=launched)


def test_results_summary(snap_compare, stage: Path) -> None:
    make_grid(stage / "runs", GRID, seeds=(0, 1))
    assert snap_compare(app(open_path=f"runs/{GRID}"), terminal_size=SIZE, run_before=settle)


def test_results_pairs_heatmap(snap_compare, stage: Path) -> None:
    make_grid(stage / "runs", GRID, langs=("ar", "de", "en", "es", "zh"))

    async def before(pilot: Pilot) -> None:
        await settle(pilot)
        await pilot.press("right_square_bracket", "right_square_bracket", "right_square_bracket")  # xy
        await pilot.pause()

    assert snap_compare(app(open_path=f"runs/{GRID}"), terminal_size=SIZE, run_before=before)


def test_results_per_language_sorted_light(snap_compare, stage: Path) -> None:
    make_grid(stage / "runs", GRID, langs=("ar", "de", "en", "es", "zh"))

    async def before(pilot: Pilot) -> None:
        await settle(pilot)
        await pilot.press("m")
        table = pilot.app.screen.query_one("#langs-table")
        table.focus()
        table.move_cursor(column=4)  # type: ignore[attr-defined]
        await pilot.press("s")
        await pilot.pause()

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
