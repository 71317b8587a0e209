"""Results that name their stack and data, and can be re-made (issue 21, part 5): `reproduce` on a finished grid gives
|Δ| = 0 for every metric and names an edited one; reports warn when cells came from different stacks or data; a
resumed grid stops on another stack unless --allow-stack-change (recorded)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hbt.engine.cli.main import main
from hbt.engine.common.checksums import file_sha256
from hbt.engine.common.io import read_json, write_json
from hbt.engine.runs import stack
from hbt.engine.runs.reproduce import Delta, compare

from tests.conftest import SHARED_DATA

XX = "tiny-random__xx__s0"
BASE = "tiny-random__none__s0"
MONO = "xquad-r/monolingual/macro/map"


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (SHARED_DATA / "xquad-r" / "en.json").exists():
        pytest.skip(f"real LAReQA data not found at {SHARED_DATA} (set HBT_TEST_DATA_DIR to its folder)")
    out = tmp_path_factory.mktemp("repro") / "grid"
    assert main(["run", "smoke", "--data-dir", str(SHARED_DATA), "--strategies", "xx", "--out", str(out)]) == 0
    return out


def _copy(grid: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "grid"
    shutil.copytree(grid, copy)
    return copy


def test_results_record_stack_and_data_by_content(grid: Path) -> None:
    doc = read_json(grid / "cells" / XX / "results.json")
    recorded = stack.recorded(doc)
    assert recorded is not None and recorded["packages"]["transformers"] and recorded["drift"] == {}
    assert recorded["packages_sha256"] == stack.packages_sha256(stack.installed())
    files = doc["data"]["files"]
    assert set(files) == {"xquad-r/de.json", "xquad-r/en.json", "mlqa-r/de.json", "mlqa-r/en.json"}
    assert files["xquad-r/de.json"]["sha256"] == file_sha256(SHARED_DATA / "xquad-r" / "de.json")
    assert read_json(grid / "grid.json")["stack"]["packages_sha256"] == recorded["packages_sha256"]


def test_reproduce_is_identical_then_names_an_edited_metric(
    grid: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["reproduce", str(grid)]) == 0
    out = capsys.readouterr().out
    assert f"{XX}: " in out and f"{BASE}: " in out and out.count("identical") == 2
    assert "the recorded stack is this machine's" in out
    edited = _copy(grid, tmp_path)
    doc = read_json(edited / "cells" / XX / "results.json")
    doc["datasets"]["xquad-r"]["monolingual"]["macro"]["map"] += 0.0125
    write_json(edited / "cells" / XX / "results.json", doc)
    assert main(["reproduce", str(edited), "--cell", XX, "--out", str(tmp_path / "again")]) == 1
    out = capsys.readouterr().out
    assert "1 differ (largest |Δ| 0.0125)" in out and MONO in out and BASE not in out
    assert (tmp_path / "again" / XX / "results.json").is_file()  # --out keeps the re-made cell


def test_compare_counts_every_number_and_missing_ones() -> None:
    old = {"datasets": {"x": {"a": 1.0, "b": [0.5, 2], "pool": "full corpus", "encode_s": 3.0, "encoded": {"q": 0}}}}
    new = {"datasets": {"x": {"a": 1.0, "b": [0.25, 2], "c": 1.0, "encode_s": 9.0, "encoded": {"q": 9}}}}
    deltas = {d.metric: d.delta for d in compare(old, new)}
    assert deltas == {"x/a": 0.0, "x/b[0]": 0.25, "x/b[1]": 0.0, "x/c": float("inf")}
    assert Delta("m", float("nan"), float("nan")).delta == 0.0


def test_reports_warn_about_other_stacks_and_data(
    grid: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["show", str(grid)]) == 0
    assert "hbt: warning" not in capsys.readouterr().err
    mixed = _copy(grid, tmp_path)
    path = mixed / "cells" / XX / "results.json"
    doc = read_json(path)
    doc["environment"]["stack"]["packages"]["transformers"] = "5.24.0"
    doc["environment"]["stack"]["packages_sha256"] = "0" * 64
    doc["data"]["files"]["xquad-r/de.json"]["sha256"] = "f" * 64
    write_json(path, doc)
    for command in (["show", str(mixed)], ["export", str(mixed), "--format", "csv"]):
        assert main(command) == 0
        err = capsys.readouterr().err
        assert f"hbt: warning: cells made on different stacks: {BASE} vs {XX}: transformers" in err
        assert "-> 5.24.0" in err
        assert f"hbt: warning: cells read different contents of xquad-r/de.json: {BASE} vs {XX}" in err


def test_resume_on_another_stack_stops_unless_allowed(
    grid: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    moved = _copy(grid, tmp_path)
    doc = read_json(moved / "grid.json")
    doc["stack"]["packages"]["transformers"] = "5.24.0"
    doc["stack"]["packages_sha256"] = "0" * 64
    write_json(moved / "grid.json", doc)
    assert main(["run", "smoke", "--resume", str(moved)]) == 2
    err = capsys.readouterr().err
    assert f"hbt: {moved} was made with another software stack (transformers 5.24.0 -> " in err
    assert "--allow-stack-change" in err
    assert main(["run", "smoke", "--resume", str(moved), "--allow-stack-change"]) == 0
    after = read_json(moved / "grid.json")
    (change,) = after["stack_changes"]
    assert change["from"] == "0" * 64 and any(c.startswith("transformers 5.24.0 -> ") for c in change["changes"])
    assert after["stack"]["packages_sha256"] == stack.packages_sha256(stack.installed())
    assert json.dumps(after["cells"]) == json.dumps(doc["cells"])
