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

from tests.claims_grids import Arm, write_grid
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
    zero_shot = rows["zero-shot", "mono", "mAP"]  # the untrained baseline beside the trained cells, no paper value
    assert isinstance(zero_shot[3], MeanCI) and zero_shot[4:-1] == [None] * 4
    notes = " ".join(table.notes)
    assert "differs: backbone: org/tiny_enc here" in notes and "differs: training data: mlqa-r" in notes
    assert "differs: evaluation data: xquad-r in ar,de,en (every question), a pool of 180 candidates" in notes
    # rank distance over 3 of 11 languages: shown, never subtracted from the paper's 11-language pool
    assert dist[table.columns.index("Δ vs LaBSE")] is None and "rank distance: no Δ" in notes


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


def test_compare_lists_every_setting_that_differs_with_its_source(tmp_path: Path) -> None:
    """Each differing setting on its own line with the reference's source (the paper's uniform X-X-mono language,
    not the optimiser line twice), the settings the paper does not state with this grid's values, one evaluation
    length for every cell."""
    grid = write_grid(tmp_path / "g", {"none": Arm(seeds=(0,)), "xx": Arm(), "xy": Arm(), "hybrid": Arm()})
    (table,) = compare_tables(grid)
    notes = table.notes
    source = "[2408.10536 full text, as quoted in shared/notes/method.md"
    for line in (
        "differs: X-X-mono batch language: proportional to each language's pairs (proportional) here; the paper: "
        "uniform (balanced) " + source,
        "differs: AdamW weight decay: 0.0 here; the paper: 0.01 " + source,
        "differs: trained layers: top 4 (the rest frozen) here; the paper: all " + source,
        "differs: batch size: 16 here; the paper: 100 " + source,
        "differs: checkpoint: the last step (no early stopping) here; the paper: early stopping",
        "differs: hard negatives: none here; the paper: one per pair " + source,
    ):
        assert any(n.startswith(line) for n in notes), line
    unstated = next(n for n in notes if n.startswith("not stated by 2408.10536"))
    assert "training max length 96" in unstated and "evaluation max length 512" in unstated
    assert "evaluation max length: 512 tokens for every cell, the untrained baseline included" in notes
    assert not any(n.startswith(("differs: hybrid mix", "differs: evaluation max length")) for n in notes)


def test_evaluation_lengths_that_differ_are_named(tmp_path: Path) -> None:
    grid = write_grid(tmp_path / "g", {"none": Arm(seeds=(0,)), "xx": Arm(), "xy": Arm(), "hybrid": Arm()})
    results = grid / "cells" / "org-enc__none__s0" / "results.json"
    doc = json.loads(results.read_text())
    doc["evaluation"] = {"max_seq_length": 96}
    results.write_text(json.dumps(doc))
    (table,) = compare_tables(grid)
    assert any(n.startswith("not like for like: the cells were evaluated at different max lengths") and "96: none" in n
               for n in table.notes)  # fmt: skip


def test_rank_distance_is_compared_on_the_papers_pool_only(tmp_path: Path) -> None:
    langs = ("ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh")  # every XQuAD-R language
    arms = {"xx": Arm(seeds=(0, 1)), "xy": Arm(seeds=(0, 1)), "hybrid": Arm(seeds=(0, 1))}
    (table,) = compare_tables(write_grid(tmp_path / "full", arms, langs=langs))
    row = next(r for r in table.rows if r[0] == "hybrid" and r[2] == "rank_distance")
    assert row[3] is not None and row[table.columns.index("Δ vs XLM-R")] == pytest.approx(row[3].mean - 286.6)
    assert any(n.startswith("rank distance: the paper's pool") for n in table.notes)


def test_alpha_sweep_rows_stand_for_the_papers_strategies(tmp_path: Path) -> None:
    arms = {f"hybrid-a{a:g}": Arm(alpha=a, seeds=(0, 1)) for a in (0.0, 0.5, 1.0)}
    (table,) = compare_tables(write_grid(tmp_path / "sweep", arms))
    names = {r[0] for r in table.rows}
    assert names == {"X-X-mono (hybrid α=1)", "X-Y (hybrid α=0)", "hybrid (hybrid α=0.5)"}
    assert any("differs: hybrid α: sweep 0, 0.5, 1 here" in n for n in table.notes)
