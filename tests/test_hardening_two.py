"""Issue 23 (engine and CLI): the defects of the second 284-case probe, each reproduced as the probe met it.

Numbers follow the issue's list: 1 stale corpus shards, 2 input counts, 3 one grid one runner, 4 non-finite results,
5 full and read-only disks, 6 unavailable devices, 7 encode-corpus batch size, 8 seeds / lr / ports, 9 repeated
passage ids, 10 escapes on stdout, 11 the cache's write errors, 12 errors that name the wrong thing.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from hbt.engine.cli.main import main
from hbt.engine.data.registry import load_eval
from hbt.engine.encoding.corpus_shards import CorpusOptions
from hbt.engine.evaluation.corpus_eval import evaluate_corpus

from tests.miracl_release import CORPUS, QRELS, TOPICS, write_gz_jsonl, write_release
from tests.test_miracl import FixedEncoder, _hand_case

XOR_FIXTURE = Path(__file__).parent / "fixtures" / "data" / "xor-retrieve"


def _lines(text: str) -> list[str]:
    return [line for line in text.strip().splitlines() if line.strip()]


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test its own cache folder (shards, embeddings, checksums): nothing is re-used between tests."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("HBT_CACHE_DIR", str(cache))
    return cache


def _eval(data: Path, out: Path, dataset: str, *extra: str) -> int:
    args = ["eval", "--backbone", "tiny-random", "--data-dir", str(data), "--eval-data", dataset]
    return main([*args, "--out", str(out), "--device", "cpu", *extra])


def _one_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and "internal error" not in err, err
    lines = [line for line in _lines(err) if line.startswith("hbt: ")]
    assert len(lines) == 1, err
    return lines[0]


# ---- 1. a corpus rewritten in place (same names and sizes) is a new corpus ----------------------------------------


def test_corpus_rewritten_in_place_with_the_same_size_is_encoded_again(tmp_path: Path) -> None:
    data = _hand_case(tmp_path)
    shards = tmp_path / "shards"

    def full_map(shard_dir: Path) -> float:
        task = load_eval("miracl", data, ["en"])
        out = evaluate_corpus(task, FixedEncoder(), CorpusOptions(shard_size=2, shard_dir=shard_dir))  # type: ignore[arg-type]
        return float(out.summary.to_json()["monolingual"]["per_language"]["en"]["map"])

    before = full_map(shards)
    assert before == pytest.approx((1 / 4 + 2 / 5) / 2)  # test_miracl's hand-computed case
    docs0 = data / "miracl-corpus" / "miracl-corpus-v1.0-en" / "docs-0.jsonl.gz"
    stat = docs0.stat()
    # the relevant passage 0#0 and the unjudged 2#0 swap ids in place: same file names, same sizes
    swapped = [("2#0", "t", "rel-a"), ("1#0", "t", "judged-neg"), ("0#0", "t", "other-1"), ("3#0", "t", "other-2")]
    write_gz_jsonl(docs0, swapped)
    os.utime(docs0, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert docs0.stat().st_size == stat.st_size
    fresh = full_map(tmp_path / "fresh-shards")
    assert fresh == pytest.approx((1 / 2 + 2 / 5) / 2)  # 0#0 (other-1, .8) is now 2nd after judged-neg, rel-b 5th
    assert full_map(shards) == pytest.approx(fresh)  # not the old shards' 0.325


# ---- 2. every input count hbt can check, it checks ---------------------------------------------------------------


@pytest.mark.parametrize("empty", [b"", gzip.compress(b"")], ids=["zero-bytes", "empty-gzip"])
def test_an_empty_corpus_file_is_an_error_not_fewer_passages(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], empty: bytes
) -> None:
    write_release(tmp_path / "data")
    docs0 = tmp_path / "data" / "miracl-corpus" / "miracl-corpus-v1.0-en" / "docs-0.jsonl.gz"
    docs0.write_bytes(empty)
    for dataset in ("miracl", "miracl-judged"):
        assert _eval(tmp_path / "data", tmp_path / dataset, dataset, "--langs", "en") == 2
        assert _one_error(capsys) == f"hbt: {docs0}: no passages (an empty corpus file: download it again)"
        assert not (tmp_path / dataset).exists()  # found before the run folder is made


def test_a_stray_quote_in_the_collection_is_an_error_not_fewer_passages(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "data" / "xor-retrieve"
    shutil.copytree(XOR_FIXTURE, folder)
    tsv = folder / "enwiki_20190201_w100.tsv"
    lines = tsv.read_text(encoding="utf-8").split("\n")
    pid, text, title = lines[5].split("\t")
    lines[5] = f'{pid}\t"{text}\t{title}'  # line 6: a quote opens the text and never closes
    tsv.write_text("\n".join(lines), encoding="utf-8")
    for limit in ([], ["--corpus-limit", "5"]):
        assert _eval(tmp_path / "data", tmp_path / f"run{len(limit)}", "xor-retrieve", *limit) == 2
        line = _one_error(capsys)
        assert line.startswith(f"hbt: {tsv}:6: a quoted field runs over lines 6-"), line
        assert "one passage a line" in line


def test_qrels_naming_only_unknown_passages_fail_instead_of_a_complete_empty_cell(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    qrels = {"en": [(q, f"9{d}", r) for q, d, r in QRELS["en"]], "de": QRELS["de"]}  # no such docids
    write_release(tmp_path / "data", qrels=qrels)
    docs = tmp_path / "data" / "miracl-corpus" / "miracl-corpus-v1.0-en"
    for dataset in ("miracl", "miracl-judged"):
        assert _eval(tmp_path / "data", tmp_path / dataset, dataset, "--langs", "en") == 2
        line = _one_error(capsys)
        assert line.startswith(f"hbt: {docs} (2 files): 5 of the 5 relevant passages in the en qrels are not in the "
                               "corpus (e.g. '9303#0' for query '1')"), line  # fmt: skip
        assert not (tmp_path / dataset / "results.json").exists()


def test_one_relevant_passage_missing_from_the_corpus_is_an_error_not_a_dropped_judgment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: the query kept its other relevant passage (3 of 4 queries scored as if 39#1 was never judged)."""
    corpus = {"en": [CORPUS["en"][0], [d for d in CORPUS["en"][1]]], "de": CORPUS["de"]}
    corpus["en"][0] = [d for d in corpus["en"][0] if d[0] != "39#1"]
    write_release(tmp_path / "data", corpus=corpus)
    for dataset in ("miracl", "miracl-judged"):
        assert _eval(tmp_path / "data", tmp_path / dataset, dataset, "--langs", "en") == 2
        assert "1 of the 5 relevant passages in the en qrels are not in the corpus (e.g. '39#1' for query '3')" in (
            _one_error(capsys)
        )


