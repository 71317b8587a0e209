"""hbt-tui Results: the Paper view (claims verdicts, what the grid can detect, an alpha sweep, cells beside
2408.10536) at 80 and 100 columns, and rank distance first in Bias."""

from __future__ import annotations

from pathlib import Path

import pytest
from hbt.tui.components.loss_chart import LossChart
from hbt.tui.components.report_table import ReportTable
from hbt.tui.screens.results import ResultsScreen
from textual.containers import VerticalScroll
from textual.widgets import Static

from tests.claims_grids import Arm, write_grid
from tests.test_report_fixtures import make_grid
from tests.test_tui import SIZE, make_app, settle
from tests.test_tui_fakes import FakeBackend

CLAIMS = (
    "X-X-mono best monolingual",
    "X-Y best cross-lingual",
    "hybrid best multilingual",
    "hybrid at least as good as X-X-mono and X-Y in every setting",
    "hybrid lower rank distance than X-X-mono",
)


def paper_app(tmp_path: Path):  # type: ignore[no-untyped-def]
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    return make_app(tmp_path, data, FakeBackend(fixed_catalogue=True))


@pytest.mark.parametrize("width", [80, 100])
async def test_paper_view_shows_every_claim_its_interval_and_the_comparison(tmp_path: Path, width: int) -> None:
    grid = make_grid(tmp_path / "grid")
    app = paper_app(tmp_path)
    async with app.run_test(size=(width, 30)) as pilot:
        app.open_results(grid)
        await settle(pilot)
        results = app.screen
        assert isinstance(results, ResultsScreen) and results.report is not None
        results.show_view("paper")
        await pilot.pause()
        view = results.query_one("#claims-view", Static)
        text = str(view.render())
        for claim in CLAIMS:  # every claim in full, with its verdict, Δ ± CI, seeds and n, wrapped not cut
            assert claim in text
        assert text.count("(95% CI)") == 5 and text.count("seeds 3 vs 3") == 5 and text.count("n 60") == 5
        assert "inconclusiv" in text and "not reproduced" in text
        scroll = results.query_one("#paper-scroll", VerticalScroll)
        compare = results.query_one("#compare-table", ReportTable)
        seen = False
        for _ in range(30):  # PageDown scrolls the view down to the comparison with the paper
            if compare.region.overlaps(scroll.region):
                seen = True
                break
            await pilot.press("pagedown")
            await pilot.pause()
        assert seen and scroll.scroll_y > 0
        assert "X-X-mono" in compare.first_column() and "zero-shot" in compare.first_column()
        assert compare.row_count == 16  # 4 rows (zero-shot, X-X-mono, X-Y, hybrid) x 4 published measures
        assert not results.query_one("#alpha-chart", LossChart).display  # not an alpha sweep
        power = results.query_one("#power-table", ReportTable)
        assert power.first_column()[:3] == ["mono mAP", "cross mAP", "multi mAP"]


async def test_paper_view_draws_an_alpha_sweep(tmp_path: Path) -> None:
    arms = {"none": Arm(seeds=(0,))}
    for alpha, level in {0.0: 0.40, 0.5: 0.45, 1.0: 0.41}.items():
        arms[f"hybrid-a{alpha:g}"] = Arm(multi=level, alpha=alpha, seeds=(0, 1))
    grid = write_grid(tmp_path / "sweep", arms)
    app = paper_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        app.open_results(grid)
        await settle(pilot)
        results = app.screen
        assert isinstance(results, ResultsScreen)
        results.show_view("paper")
        await pilot.pause()
        chart = results.query_one("#alpha-chart", LossChart)
        assert chart.display and set(chart.curves) == {"mono", "cross", "multi"}
        assert [x for x, _ in chart.curves["multi"]] == [0.0, 0.5, 1.0]
        assert results.query_one("#alpha-table", ReportTable).first_column() == ["0", "0.5", "1"]
        assert "α = 0.5 best overall" in str(results.query_one("#claims-view", Static).render())


async def test_bias_view_puts_rank_distance_first(tmp_path: Path) -> None:
    grid = make_grid(tmp_path / "grid")
    app = paper_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        app.open_results(grid)
        await settle(pilot)
        results = app.screen
        assert isinstance(results, ResultsScreen)
        bias = results.query_one("#bias-table", ReportTable)
        assert [str(c.label) for c in bias.ordered_columns][2] == "rank_distance"
        lang_cols = [str(c.label) for c in results.query_one("#bias-lang-table", ReportTable).ordered_columns]
        assert lang_cols[:2] == ["language", "rank_distance"]
