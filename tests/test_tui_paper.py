"""hbt-tui Results: the Paper view (claims verdicts, cells beside 2408.10536) and rank distance first in Bias."""

from __future__ import annotations

from pathlib import Path

from hbt.tui.components.report_table import ReportTable
from hbt.tui.screens.results import ResultsScreen

from tests.test_report_fixtures import make_grid
from tests.test_tui import SIZE, make_app, settle
from tests.test_tui_fakes import FakeBackend


async def test_paper_view_shows_claims_and_the_published_numbers(tmp_path: Path) -> None:
    grid = make_grid(tmp_path / "grid")
    data = tmp_path / "data"
    data.mkdir()
    app = make_app(tmp_path, data, FakeBackend(fixed_catalogue=True))
    async with app.run_test(size=SIZE) as pilot:
        app.open_results(grid)
        await settle(pilot)
        results = app.screen
        assert isinstance(results, ResultsScreen) and results.report is not None
        results.show_view("paper")
        await pilot.pause()
        claims = results.query_one("#claims-table", ReportTable)
        assert claims.first_column()[:3] == ["X-X-mono best monolingual", "X-Y best cross-lingual",
                                             "hybrid best multilingual"]  # fmt: skip
        compare = results.query_one("#compare-table", ReportTable)
        assert "X-X-mono" in compare.first_column() and compare.row_count == 12
        bias = results.query_one("#bias-table", ReportTable)
        assert [str(c.label) for c in bias.ordered_columns][2] == "rank_distance"
        lang_cols = [str(c.label) for c in results.query_one("#bias-lang-table", ReportTable).ordered_columns]
        assert lang_cols[:2] == ["language", "rank_distance"]