def test_full_corpus_results_count_queries_topics_and_judgments(tmp_path: Path) -> None:
    """Topics against judgments, both ways: a qrels line for a query id that is no topic is said, not dropped
    silently (before, nothing counted it)."""
    qrels = {"en": [*QRELS["en"], ("77", "12#0", 1)], "de": QRELS["de"]}  # 77: judged, not a topic
    write_release(tmp_path / "data", qrels=qrels)
    assert _eval(tmp_path / "data", tmp_path / "run", "miracl", "--langs", "en,de") == 0
    corpus = json.loads((tmp_path / "run" / "results.json").read_text())["datasets"]["miracl"]["corpus"]
    expected = {lang: (len(TOPICS[lang]), sum(1 for _, _, r in QRELS[lang] if r > 0)) for lang in ("en", "de")}
    assert {k: (v["queries"], v["relevant_passages"]) for k, v in corpus.items()} == expected
    assert corpus["en"]["passages"] == 17
    assert (corpus["en"]["topics"], corpus["en"]["judged_topics"], corpus["en"]["topics_with_relevant"]) == (4, 4, 4)
    assert corpus["en"]["judged_not_topics"] == ["77"] and corpus["de"]["judged_not_topics"] == []
    events = (tmp_path / "run" / "events.jsonl").read_text()
    assert "miracl/en: 4 queries, their 5 relevant passages all found among 17 passages" in events
    assert "miracl/en: 4 topics, 4 judged, 4 with a relevant passage" in events
    assert "miracl/en: the qrels judge 1 query id(s) that are not topics (e.g. '77'): their judgments are not used" in (
        events
    )


