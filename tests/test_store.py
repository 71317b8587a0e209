"""The SQLite results index: reindex, list, get, upsert, refresh; tolerant of torn files; a rebuildable cache."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from hbt.engine.common.errors import UserError
from hbt.engine.runs.store import INDEX_NAME, ResultsStore

from tests.test_report_fixtures import BACKBONE, DATASET, cell_dir, make_grid, read_results, write_run

N_GRID = 1 + 3 * 3  # none once, xx / xy / hybrid x 3 seeds


@pytest.fixture
def root(tmp_path: Path) -> Path:
    make_grid(tmp_path / "runs" / "grid-a")
    write_run(tmp_path / "runs" / "single" / "20250101-eval", "none", 0)
    return tmp_path / "runs"


def stable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "indexed"} for r in rows]


def test_reindex_and_list(root: Path) -> None:
    store = ResultsStore(root)
    assert store.reindex() == N_GRID + 1
    assert (root / INDEX_NAME).is_file()
    assert not [p for p in root.iterdir() if p.name.endswith(".tmp")]
    rows = store.list_runs()
    assert len(rows) == N_GRID + 1
    grid = root / "grid-a"
    row = next(r for r in rows if r["id"] == cell_dir(grid, "hybrid", 2).name)
    summary = read_results(grid, "hybrid", 2)["datasets"][DATASET]
    assert row["grid"] == "grid-a"
    assert (row["backbone"], row["strategy"], row["seed"], row["status"]) == (BACKBONE, "hybrid", 2, "complete")
    assert row["mono_map"] == summary["monolingual"]["macro"]["map"]
    assert row["cross_map"] == summary["cross_lingual"]["macro"]["map"]
    assert row["multi_map"] == summary["multilingual"]["macro"]["map"]
    assert row["dataset"] == DATASET and row["datasets"] == [DATASET]
    assert row["started"] == 102.0 and row["steps"] == 50 and isinstance(row["final_loss"], float)
    assert Path(row["path"]) == cell_dir(grid, "hybrid", 2).resolve()
    assert row["key"] == f"grid-a/cells/{cell_dir(grid, 'hybrid', 2).name}"
    single = next(r for r in rows if r["id"] == "20250101-eval")
    assert single["grid"] is None and single["strategy"] == "none" and single["steps"] is None
    assert [r["started"] for r in rows] == sorted(r["started"] for r in rows)


def test_walk_skips_model_checkpoint_and_hidden_dirs(root: Path) -> None:
    run = cell_dir(root / "grid-a", "xx", 0)
    for sub in ("model", "checkpoints/step-10", ".hidden/run"):
        (run / sub).mkdir(parents=True)
        (run / sub / "config.json").write_text("{}")
        (run / sub / "run.json").write_text("{}")
    (root / ".trash" / "old").mkdir(parents=True)
    shutil.copytree(run, root / ".trash" / "old" / "copy")
    assert ResultsStore(root).reindex() == N_GRID + 1


def test_torn_results_marks_interrupted(root: Path) -> None:
    torn = cell_dir(root / "grid-a", "xy", 1) / "results.json"
    torn.write_text(torn.read_text(encoding="utf-8")[:500], encoding="utf-8")
    bad_schema = cell_dir(root / "grid-a", "xy", 2) / "results.json"
    bad_schema.write_text(json.dumps({"schema": "hbt.results/1", "datasets": {DATASET: {"monolingual": {}}}}))
    (cell_dir(root / "grid-a", "xx", 2) / "config.json").write_text("{not json")
    store = ResultsStore(root)
    assert store.reindex() == N_GRID + 1
    for seed in (1, 2):
        row = store.get(cell_dir(root / "grid-a", "xy", seed).name)
        assert row is not None
        assert row["status"] == "interrupted" and row["mono_map"] is None
        assert "results.json" in row["error"]
    xx2 = store.get(cell_dir(root / "grid-a", "xx", 2).name)
    assert xx2 is not None and xx2["status"] == "complete" and xx2["strategy"] == "xx"  # config from results.json
    assert len(store.list_runs(status="interrupted")) == 2
    assert len(store.list_runs(status="complete")) == N_GRID - 1


def test_complete_without_results_and_running(root: Path) -> None:
    run = root / "single" / "20250101-eval"
    (run / "results.json").unlink()
    live = root / "live"
    write_run(live, "xx", 0, status="running")
    (live / "results.json").unlink()
    store = ResultsStore(root)
    store.reindex()
    gone = store.get("20250101-eval")
    assert gone is not None and gone["status"] == "interrupted"
    running = store.get("live")
    assert running is not None and running["status"] == "running" and running["mono_map"] is None


def test_reindex_after_deleting_the_db_gives_the_same_rows(root: Path) -> None:
    store = ResultsStore(root)
    store.reindex()
    before = stable(store.list_runs())
    (root / INDEX_NAME).unlink()
    assert stable(store.list_runs()) == before  # a missing index is rebuilt on read
    (root / INDEX_NAME).unlink()
    store.reindex()
    assert stable(store.list_runs()) == before
    (root / INDEX_NAME).write_bytes(b"this is not a database")
    assert stable(store.list_runs()) == before  # a corrupt index is rebuilt too


def test_upsert_get_and_refresh(root: Path) -> None:
    store = ResultsStore(root)
    store.reindex()
    run = cell_dir(root / "grid-a", "xx", 0)
    status = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**status, "status": "failed", "error": "boom"}))
    row = store.upsert(run)
    assert row is not None and row["status"] == "failed" and row["error"] == "boom"
    got = store.get(run.name)
    assert got is not None and got["status"] == "failed"
    assert store.get(row["key"]) == got and store.get(str(run)) == got
    assert store.get("no-such-run") is None

    new = root / "later" / "20250202-train"
    write_run(new, "hybrid", 1)
    shutil.rmtree(cell_dir(root / "grid-a", "xy", 2))
    assert store.refresh() == 2
    ids = {r["id"] for r in store.list_runs()}
    assert "20250202-train" in ids and cell_dir(root / "grid-a", "xy", 2).name not in ids
    assert store.refresh() == 0

    shutil.rmtree(new)
    assert store.upsert(new) is None
    assert store.get("20250202-train") is None
    with pytest.raises(UserError):
        store.upsert(root.parent / "elsewhere")


def test_upsert_without_index_builds_it(root: Path) -> None:
    store = ResultsStore(root)
    row = store.upsert(root / "single" / "20250101-eval")
    assert row is not None and row["status"] == "complete"
    assert len(store.list_runs()) == N_GRID + 1


def test_missing_root(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path / "nope")
    assert store.list_runs() == []
    assert store.get("x") is None
    assert not (tmp_path / "nope").exists()
    with pytest.raises(UserError) as info:
        store.reindex()
    assert "\n" not in str(info.value)
