"""`hbt-bench` end to end: commands, results files, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hbt.engine.cli.main import main

from tests.conftest import SHARED_DATA


def _bench(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hbt.engine.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "HBT_OFFLINE": "1", **(env or {})},
        timeout=300,
    )


def test_list_datasets_and_metrics(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "datasets"]) == 0
    out = capsys.readouterr().out
    for name in ("xquad-r", "mlqa-r", "tydi", "miracl"):
        assert name in out
    assert main(["list", "metrics"]) == 0
    out = capsys.readouterr().out
    assert "map" in out and "ndcg@10" in out and "recall@100" in out


def test_list_presets(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "presets"]) == 0
    out = capsys.readouterr().out
    for name in ("quick", "smoke", "paper-xlmr", "paper-labse", "tydi-mbart-laser"):
        assert name in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["eval", "--langs", "xx", "--data-dir", "."], "unknown language 'xx'"),
        (["eval", "--eval-data", "squad"], "unknown dataset 'squad'"),
        (["run", "nosuchpreset"], "unknown preset 'nosuchpreset'"),
        (["eval", "--data-dir", "/no/such/dir"], "data dir /no/such/dir does not exist"),
        (["eval", "--backbone", "someorg/some-model", "--data-dir", "DATA"], "unreachable"),
        (["train", "--strategy", "xz"], "invalid choice: 'xz'"),
    ],
)
def test_user_errors_are_one_line_exit_2(args: list[str], message: str, tmp_path: Path) -> None:
    if "DATA" in args:  # valid data, so that the error met is the one under test
        if not (SHARED_DATA / "xquad-r").is_dir():
            pytest.skip(f"real data not found at {SHARED_DATA}")
        args = [str(SHARED_DATA) if a == "DATA" else a for a in args]
    proc = _bench(*args, "--out", str(tmp_path / "o")) if args[0] != "run" else _bench(*args)
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("hbt: ") and message in lines[0], lines
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not (tmp_path / "o").exists(), "a user error left output behind"


def test_eval_writes_results_and_prints_json(tmp_path: Path, data_dir: Path, capsys) -> None:
    out = tmp_path / "run"
    code = main([
        "eval", "--backbone", "tiny-random", "--data-dir", str(data_dir), "--langs", "de,en,zh",
        "--max-queries", "10", "--out", str(out), "--json",
    ])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    doc = json.loads(printed[printed.index("{") :])
    on_disk = json.loads((out / "results.json").read_text())
    assert doc == on_disk
    s = on_disk["datasets"]["xquad-r"]
    assert set(s["monolingual"]["per_language"]) == {"de", "en", "zh"}
    assert {x: sorted(ys) for x, ys in s["cross_lingual"]["per_pair"].items()} == {
        "de": ["en", "zh"],
        "en": ["de", "zh"],
        "zh": ["de", "en"],
    }  # nested: query language -> candidate language
    assert s["multilingual"]["per_language"]["de"]["n_queries"] == 10
    assert on_disk["schema"] == "hbt.results/2" and on_disk["training"] is None
    assert on_disk["environment"]["versions"]["torch"]
    per_query = json.loads((out / "per_query.json").read_text())
    assert len(per_query["xquad-r"]["multi/de"]) == 10


def test_train_cli(tmp_path: Path, data_dir: Path) -> None:
    out = tmp_path / "t"
    code = main([
        "train", "--backbone", "tiny-random", "--strategy", "hybrid", "--hybrid-p", "proportional",
        "--data-dir", str(data_dir), "--train-langs", "de,en", "--langs", "de,en", "--max-queries", "5",
        "--max-train-pairs", "30", "--steps", "3", "--batch-size", "4", "--seed", "1", "--out", str(out),
    ])  # fmt: skip
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["strategy"] == "hybrid" and results["config"]["hybrid_p"] == "proportional"
    assert results["training"]["steps"] == 3
    kinds = [json.loads(line)["type"] for line in (out / "events.jsonl").read_text().splitlines()]
    assert kinds.count("train_step") == 3 and kinds[-1] == "run_finished"