def test_a_gold_passage_missing_from_the_whole_collection_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It was rejected with --corpus-limit and ignored over the whole collection."""
    folder = tmp_path / "data" / "xor-retrieve"
    shutil.copytree(XOR_FIXTURE, folder)
    tsv = folder / "enwiki_20190201_w100.tsv"
    tsv.write_text("".join(line for line in tsv.read_text("utf-8").splitlines(True) if not line.startswith("5\t")))
    for limit in ([], ["--corpus-limit", "5"]):
        assert _eval(tmp_path / "data", tmp_path / f"run{len(limit)}", "xor-retrieve", *limit) == 2
        assert _one_error(capsys) == f"hbt: {tsv}: 1 gold passage id(s) not in the collection, e.g. '5'"


# ---- 9 and 12. a repeated passage id: one line naming both places in the source file -------------------------------


def test_a_repeated_passage_id_in_the_collection_names_both_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: KeyError over the whole collection (internal error), silently two candidates with --corpus-limit."""
    folder = tmp_path / "data" / "xor-retrieve"
    shutil.copytree(XOR_FIXTURE, folder)
    tsv = folder / "enwiki_20190201_w100.tsv"
    lines = tsv.read_text("utf-8").splitlines()
    assert lines[-2].startswith("29\t") and lines[-1].startswith("30\t")  # not gold passages
    lines[-1] = "29" + lines[-1][2:]
    tsv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    for limit in ([], ["--corpus-limit", "3"]):
        assert _eval(tmp_path / "data", tmp_path / f"run{len(limit)}", "xor-retrieve", *limit) == 2
        repeat = f"hbt: {tsv}:31: passage id '29' appears twice in the collection (first at {tsv}:30)"
        assert _one_error(capsys) == repeat


