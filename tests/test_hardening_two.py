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
        assert not (tmp_path / dataset / "results.json").exists()


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


def test_full_corpus_results_count_queries_and_relevant_passages(tmp_path: Path) -> None:
    write_release(tmp_path / "data")
    assert _eval(tmp_path / "data", tmp_path / "run", "miracl", "--langs", "en,de") == 0
    corpus = json.loads((tmp_path / "run" / "results.json").read_text())["datasets"]["miracl"]["corpus"]
    expected = {lang: (len(TOPICS[lang]), sum(1 for _, _, r in QRELS[lang] if r > 0)) for lang in ("en", "de")}
    assert {k: (v["queries"], v["relevant_passages"]) for k, v in corpus.items()} == expected
    assert corpus["en"]["passages"] == 17
    events = (tmp_path / "run" / "events.jsonl").read_text()
    assert "miracl/en: 4 queries, their 5 relevant passages all found among 17 passages" in events


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
