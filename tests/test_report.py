"""Report: stats (mean ± CI), tables (with the seed-aware test), md/csv/json/latex export, Rich, PNG plots."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hbt.engine.common.errors import ConfigError, UserError
from hbt.engine.evaluation.results import split_pair
from hbt.engine.report.export import export, print_tables, render
from hbt.engine.report.stats import MeanCI, mean_ci
from hbt.engine.report.table_rows import Table
from hbt.engine.report.tables import build_tables

from tests.test_report_fixtures import BACKBONE, DATASET, LANGS, cell_dir, make_grid, read_results, write_run

T975_DF2 = 4.302652729749462  # Student t quantile 0.975 with 2 degrees of freedom


def by_hand(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return mean, T975_DF2 * sd / math.sqrt(len(values))


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_grid(tmp_path_factory.mktemp("report") / "grid")


@pytest.fixture(scope="module")
def tables(grid: Path) -> list[Table]:
    return build_tables(grid)


def find(tables: list[Table], key: str, **meta: str) -> Table:
    matches = [t for t in tables if t.key == key and all(t.meta.get(k) == v for k, v in meta.items())]
    assert len(matches) == 1, (key, meta, [t.title for t in tables])
    return matches[0]


def macro_values(grid: Path, strategy: str, block: str) -> list[float]:
    return [read_results(grid, strategy, s)["datasets"][DATASET][block]["macro"]["map"] for s in (0, 1, 2)]


# ---- stats ---------------------------------------------------------------------------------------------------


def test_mean_ci_student_t_by_hand() -> None:
    values = [0.40, 0.41, 0.43]
    got = mean_ci(values)
    mean, ci = by_hand(values)
    assert got.n == 3
    assert got.mean == pytest.approx(mean, abs=1e-12)
    assert got.ci == pytest.approx(ci, abs=1e-12)
    assert got.low == pytest.approx(mean - ci) and got.high == pytest.approx(mean + ci)
    single = mean_ci([0.5])
    assert single.ci is None and single.mean == 0.5 and single.n == 1
    assert single.format() == "0.5000"
    assert got.format() == f"{mean:.4f} ± {ci:.4f}"
    with pytest.raises(ValueError):
        mean_ci([])


def test_split_pair_with_dashed_codes() -> None:
    assert split_pair("zh-cn-en", ["en", "zh-cn"]) == ("zh-cn", "en")
    assert split_pair("ar-de", ["ar", "de"]) == ("ar", "de")


# ---- tables --------------------------------------------------------------------------------------------------


def test_summary_table_mean_ci_and_p_values(grid: Path, tables: list[Table]) -> None:
    summary = find(tables, "summary", backbone=BACKBONE, dataset=DATASET)
    assert summary.column("strategy") == ["none", "xx", "xy", "hybrid"]
    assert summary.column("seeds") == [1, 3, 3, 3]
    for strategy in ("xx", "xy", "hybrid"):
        for setting, block in (("mono", "monolingual"), ("cross", "cross_lingual"), ("multi", "multilingual")):
            cell = summary.cell(strategy, f"{setting} mAP")
            assert isinstance(cell, MeanCI)
            mean, ci = by_hand(macro_values(grid, strategy, block))
            assert cell.mean == pytest.approx(mean, abs=1e-12) and cell.ci == pytest.approx(ci, abs=1e-12)
    baseline = summary.cell("none", "mono mAP")
    assert isinstance(baseline, MeanCI) and baseline.ci is None
    assert baseline.mean == read_results(grid, "none", 0)["datasets"][DATASET]["monolingual"]["macro"]["map"]
    for strategy in ("xx", "xy", "hybrid"):
        for setting in ("mono", "cross", "multi"):
            p = summary.cell(strategy, f"p {setting}")
            assert isinstance(p, float) and p < 0.05
    assert summary.cell("none", "p mono") is None
    assert any("95% confidence" in n for n in summary.notes)


def test_significance_table_follows_the_rule(tables: list[Table]) -> None:
    sig = find(tables, "significance")
    assert sig.column("comparison") == ["xx vs none", "xy vs none", "hybrid vs none", "hybrid vs xx", "hybrid vs xy"]
    assert sig.column("n") == [20 * len(LANGS)] * 5
    assert sig.column("seeds") == ["3 vs 1"] * 3 + ["3 vs 3"] * 2
    delta = sig.cell("hybrid vs xx", "Δ mono")
    assert isinstance(delta, MeanCI) and delta.mean == pytest.approx(0.10, abs=1e-9) and delta.ci is not None
    # the fixture's seeds shift every strategy alike (offsets 0, .01, .03): a pooled two-sample t-test over seeds
    from scipy import stats

    want = stats.ttest_ind(macro_values_of("hybrid", "cross"), macro_values_of("xx", "cross")).pvalue
    assert sig.cell("hybrid vs xx", "p cross") == pytest.approx(want, rel=1e-6)
    assert all(isinstance(p, float) and p < 0.05 for p in sig.column("p cross"))


def macro_values_of(strategy: str, setting: str) -> list[float]:
    from tests.test_report_fixtures import cross_value, mono_value, multi_value

    value = {"mono": mono_value, "multi": multi_value}.get(setting)
    if value is not None:
        return [float(np.mean([value(strategy, s, x) for x in LANGS])) for s in (0, 1, 2)]
    return [float(np.mean([cross_value(strategy, s, x, y) for x in LANGS for y in LANGS if x != y])) for s in (0, 1, 2)]


def test_per_language_pair_and_bias_tables(grid: Path, tables: list[Table]) -> None:
    mono = find(tables, "per_language", setting="mono")
    multi = find(tables, "per_language", setting="multi")
    assert mono.columns == ["language", "none", "xx", "xy", "hybrid"]
    assert mono.column("language") == [*LANGS, "macro"]
    docs = [read_results(grid, "xy", s)["datasets"][DATASET] for s in (0, 1, 2)]
    for lang in LANGS:
        for table, block in ((mono, "monolingual"), (multi, "multilingual")):
            got = table.cell(lang, "xy")
            assert isinstance(got, MeanCI)
            mean, ci = by_hand([d[block]["per_language"][lang]["map"] for d in docs])
            assert got.mean == pytest.approx(mean, abs=1e-12) and got.ci == pytest.approx(ci, abs=1e-12)
    pairs = find(tables, "pairs", strategy="hybrid")
    assert pairs.columns == ["query lang", *LANGS]
    hybrid = [read_results(grid, "hybrid", s)["datasets"][DATASET] for s in (0, 1, 2)]
    diag = pairs.cell("de", "de")
    off = pairs.cell("ar", "en")
    assert isinstance(diag, MeanCI) and isinstance(off, MeanCI)
    assert diag.mean == pytest.approx(np.mean([d["monolingual"]["per_language"]["de"]["map"] for d in hybrid]))
    assert off.mean == pytest.approx(np.mean([d["cross_lingual"]["per_pair"]["ar-en"]["map"] for d in hybrid]))
    assert {t.meta["strategy"] for t in tables if t.key == "pairs"} == {"none", "xx", "xy", "hybrid"}
    bias = find(tables, "bias")
    assert bias.columns == ["strategy", "seeds", "rank_distance", "own_excess@10", "rank_gap", "map_spread"]
    dist = bias.cell("hybrid", "rank_distance")
    assert isinstance(dist, MeanCI)
    want_dist = [
        read_results(grid, "hybrid", s)["datasets"][DATASET]["language_bias"]["rank_distance"] for s in (0, 1, 2)
    ]
    assert (dist.mean, dist.ci) == pytest.approx(by_hand(want_dist))
    gap = bias.cell("xx", "rank_gap")
    assert isinstance(gap, MeanCI)
    want = by_hand([read_results(grid, "xx", s)["datasets"][DATASET]["language_bias"]["rank_gap"] for s in (0, 1, 2)])
    assert (gap.mean, gap.ci) == pytest.approx(want)


def test_single_run_dir_has_no_ci_and_no_p(tmp_path: Path) -> None:
    run = tmp_path / "run"
    results = write_run(run, "hybrid", 0)
    tables = build_tables(run)
    summary = find(tables, "summary")
    assert summary.columns == ["strategy", "seeds", "mono mAP", "cross mAP", "multi mAP"]
    cell = summary.cell("hybrid", "cross mAP")
    assert isinstance(cell, MeanCI) and cell.ci is None
    assert cell.mean == results["datasets"][DATASET]["cross_lingual"]["macro"]["map"]
    assert not [t for t in tables if t.key == "significance"]
    md = render(tables, "md")
    assert "±" not in md
    assert f"{cell.mean:.4f}" in md
    assert " ci95" not in render(tables, "csv")
    doc = json.loads(render(tables, "json"))
    row = doc["tables"][0]["rows"][0]
    assert row[2] == {"mean": results["datasets"][DATASET]["monolingual"]["macro"]["map"], "ci95": None, "n": 1}


def test_other_metric_has_no_p_values(grid: Path) -> None:
    summary = build_tables(grid, metric="recall@10")[0]
    assert summary.columns == ["strategy", "seeds", "mono recall@10", "cross recall@10", "multi recall@10"]
    with pytest.raises(ConfigError):
        build_tables(grid, metric="bleu")


# ---- export --------------------------------------------------------------------------------------------------


def test_markdown_and_latex_hold_the_numbers(grid: Path, tables: list[Table]) -> None:
    mean, ci = by_hand(macro_values(grid, "xx", "monolingual"))
    base = read_results(grid, "none", 0)["datasets"][DATASET]["multilingual"]["macro"]["map"]
    md = render(tables, "md")
    assert f"| xx | 3 | {mean:.4f} ± {ci:.4f} |" in md
    assert f"| {base:.4f} |" in md
    assert md.count("### ") == len(tables)
    latex = render(tables, "latex")
    assert f"xx & 3 & {mean:.4f} $\\pm$ {ci:.4f} &" in latex
    assert latex.count(r"\begin{tabular}") == len(tables)
    assert r"\toprule" in latex and r"\midrule" in latex and r"\bottomrule" in latex
    assert "tiny\\_enc" in latex and "tiny_enc" not in latex.replace("tiny\\_enc", "")
    assert "±" not in latex and "Δ" not in latex


def csv_blocks(text: str) -> dict[str, list[dict[str, str]]]:
    blocks: dict[str, list[dict[str, str]]] = {}
    for chunk in text.strip("\n").split("\n\n"):
        title, _, body = chunk.partition("\n")
        blocks[title.removeprefix("# ")] = list(csv.DictReader(io.StringIO(body)))
    return blocks


def test_csv_and_json_keep_full_precision(grid: Path, tables: list[Table]) -> None:
    mean, ci = by_hand(macro_values(grid, "hybrid", "cross_lingual"))
    blocks = csv_blocks(render(tables, "csv"))
    assert len(blocks) == len(tables)
    summary = next(rows for title, rows in blocks.items() if title.startswith("mAP by strategy"))
    hybrid = next(r for r in summary if r["strategy"] == "hybrid")
    assert float(hybrid["cross mAP"]) == pytest.approx(mean, abs=1e-15)
    assert float(hybrid["cross mAP ci95"]) == pytest.approx(ci, abs=1e-15)
    none = next(r for r in summary if r["strategy"] == "none")
    assert none["cross mAP ci95"] == "" and none["p cross"] == ""
    assert (
        float(none["cross mAP"]) == read_results(grid, "none", 0)["datasets"][DATASET]["cross_lingual"]["macro"]["map"]
    )

    doc = json.loads(render(tables, "json"))
    assert doc["schema"] == "hbt.report/1"
    first = doc["tables"][0]
    assert first["key"] == "summary" and first["meta"]["dataset"] == DATASET
    row = next(r for r in first["rows"] if r[0] == "hybrid")
    cross = row[first["columns"].index("cross mAP")]
    assert cross["n"] == 3
    assert cross["mean"] == pytest.approx(mean, abs=1e-15) and cross["ci95"] == pytest.approx(ci, abs=1e-15)


def test_export_writes_atomically_and_prints(grid: Path, tmp_path: Path) -> None:
    out = tmp_path / "deep" / "report.md"
    text = export(grid, "md", out)
    assert out.read_text(encoding="utf-8") == text
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".tmp")]
    from hbt.engine.report.published import compare_tables

    assert export(grid, "json") == render([*build_tables(grid), *compare_tables(grid)], "json")
    with pytest.raises(ConfigError):
        export(grid, "html")
    from rich.console import Console

    console = Console(record=True, width=220)
    print_tables(grid, console)
    shown = console.export_text()
    mean, ci = by_hand(macro_values(grid, "xy", "multilingual"))
    assert f"{mean:.4f} ± {ci:.4f}" in shown and "hybrid vs xy" in shown


def test_torn_cell_is_left_out_with_a_note(tmp_path: Path) -> None:
    grid = make_grid(tmp_path / "grid", seeds=(0, 1))
    torn = cell_dir(grid, "xx", 1) / "results.json"
    torn.write_text(torn.read_text(encoding="utf-8")[:200], encoding="utf-8")
    (cell_dir(grid, "xy", 0) / "per_query.json").write_text("{", encoding="utf-8")
    tables = build_tables(grid)
    summary = find(tables, "summary")
    assert summary.cell("xx", "seeds") == 1
    assert any("xx__s1" in n and "left out 1" in n for n in summary.notes)
    xy_mono = summary.cell("xy", "mono mAP")
    assert isinstance(xy_mono, MeanCI) and xy_mono.n == 2  # its per_query.json is torn for seed 0 only
    sig = find(tables, "significance")  # xy's seed 0 has no per-query values: the seed part alone, still tested
    assert isinstance(sig.cell("xy vs none", "p mono"), float)


@pytest.mark.parametrize("make", ["missing", "empty", "file", "model-only"])
def test_not_a_run_or_grid_dir_is_a_one_line_user_error(tmp_path: Path, make: str) -> None:
    path = tmp_path / "x"
    if make == "empty":
        path.mkdir()
    elif make == "file":
        path.write_text("hello")
    elif make == "model-only":
        path.mkdir()
        (path / "config.json").write_text("{}")  # a saved model, not a run
    from hbt.engine.report.plots import write_plots

    for call in (build_tables, lambda p: export(p, "md"), print_tables, write_plots):
        with pytest.raises(UserError) as info:
            call(path)
        assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_run_without_results_is_a_user_error(tmp_path: Path) -> None:
    run = tmp_path / "run"
    write_run(run, "xx", 0)
    (run / "results.json").unlink()
    with pytest.raises(UserError, match="no results"):
        build_tables(run)


# ---- plots ---------------------------------------------------------------------------------------------------


def test_plots_are_real_pngs(grid: Path, tmp_path: Path) -> None:
    from hbt.engine.report.plots import write_plots
    from matplotlib.image import imread

    paths = write_plots(grid, tmp_path / "plots")
    names = sorted(p.name for p in paths)
    stem = "org-tiny_enc_xquad-r"
    assert names == sorted(
        ["loss_org-tiny_enc.png", f"settings_{stem}.png", f"bias_{stem}.png"]
        + [f"pairs_{stem}_{s}.png" for s in ("none", "xx", "xy", "hybrid")]
    )
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        image = imread(path)
        assert image.shape[0] >= 200 and image.shape[1] >= 300, (path.name, image.shape)
        assert float(np.std(image)) > 0.01, path.name
    assert not [p for p in (tmp_path / "plots").iterdir() if p.suffix != ".png"]


def test_plots_default_folder_and_loss_from_events(tmp_path: Path) -> None:
    from hbt.engine.report.plots import write_plots
    from hbt.engine.report.source import load_source

    run = tmp_path / "run"
    write_run(run, "xy", 0, loss_in_events=True)
    assert len(load_source(run).cells[0].loss_curve) == 10  # from events.jsonl TrainStep events
    paths = write_plots(run)
    assert {p.parent for p in paths} == {run / "plots"}
    assert any(p.name.startswith("loss_") for p in paths)


def test_claims_table_gives_a_verdict_per_claim(grid: Path, tables: list[Table]) -> None:
    """Fixture levels: xx 0.40 < xy 0.45 < hybrid 0.50 in every setting, seeds shifting every strategy by 0, .01,
    .03 (hand-built grids with known answers: test_claims.py)."""
    claims = find(tables, "claims")
    assert claims.columns == ["claim", "verdict", "decided by", "Δ ± 95% CI", "p (Holm)", "seeds", "n"]
    verdicts = dict(zip(claims.column("claim"), claims.column("verdict"), strict=True))
    assert verdicts["X-X-mono best monolingual"] == "not reproduced"  # hybrid is 0.10 better (Holm p 0.012)
    assert verdicts["hybrid lower rank distance than X-X-mono"] == "reproduced"
    ci = claims.cell("hybrid lower rank distance than X-X-mono", "Δ ± 95% CI")
    assert isinstance(ci, MeanCI) and ci.mean == pytest.approx(40.0, abs=1e-9) and ci.n == 3
    assert claims.cell("X-X-mono best monolingual", "decided by") == "vs hybrid, mono mAP, Δ > 0"
    assert any(n.startswith("multiplicity: Holm over the 13 comparisons") for n in claims.notes)
    assert any(n.startswith("hybrid best multilingual: vs X-X-mono, multi mAP, Δ > 0: Δ +0.1000") for n in claims.notes)
    assert find(tables, "power").column("setting")[:3] == ["mono mAP", "cross mAP", "multi mAP"]


def test_claims_need_xx_xy_and_hybrid(tmp_path: Path) -> None:
    import shutil

    grid = make_grid(tmp_path / "g")
    for s in (0, 1, 2):
        shutil.rmtree(grid / "cells" / f"org-tiny_enc__xy__s{s}")
    assert not [t for t in build_tables(grid) if t.key == "claims"]


def test_show_and_export_carry_the_claims(grid: Path) -> None:
    text = export(grid, "md")
    assert "The paper's claims" in text and "| X-X-mono best monolingual | not reproduced |" in text
    assert "beside 2408.10536" in text  # exports carry the comparison with the paper
    data = json.loads(export(grid, "json"))
    assert any(t["key"] == "claims" for t in data["tables"])