def test_a_repeated_relevant_docid_names_the_corpus_file_not_the_cache(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = {"en": [CORPUS["en"][0], [*CORPUS["en"][1], ("305#1", "Achilles", "A second copy.")]], "de": CORPUS["de"]}
    write_release(tmp_path / "data", corpus=corpus)
    docs = tmp_path / "data" / "miracl-corpus" / "miracl-corpus-v1.0-en"
    for dataset in ("miracl", "miracl-judged"):
        assert _eval(tmp_path / "data", tmp_path / dataset, dataset, "--langs", "en", "--shard-size", "4") == 2
        assert _one_error(capsys) == (
            f"hbt: {docs}/docs-1.jsonl.gz:11: docid '305#1' appears twice in the corpus "
            f"(first at {docs}/docs-1.jsonl.gz:1)"
        )


# ---- 3. one grid, one runner ---------------------------------------------------------------------------------------


def _one_cell_preset(tmp_path: Path, **run: str) -> Path:
    """A one-cell grid (tiny-random's zero-shot baseline) on the MIRACL release fixture: seconds, no shared data."""
    write_release(tmp_path / "data")
    extra = "".join(f"{k} = {v}\n" for k, v in run.items())
    preset = tmp_path / "p.toml"
    preset.write_text(
        '[preset]\nname = "p"\nbackbones = ["tiny-random"]\nstrategies = []\nbaseline = true\n'
        f'[run]\neval_data = ["miracl-judged"]\nlangs = ["de"]\ndevice = "cpu"\n'
        f'data_dir = "{tmp_path / "data"}"\n{extra}',
        encoding="utf-8",
    )
    return preset


HOLDER = """
import sys, time
from pathlib import Path
from hbt.engine.runs.grid_lock import grid_lock
with grid_lock(Path(sys.argv[1]), print):
    print("held", flush=True)
    time.sleep(120)
"""


def test_a_second_runner_of_a_grid_is_refused_and_a_dead_runners_lock_is_taken_over(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket
    import subprocess
    import sys

    preset, grid = _one_cell_preset(tmp_path), tmp_path / "g"
    assert main(["run", str(preset), "--out", str(grid)]) == 0
    cell = grid / "cells" / "tiny-random__none__s0"
    shutil.rmtree(cell)  # one cell left to run: two resumes would both run it
    first = subprocess.Popen([sys.executable, "-c", HOLDER, str(grid)], stdout=subprocess.PIPE, text=True)
    try:
        assert first.stdout is not None and first.stdout.readline().strip() == "held"
        capsys.readouterr()
        assert main(["run", str(preset), "--resume", str(grid)]) == 2
        line = _one_error(capsys)
        assert line.startswith(f"hbt: grid {grid} is being run by pid {first.pid} on {socket.gethostname()} (since ")
        assert line.endswith("): one runner at a time (wait for it, or stop it)")
        assert not cell.exists()  # the refused runner started nothing
    finally:
        first.kill()  # kill -9: its lock file still names it
        first.wait()
    assert str(first.pid) in (grid / "grid.lock").read_text()
    assert main(["run", str(preset), "--resume", str(grid)]) == 0
    printed = capsys.readouterr().out
    took = f"took over {grid}/grid.lock from pid {first.pid} on {socket.gethostname()} (since "
    assert took in printed and "which is no longer running" in printed
    starts = [e for e in _events(cell) if e["type"] == "run_started"]
    assert len(starts) == 1
    assert (grid / "grid.lock").read_text() == ""  # a runner that ends leaves no holder behind


def _events(cell: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (cell / "events.jsonl").read_text().splitlines() if line.strip()]


# ---- 4. NaN or infinity in a results.json ----------------------------------------------------------------------------


def test_non_finite_metrics_leave_the_cell_out_of_json_exports_instead_of_crashing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.test_report_fixtures import cell_dir, make_grid

    grid = make_grid(tmp_path / "g", seeds=(0, 1))
    path = cell_dir(grid, "xx", 1) / "results.json"
    doc = json.loads(path.read_text())
    doc["datasets"]["xquad-r"]["monolingual"]["per_language"]["de"]["map"] = float("nan")
    doc["datasets"]["xquad-r"]["cross_lingual"]["macro"]["map"] = float("inf")
    path.write_text(json.dumps(doc))  # Python writes NaN and Infinity, which json.loads reads back
    for command in ("export", "compare"):
        assert main([command, str(grid), "--format", "json"]) == 0, capsys.readouterr().err
        report = json.loads(capsys.readouterr().out, parse_constant=_no_constant)  # strict JSON
        if command == "export":  # the damaged cell is left out, with its reason
            notes = [n for t in report["tables"] for n in t["notes"]]
            assert any("org-tiny_enc__xx__s1" in n and "map is nan (not a finite number)" in n for n in notes), notes
    assert main(["export", str(grid), "--format", "md"]) == 0
    shown = capsys.readouterr().out
    assert "nan ±" not in shown and "inf ±" not in shown and "| nan" not in shown


def _no_constant(name: str) -> None:
    raise AssertionError(f"{name} in a JSON export")


# ---- 5. full and read-only disks: the error that ended the run, one line -------------------------------------------


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_disk_full_while_writing_results_names_that_file_not_the_events_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk fills as the results are written: events.jsonl (on /dev/full: every write is ENOSPC) fails when it is
    closed, run.json cannot be marked; before, the close's OSError was an internal error hiding both."""
    import hbt.engine.runs.run as run_module

    from tests.test_disk_faults import FullDiskFile

    write_release(tmp_path / "data")
    out = tmp_path / "run"
    out.mkdir()
    (out / "events.jsonl").symlink_to("/dev/full")
    real_fdopen, real_write = os.fdopen, run_module.write_json
    full = {"now": False}
    monkeypatch.setattr(os, "fdopen", lambda fd, *a, **k: (FullDiskFile if full["now"] else (lambda f: f))(
        real_fdopen(fd, *a, **k)))  # fmt: skip

    def write_json(path: Path, data: Any) -> None:
        full["now"] = full["now"] or Path(path).name == "per_query.json"
        real_write(path, data)

    monkeypatch.setattr(run_module, "write_json", write_json)
    assert _eval(tmp_path / "data", out, "miracl-judged", "--langs", "de") == 2
    full_line = f"hbt: out of disk space writing {out}/per_query.json — free space or choose another --out"
    assert _one_error(capsys) == full_line
    assert not (out / "results.json").exists()


def test_a_full_embedding_cache_is_dropped_with_one_warning_and_the_run_goes_on(
    tmp_path: Path, own_cache: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite's own 'database or disk is full' (a page limit stands in for the full disk): not an internal error,
    and not 'corrupt' (the file is not moved aside)."""
    import sqlite3

    from hbt.engine.encoding.encode import EmbeddingCache

    real_open = EmbeddingCache._open

    def capped(self: EmbeddingCache) -> sqlite3.Connection:
        db = real_open(self)
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        db.execute(f"PRAGMA max_page_count = {pages}")  # no room for one more page: SQLITE_FULL on the first insert
        return db

    monkeypatch.setattr(EmbeddingCache, "_open", capped)
    write_release(tmp_path / "data")
    assert _eval(tmp_path / "data", tmp_path / "run", "miracl-judged", "--langs", "en,de") == 0  # 32 texts: > a page
    printed = capsys.readouterr().out
    assert f"warning: embedding cache {own_cache}/embeddings.sqlite cannot be used (database or disk is full): " in (
        printed
    )
    assert printed.count("embedding cache") == 1
    assert (tmp_path / "run" / "results.json").exists()
    assert not list(own_cache.glob("embeddings.sqlite.corrupt-*"))


def test_a_cache_that_cannot_be_moved_aside_is_dropped_not_an_internal_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read-only cache folder: before, any sqlite error was 'corrupt' and moving the file aside raised EROFS."""
    import errno

    import hbt.engine.encoding.encode as encode
    import numpy as np

    path = tmp_path / "embeddings.sqlite"
    path.write_bytes(b"this is not a database" * 100)

    def read_only(*args: Any) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(encode.os, "replace", read_only)
    warnings: list[str] = []
    cache = encode.EmbeddingCache(path, warn=warnings.append)
    cache.put("m", "sentence", {"k": np.ones(3, np.float32)})
    assert cache.get("m", "sentence", ["k"]) == {}
    cache.close()
    assert warnings == [
        f"embedding cache {path} cannot be used (file is not a database; moving it aside failed: Read-only file "
        "system): encoding without it — free space, or set HBT_CACHE_DIR to a writable folder"
    ]


# ---- 6. a device this torch does not have ----------------------------------------------------------------------------


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a CPU-only torch")
@pytest.mark.parametrize("device", ["cuda", "cuda:1", "mps"])
def test_an_unavailable_device_is_one_line_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], device: str
) -> None:
    import torch

    if device == "mps" and torch.backends.mps.is_available():
        pytest.skip("this machine has an Apple GPU")
    write_release(tmp_path / "data")
    why = "no Apple GPU" if device == "mps" else "this torch has no CUDA"
    data = ["--data-dir", str(tmp_path / "data"), "--langs", "de"]
    assert main(["eval", "--eval-data", "miracl", *data, "--device", device, "--out", str(tmp_path / "e")]) == 2
    line = f"hbt: device {device!r} is not available ({why}, torch {torch.__version__}): use cpu or auto"
    assert _one_error(capsys) == line
    assert main(["encode-corpus", *data, "--device", device]) == 2
    assert _one_error(capsys).startswith(f"hbt: --device {device!r} is not available ({why}")
    assert main(["run", str(_one_cell_preset(tmp_path)), "--device", device, "--out", str(tmp_path / "g")]) == 2
    assert _one_error(capsys).startswith(f"hbt: --device: {device!r} is not available ({why}")
    assert not any((tmp_path / name).exists() for name in ("e", "g"))


# ---- 7. encode-corpus --eval-batch-size ------------------------------------------------------------------------------


@pytest.mark.parametrize("size", ["0", "-3"])
def test_encode_corpus_refuses_a_batch_size_below_one_with_or_without_a_manifest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], size: str
) -> None:
    write_release(tmp_path / "data")
    args = ["encode-corpus", "--backbone", "tiny-random", "--data-dir", str(tmp_path / "data"), "--langs", "de"]
    args += ["--device", "cpu"]
    assert main([*args, "--eval-batch-size", size]) == 2  # a fresh cache (before: ValueError, internal error)
    assert _one_error(capsys) == f"hbt: --eval-batch-size must be positive, got {size}"
    assert main(args) == 0  # the shards and their manifest
    capsys.readouterr()
    assert main([*args, "--eval-batch-size", size]) == 2  # before: accepted silently
    assert _one_error(capsys) == f"hbt: --eval-batch-size must be positive, got {size}"


