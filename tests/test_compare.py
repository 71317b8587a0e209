"""Published numbers beside a grid's: the shipped reference data and `hbt-bench compare`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hbt.engine.common.errors import ConfigError
from hbt.engine.report.published import compare_tables, list_references, load_reference
from hbt.engine.report.stats import MeanCI

from tests.test_report_fixtures import make_grid, read_results


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_grid(tmp_path_factory.mktemp("compare") / "grid")


def test_reference_data_holds_the_papers_tables() -> None:
    assert list_references() == ["2004.05484", "2408.10536"]
    ref = load_reference("2408.10536")
    # Table 1: 2 models x 3 strategies x 2 datasets x 3 settings; Table 2: 2 x 3 x 2; MIRACL: 2 x 3 x 2 metrics
    assert sum(c.metric == "map" for c in ref.cells) == 36
    assert sum(c.metric == "rank_distance" for c in ref.cells) == 12
    assert sum(c.dataset == "miracl" for c in ref.cells) == 12
    assert ref.find("LaBSE", "hybrid", "mlqa-r", "multi", "map").value == 0.579  # type: ignore[union-attr]
    assert ref.find("XLM-R", "xx", "xquad-r", "multi", "rank_distance").value == 410.2  # type: ignore[union-attr]
    miracl = ref.find("XLM-R", "hybrid", "miracl", "mono", "ndcg@10")
    assert miracl is not None and miracl.value == 0.4054
    assert all(c.source for c in ref.cells)
    lareqa = load_reference("2004.05484")
    assert {c.strategy for c in lareqa.cells} == {"en-en", "xx-mix", "xx", "xy"}
    assert lareqa.find("mBERT", "xy", "xquad-r", "multi", "map").value == 0.66  # type: ignore[union-attr]


def test_compare_puts_each_cell_beside_the_published_one(grid: Path) -> None:
    (table,) = compare_tables(grid, "2408.10536")
    assert table.columns[:4] == ["strategy", "setting", "metric", "ours"]
    assert "XLM-R (paper)" in table.columns and "Δ vs LaBSE" in table.columns  # unknown backbone: both models
    rows = {(r[0], r[1], r[2]): r for r in table.rows}
    hybrid_multi = rows["hybrid", "multi", "mAP"]
    ours = hybrid_multi[3]
    assert isinstance(ours, MeanCI)
    mine = [read_results(grid, "hybrid", s)["datasets"]["xquad-r"]["multilingual"]["macro"]["map"] for s in (0, 1, 2)]
    assert ours.mean == pytest.approx(sum(mine) / 3)
    i = table.columns.index("XLM-R (paper)")
    assert hybrid_multi[i] == 0.593 and hybrid_multi[i + 1] == pytest.approx(ours.mean - 0.593)
    dist = rows["X-X-mono", "multi", "rank_distance"]
    assert dist[table.columns.index("LaBSE (paper)")] == 261.5
    assert ("zero-shot", "mono", "mAP") not in rows  # the paper has no untrained row
    notes = " ".join(table.notes)
    assert "backbone differs: org/tiny_enc" in notes and "training differs" in notes
    assert "evaluation data differs: xquad-r in ar,de,en" in notes


def test_compare_cli_end_to_end(grid: Path, tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "hbt.engine.cli", "compare", str(grid), "--reference", "2408.10536"],
        capture_output=True,
        text=True,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "beside 2408.10536" in run.stdout and "X-X-mono" in run.stdout and "0.7920" in run.stdout
    out = tmp_path / "cmp.json"
    run = subprocess.run(
        [sys.executable, "-m", "hbt.engine.cli", "compare", str(grid), "--reference", "2004.05484", "--format",
         "json", "--output", str(out)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    doc = json.loads(out.read_text())
    (t,) = doc["tables"]
    assert t["key"] == "compare" and any("mAP (micro)" in str(row) for row in t["rows"])
    bad = subprocess.run(
        [sys.executable, "-m", "hbt.engine.cli", "compare", str(grid), "--reference", "nope"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert bad.returncode == 2
    assert bad.stderr.strip() == "hbt: unknown reference 'nope' (allowed: 2004.05484, 2408.10536)"


def test_compare_on_a_dataset_the_paper_lacks(tmp_path: Path) -> None:
    grid = make_grid(tmp_path / "g")
    for path in grid.glob("cells/*/results.json"):
        doc = json.loads(path.read_text())
        doc["datasets"] = {"tydi": doc["datasets"]["xquad-r"]}
        path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match=r"2004\.05484 publishes no numbers"):
        compare_tables(grid, "2004.05484")
