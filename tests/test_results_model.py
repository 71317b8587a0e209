"""The typed results model (hbt.engine.evaluation.results): one reading of results.json for every reader.

The fixture tests/fixtures/results/v1-run is a real run directory written before the nested pair layout (schema
hbt.results/1, flat "x-y" pair keys: the hybrid seed-0 cell of a quick grid on XQuAD-R with the bundled model).
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from hbt.engine.evaluation.results import (
    RESULTS_SCHEMA,
    SETTINGS,
    DatasetSummary,
    headline,
    parse_query_key,
    query_key,
    read_datasets,
    split_pair,
)
from hbt.engine.report.export import render
from hbt.engine.report.source import load_cell
from hbt.engine.report.tables import build_tables
from hbt.engine.runs.rundir import results_problem
from hbt.engine.runs.store import ResultsStore

V1 = Path(__file__).parent / "fixtures" / "results" / "v1-run"


def _v1() -> dict[str, Any]:
    return dict(json.loads((V1 / "results.json").read_text(encoding="utf-8")))


def test_an_old_flat_file_reads_into_pairs_and_writes_nested() -> None:
    doc = _v1()
    assert doc["schema"] == "hbt.results/1" and RESULTS_SCHEMA == "hbt.results/2"
    flat = doc["datasets"]["xquad-r"]["cross_lingual"]["per_pair"]
    summary = read_datasets(doc)["xquad-r"]
    langs = summary.languages
    assert langs == ["ar", "de", "en", "hi", "zh"]
    assert set(summary.cross.per_pair) == {(x, y) for x in langs for y in langs if x != y}  # 20 ordered pairs
    for (x, y), m in summary.cross.per_pair.items():
        assert m == flat[f"{x}-{y}"]
    nested = summary.to_json()["cross_lingual"]["per_pair"]
    assert sorted(nested) == langs and nested["ar"]["de"] == flat["ar-de"]
    again = DatasetSummary.from_json(json.loads(json.dumps(summary.to_json())), "xquad-r")
    assert again == summary  # the nested form reads back to the same model
    on_disk = doc["datasets"]["xquad-r"]
    assert {k: v for k, v in summary.to_json().items() if k != "cross_lingual"} == {
        k: v for k, v in on_disk.items() if k != "cross_lingual"
    }  # every other block is written as it was read


def test_headline_is_the_macro_map_and_none_without_queries() -> None:
    on_disk = _v1()["datasets"]["xquad-r"]
    summary = DatasetSummary.from_json(on_disk)
    assert headline(summary) == {
        "mono_map": on_disk["monolingual"]["macro"]["map"],
        "cross_map": on_disk["cross_lingual"]["macro"]["map"],
        "multi_map": on_disk["multilingual"]["macro"]["map"],
    }
    one_language = copy.deepcopy(on_disk)
    one_language["cross_lingual"] = {"per_pair": {}, "macro": {"map": 0.0, "n_queries": 0}}
    assert headline(DatasetSummary.from_json(one_language))["cross_map"] is None  # shown missing, not 0.0
    assert [DatasetSummary.from_json(on_disk).macro(s) is not None for s in SETTINGS] == [True, True, True]


@pytest.mark.parametrize(
    ("mutate", "named"),
    [
        (lambda s: s.pop("monolingual"), "monolingual block is missing"),
        (lambda s: s["multilingual"].update(macro={"n_queries": 3}), "multilingual.macro has no map"),
        (lambda s: s["cross_lingual"]["per_pair"].update({"ar-de": {"map": "0.5"}}), "per_pair.ar-de.map"),
        (lambda s: s["monolingual"]["per_language"].update(de=[1, 2]), "monolingual.per_language.de"),
        (lambda s: s["language_bias"].update(rank_gap=None), "language_bias.rank_gap"),
        (lambda s: s.update(n_queries="3"), "n_queries is not an integer"),
        (lambda s: s.update(languages="de,en"), "languages"),
    ],
)
def test_a_malformed_summary_names_what_is_wrong(mutate: Any, named: str) -> None:
    on_disk = copy.deepcopy(_v1()["datasets"]["xquad-r"])
    mutate(on_disk)
    with pytest.raises(ValueError, match="dataset 'xquad-r'") as err:
        DatasetSummary.from_json(on_disk, "xquad-r")
    assert named in str(err.value)


def test_every_reader_skips_a_malformed_file_with_the_same_reason(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "r1"
    shutil.copytree(V1, run)
    doc = _v1()
    doc["datasets"]["xquad-r"]["multilingual"]["macro"]["map"] = "high"
    (run / "results.json").write_text(json.dumps(doc), encoding="utf-8")
    problem = results_problem(run / "results.json")
    assert problem is not None and "multilingual.macro.map is not a number" in problem
    cell = load_cell(run)
    assert not cell.ok and cell.status == "interrupted" and "multilingual.macro.map" in str(cell.problem)
    row = ResultsStore(tmp_path / "runs").list_runs()[0]
    assert row["status"] == "interrupted" and "multilingual.macro.map" in row["error"] and row["mono_map"] is None
    doc["schema"] = "hbt.results/9"
    with pytest.raises(ValueError, match=r"schema 'hbt\.results/9'"):  # a future schema is not guessed at
        read_datasets(doc)


def test_an_old_file_reports_exactly_as_its_rewrite_in_the_new_schema(tmp_path: Path) -> None:
    """Tables and exports read the model, not the layout: a run written in schema 1 and the same run rewritten in
    schema 2 (nested pairs) give the same markdown, JSON and CSV, and the store lists the same headline."""
    old, new = tmp_path / "old" / "run", tmp_path / "new" / "run"
    shutil.copytree(V1, old)
    shutil.copytree(V1, new)
    doc = _v1()
    doc["schema"] = RESULTS_SCHEMA
    doc["datasets"] = {name: s.to_json() for name, s in read_datasets(doc).items()}
    (new / "results.json").write_text(json.dumps(doc), encoding="utf-8")
    assert "ar-de" not in (new / "results.json").read_text(encoding="utf-8")
    for fmt in ("md", "json", "csv"):
        assert render(build_tables(old), fmt) == render(build_tables(new), fmt)
    pairs = next(t for t in build_tables(old) if t.key == "pairs")
    flat = _v1()["datasets"]["xquad-r"]["cross_lingual"]["per_pair"]
    assert pairs.cell("ar", "de").mean == flat["ar-de"]["map"]  # type: ignore[union-attr]
    rows = [ResultsStore(p.parent).list_runs()[0] for p in (old, new)]
    assert [r["mono_map"] for r in rows] == [_v1()["datasets"]["xquad-r"]["monolingual"]["macro"]["map"]] * 2
    assert rows[0]["cross_map"] == rows[1]["cross_map"] and rows[0]["multi_map"] == rows[1]["multi_map"]


def test_pair_and_per_query_keys() -> None:
    assert split_pair("zh-cn-en", ["en", "zh-cn"]) == ("zh-cn", "en")
    assert split_pair("ar-de", ["ar", "de"]) == ("ar", "de")
    assert split_pair("ar-en", ["ar"]) == ("ar", "en")  # XOR-Retrieve: the candidate language is not a query one
    assert query_key("cross", "zh-cn", "en") == "cross/zh-cn-en"
    assert parse_query_key("cross/zh-cn-en", ["zh-cn", "en"]) == ("cross", "zh-cn", "en")
    assert parse_query_key("rankdist/de") == ("rankdist", "de", None)
    assert parse_query_key(query_key("multi", "de")) == ("multi", "de", None)