# ---- 8. seeds, lr and ports out of range -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "run", "message"),
    [
        (["--seeds", "9" * 23], {}, f"--seeds: must be an integer in [0, 4294967295], got {'9' * 23}"),
        ([], {"lr": "inf"}, "{preset}: [run] lr: must be a finite number, got inf"),
        (["--launcher", "torchrun", "--master-port", "99999"], {}, "--master-port must be a TCP port in 1..65535, "
         "got 99999"),
    ],
    ids=["seed", "lr", "port"],
)  # fmt: skip
def test_out_of_range_settings_are_refused_before_the_grid_exists(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], run: dict[str, str], message: str
) -> None:
    preset = _one_cell_preset(tmp_path, **run)
    assert main(["run", str(preset), "--out", str(tmp_path / "g"), *flags]) == 2
    assert _one_error(capsys) == "hbt: " + message.replace("{preset}", str(preset))
    assert not (tmp_path / "g").exists()


def test_a_preset_seed_out_of_range_names_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    preset = _one_cell_preset(tmp_path)
    preset.write_text(preset.read_text().replace("baseline = true", "baseline = true\nseeds = [-1]"))
    assert main(["run", str(preset), "--out", str(tmp_path / "g")]) == 2
    assert _one_error(capsys) == f"hbt: {preset}: [preset] seeds: must be an integer in [0, 4294967295], got -1"
    assert main(["train", "--strategy", "xx", "--seed", "4294967296", "--out", str(tmp_path / "t")]) == 2
    assert _one_error(capsys) == "hbt: seed must be an integer in [0, 4294967295], got 4294967296"
    assert not (tmp_path / "g").exists() and not (tmp_path / "t").exists()


# ---- 10. names from files reach stdout escaped -----------------------------------------------------------------------

ESC_LANG = "e\x1b[31mn"  # a language code that would turn the terminal red
ESC_BACKBONE = "org/ti\x1b]0;pwned\x07ny"  # a backbone name that would retitle the terminal


def _hostile_grid(root: Path) -> Path:
    from tests.test_report_fixtures import write_run

    cells = []
    for strategy, seed in (("none", 0), ("xx", 0), ("xx", 1), ("xy", 0), ("xy", 1), ("hybrid", 0), ("hybrid", 1)):
        cid = f"c-{strategy}-{seed}"
        write_run(root / "cells" / cid, strategy, seed, backbone=ESC_BACKBONE, langs=("ar", "de", ESC_LANG))
        cells.append({"id": cid, "backbone": ESC_BACKBONE, "strategy": strategy, "seed": seed, "dir": f"cells/{cid}"})
    (root / "grid.json").write_text(json.dumps({"schema": "hbt.grid/1", "preset": "p", "created": 1.0, "cells": cells}))
    return root


def _raw_controls(text: str) -> bool:
    return any(c in text for c in "\x1b\x07\x9b")


def test_names_from_results_and_grid_files_reach_stdout_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    grid = _hostile_grid(tmp_path / "g")
    for command in ("export", "compare"):
        for fmt in ("md", "csv", "latex"):
            assert main([command, str(grid), "--format", fmt]) == 0
            out, err = capsys.readouterr()
            assert not _raw_controls(out) and not _raw_controls(err), (command, fmt)
            assert "\\x1b]0;pwned\\x07" in out or "\\textbackslash{}x1b]0;pwned" in out, (command, fmt)
            if command == "export":
                assert "\\x1b[31m" in out or "\\textbackslash{}x1b[31m" in out, fmt  # the language code too
    assert main(["plot", str(grid), "--out", str(tmp_path / "plots")]) == 0
    out, err = capsys.readouterr()
    assert not _raw_controls(out) and not _raw_controls(err)
    assert "Glyph 27" not in err  # the labels are drawn escaped: matplotlib has no glyph to miss


def test_the_results_path_line_is_escaped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_release(tmp_path / "data")
    out = tmp_path / "run\x1b[2Jx"  # a --out that would clear the screen
    assert _eval(tmp_path / "data", out, "miracl-judged", "--langs", "de") == 0
    printed = capsys.readouterr().out
    assert not _raw_controls(printed)
    assert f"results: {tmp_path}/run\\x1b[2Jx/results.json" in printed


def test_python_warnings_are_printed_escaped(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import warnings

    import hbt.engine.cli.main as cli_main

    def warn_and_list(args: Any, console: Any) -> int:
        warnings.warn("Glyph 27 (\x1b) missing from font(s) DejaVu Sans.", UserWarning, stacklevel=1)
        return 0

    monkeypatch.setitem(cli_main.COMMANDS, "reindex", warn_and_list)
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)  # restored after the test
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert main(["reindex", "nowhere"]) == 0
    err = capsys.readouterr().err
    assert "Glyph 27 (\\x1b) missing" in err and not _raw_controls(err)


# ---- 11. the cache's write errors say how to move the cache ---------------------------------------------------------


def test_encode_corpus_on_an_unwritable_or_full_cache_names_hbt_cache_dir(
    tmp_path: Path, own_cache: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_release(tmp_path / "data")
    args = ["encode-corpus", "--backbone", "tiny-random", "--data-dir", str(tmp_path / "data"), "--langs", "de"]
    args += ["--device", "cpu"]
    assert main(args) == 0  # the model is in the cache; now the corpus folder cannot be made
    shutil.rmtree(own_cache / "corpus")
    (own_cache / "corpus").write_text("a file where the shard folder goes", encoding="utf-8")
    assert main(args) == 2
    line = _one_error(capsys)
    assert line.startswith(f"hbt: cannot write {own_cache}/corpus/miracl/de/") and "--out" not in line
    assert line.endswith(": Not a directory — set HBT_CACHE_DIR to another folder") or line.endswith(
        ": File exists — set HBT_CACHE_DIR to another folder"
    ), line
    (own_cache / "corpus").unlink()

    from tests.test_disk_faults import FullDiskFile

    real = os.fdopen
    monkeypatch.setattr(os, "fdopen", lambda fd, *a, **k: FullDiskFile(real(fd, *a, **k)))  # every atomic write
    assert main(args) == 2
    line = _one_error(capsys)
    assert line.startswith(f"hbt: out of disk space writing {own_cache}/corpus/miracl/de/"), line
    assert line.endswith("/corpus.json — free space or set HBT_CACHE_DIR to another folder"), line


def test_a_model_cache_that_cannot_be_made_names_hbt_cache_dir(
    tmp_path: Path, own_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The first write under a fresh cache is the converted model: a read-only cache folder failed there with the
    reason alone (found by scripts/probe_defects.py, row 11); it says what to do, as the corpus folder's error does."""
    write_release(tmp_path / "data")
    own_cache.mkdir()
    (own_cache / "models").write_text("a file where the models folder goes", encoding="utf-8")
    args = ["encode-corpus", "--backbone", "tiny-random", "--data-dir", str(tmp_path / "data"), "--langs", "de"]
    assert main([*args, "--device", "cpu"]) == 2
    line = _one_error(capsys)
    assert line.startswith(f"hbt: cannot create the model cache {own_cache}/models"), line
    assert line.endswith(" — set HBT_CACHE_DIR to another folder"), line


# ---- 12. errors that named the wrong thing, or came after the grid was made ------------------------------------------


def test_a_string_batch_size_in_grid_json_is_one_line_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    preset, grid = _one_cell_preset(tmp_path), tmp_path / "g"
    assert main(["run", str(preset), "--out", str(grid)]) == 0
    doc = json.loads((grid / "grid.json").read_text())
    doc["run"]["batch_size"] = "16"
    (grid / "grid.json").write_text(json.dumps(doc))
    capsys.readouterr()
    assert main(["run", str(preset), "--resume", str(grid)]) == 2
    assert _one_error(capsys) == (
        f"hbt: {grid}/grid.json: [run] batch_size: expected integer, got string '16' (the grid folder's grid.json was "
        "edited or damaged)"
    )


def test_a_budget_beyond_the_training_data_is_refused_before_the_grid_exists(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: the grid and its baseline cell were made and run, then the xx cell refused naming --steps."""
    preset = tmp_path / "p.toml"
    preset.write_text(
        '[preset]\nname = "p"\nbackbones = ["tiny-random"]\nstrategies = ["xx"]\nbaseline = true\n'
        '[run]\ntrain_data = "mlqa-r"\neval_data = ["xquad-r"]\nlangs = ["de", "en"]\ntrain_langs = ["de", "en"]\n'
        "max_train_pairs = 40\nmax_queries = 4\nsteps = 3\nbatch_size = 1000000000\n",
        encoding="utf-8",
    )
    assert main(["run", str(preset), "--data-dir", str(data_dir), "--out", str(tmp_path / "g")]) == 2
    line = _one_error(capsys)
    assert line.startswith("hbt: steps 3 x batch_size 1000000000 is ") and "--steps" not in line, line
    assert line.endswith("training pairs (at most 100): lower steps or batch_size, or use more training data"), line
    assert not (tmp_path / "g").exists()
