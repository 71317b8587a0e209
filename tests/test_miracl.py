"""MIRACL as published: release files read as shipped, the full-corpus pool vs the judged pool, nDCG@10 / Recall@100."""

from __future__ import annotations

import gzip
import json
import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import pytrec_eval
from hbt.engine.cli.main import main
from hbt.engine.common.errors import ConfigError, DataError
from hbt.engine.data import miracl
from hbt.engine.data.registry import load_eval
from hbt.engine.encoding.corpus_shards import CorpusOptions
from hbt.engine.evaluation import corpus_eval
from hbt.engine.evaluation.corpus_eval import evaluate_corpus
from hbt.engine.evaluation.evaluate import evaluate_benchmark
from hbt.engine.evaluation.results import METRICS, RESULTS_SCHEMA

from tests.miracl_release import CORPUS, QRELS, TOPICS, write_gz_jsonl, write_release


def test_release_files_load_as_shipped(tmp_path: Path) -> None:
    root = write_release(tmp_path)
    part = miracl.locate(root, "en")
    assert part.layout == "release"
    assert [p.name for p in part.corpus.files] == ["docs-0.jsonl.gz", "docs-1.jsonl.gz"]
    assert part.topics == dict(TOPICS["en"])
    assert part.qrels["3"] == {"39#1": 1, "39#0": 1, "290#0": 0}  # TREC qrels, tab-separated, 0 = judged irrelevant
    docs = list(part.corpus.docs())
    assert [d[0] for d in docs] == [d for f in CORPUS["en"] for d, _, _ in f]  # both gzipped shards, in order
    assert part.corpus.count() == 17
    task = load_eval("miracl", tmp_path, ["en", "de"])
    assert isinstance(task, miracl.CorpusTask) and task.pool == "full corpus"
    assert {c.lang: sorted(c.relevant) for c in task.languages} == {"en": ["0", "1", "2", "3"], "de": ["0", "1", "2"]}
    judged = load_eval("miracl-judged", tmp_path, ["en"])
    assert not isinstance(judged, miracl.CorpusTask)
    assert sorted(c.id for c in judged.candidates) == sorted(f"en:{d}" for _, d, _ in QRELS["en"])


def test_shards_in_numeric_order_and_errors_name_file_and_line(tmp_path: Path) -> None:
    folder = tmp_path / "miracl-corpus" / "miracl-corpus-v1.0-sw"
    for i in (0, 2, 10):
        write_gz_jsonl(folder / f"docs-{i}.jsonl.gz", [(f"{i}#0", "t", f"text {i}")])
    assert [p.name for p in miracl.corpus_files(tmp_path / "miracl", "sw")] == [
        "docs-0.jsonl.gz", "docs-2.jsonl.gz", "docs-10.jsonl.gz"
    ]  # fmt: skip
    bad = folder / "docs-2.jsonl.gz"
    bad.write_bytes(gzip.compress(b'{"docid": "2#0", "text": "ok"}\n{"docid": "2#1"}\n'))
    corpus = miracl.Corpus("sw", miracl.corpus_files(tmp_path / "miracl", "sw"))
    with pytest.raises(DataError, match=rf"^{bad}:2: missing field 'text'$"):
        list(corpus.docs())
    bad.write_bytes(gzip.compress(b'{"docid": "2#0", "text": "ok"}\n' * 50)[:-30])  # truncated download
    with pytest.raises(DataError, match=rf"^{bad}:\d+: corrupt or truncated gzip data"):
        list(corpus.docs())


def test_missing_language_names_both_layouts(tmp_path: Path) -> None:
    root = write_release(tmp_path)
    with pytest.raises(
        DataError, match=re.escape("miracl-v1.0-fi/topics/topics.miracl-v1.0-fi-dev.tsv or fi/topics.tsv")
    ):
        miracl.locate(root, "fi")


# ---- the hand-checked case: the same query, judged pool vs full corpus -----------------------------------------

SCORES = {"rel-a": 0.6, "judged-neg": 0.9, "other-1": 0.8, "other-2": 0.7, "rel-b": 0.5, "other-3": 0.1}


class FixedEncoder:
    """The query is e1; passage `name` is the unit vector (s, sqrt(1 - s^2), 0), so its score is exactly s."""

    fingerprint = "fixed"

    def encode(self, texts: Sequence[str], role: str) -> np.ndarray:
        out = []
        for t in texts:
            s = 1.0 if role == "query" else SCORES[t.removeprefix("t ")]  # MIRACL encodes "<title> <text>"
            out.append([s, math.sqrt(1 - s * s), 0.0])
        return np.array(out, dtype=np.float32).reshape(len(texts), 3)


def _hand_case(tmp_path: Path) -> Path:
    docs = [(f"{i}#0", "t", name) for i, name in enumerate(SCORES)]  # 0#0 rel-a ... 5#0 other-3
    corpus = {"en": [docs[:4], docs[4:]]}
    qrels = {"en": [("q1", "0#0", 1), ("q1", "1#0", 0), ("q1", "4#0", 1)]}
    write_release(tmp_path, corpus, {"en": [("q1", "query")]}, qrels)
    return tmp_path


def test_full_corpus_and_judged_pool_differ_as_hand_computed(tmp_path: Path) -> None:
    """Judged pool {rel-a .6, judged-neg .9, rel-b .5}: relevant at ranks 2, 3.
    Full corpus adds other-1 .8, other-2 .7, other-3 .1: relevant at ranks 4, 5.
    IDCG = 1 + 1/log2(3); nDCG@10 judged = (1/log2(3) + 1/log2(4)) / IDCG = 0.693426,
    full = (1/log2(5) + 1/log2(6)) / IDCG = 0.501266; Recall@100 = 1 in both."""
    data = _hand_case(tmp_path)
    idcg = 1 + 1 / math.log2(3)
    judged_ndcg = (1 / math.log2(3) + 1 / math.log2(4)) / idcg
    full_ndcg = (1 / math.log2(5) + 1 / math.log2(6)) / idcg
    assert round(judged_ndcg, 6) == 0.693426 and round(full_ndcg, 6) == 0.501266

    task = load_eval("miracl", data, ["en"])
    assert isinstance(task, miracl.CorpusTask)
    full = evaluate_corpus(
        task, FixedEncoder(), CorpusOptions(shard_size=2, shard_dir=tmp_path / "shards")
    ).summary.to_json()
    judged_bench = load_eval("miracl-judged", data, ["en"])
    assert not isinstance(judged_bench, miracl.CorpusTask)
    judged = evaluate_benchmark(judged_bench, FixedEncoder()).summary.to_json()
    f, j = full["monolingual"]["per_language"]["en"], judged["monolingual"]["per_language"]["en"]
    assert f["ndcg@10"] == pytest.approx(full_ndcg, abs=1e-6)
    assert j["ndcg@10"] == pytest.approx(judged_ndcg, abs=1e-6)
    assert f["recall@100"] == j["recall@100"] == 1.0
    assert f["map"] == pytest.approx((1 / 4 + 2 / 5) / 2, abs=1e-6) and j["map"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    # the reference: trec_eval (pytrec_eval) on the full ranking
    run = {"q1": {f"{i}#0": s for i, s in enumerate(SCORES.values())}}
    ref = pytrec_eval.RelevanceEvaluator({"q1": {"0#0": 1, "1#0": 0, "4#0": 1}}, {"ndcg_cut.10", "recall.100", "map"})
    expected = ref.evaluate(run)["q1"]
    assert f["ndcg@10"] == pytest.approx(expected["ndcg_cut_10"], abs=1e-6)
    assert f["map"] == pytest.approx(expected["map"], abs=1e-6)
    assert full["pool"] == "full corpus" and full["n_candidates"] == 6 and full["corpus"]["en"]["passages"] == 6


def test_corpus_path_equals_in_memory_full_pool(tmp_path: Path, counting_encoder: object) -> None:
    """Streamed + sharded (the `miracl` path) gives the same metrics as the whole corpus held in memory."""
    write_release(tmp_path)
    task = load_eval("miracl", tmp_path, ["en", "de"])
    assert isinstance(task, miracl.CorpusTask)
    sharded = evaluate_corpus(
        task, counting_encoder, CorpusOptions(shard_size=3, shard_dir=tmp_path / "s")
    ).summary.to_json()  # type: ignore[arg-type]
    memory = evaluate_benchmark(miracl.load_dir(tmp_path / "miracl", ["en", "de"]), counting_encoder).summary.to_json()  # type: ignore[arg-type]
    for lang in ("en", "de"):
        a, b = sharded["monolingual"]["per_language"][lang], memory["monolingual"]["per_language"][lang]
        assert a == pytest.approx(b), lang
    langs = sharded["monolingual"]["per_language"].values()
    assert sharded["monolingual"]["median"]["ndcg@10"] == pytest.approx(float(np.median([m["ndcg@10"] for m in langs])))
    assert sharded["monolingual"]["macro"]["ndcg@10"] == pytest.approx(float(np.mean([m["ndcg@10"] for m in langs])))


def test_size_gate_needs_yes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, counting_encoder: object) -> None:
    write_release(tmp_path)
    task = load_eval("miracl", tmp_path, ["de"])
    assert isinstance(task, miracl.CorpusTask)
    monkeypatch.setattr(corpus_eval, "LARGE_S", 0.0)
    with pytest.raises(ConfigError, match=r"miracl/de: 8 passages \(8 to encode\), about .* pass --yes"):
        evaluate_corpus(task, counting_encoder, CorpusOptions(shard_dir=tmp_path / "s"))  # type: ignore[arg-type]
    assert not list((tmp_path / "s").rglob("shard-*.npy"))  # nothing encoded
    out = evaluate_corpus(task, counting_encoder, CorpusOptions(shard_dir=tmp_path / "s", allow_large=True))  # type: ignore[arg-type]
    assert out.summary.corpus is not None and out.summary.corpus["de"]["passages"] == 8


def test_cli_eval_both_pools(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HBT_CACHE_DIR", str(tmp_path / "cache"))
    write_release(tmp_path / "data")
    out = tmp_path / "run"
    args = ["eval", "--backbone", "tiny-random", "--data-dir", str(tmp_path / "data"), "--langs", "en,de"]
    args += ["--eval-data", "miracl,miracl-judged", "--out", str(out), "--device", "cpu"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "miracl (full corpus)" in printed and "miracl-judged (judged passages only)" in printed
    assert "nDCG@10" in printed and "Recall@100" in printed and "median" in printed
    results = json.loads((out / "results.json").read_text())
    full, judged = results["datasets"]["miracl"], results["datasets"]["miracl-judged"]
    assert full["pool"] == "full corpus" and judged["pool"] == "judged passages only"
    assert full["n_candidates"] == 25 and judged["n_candidates"] == 16
    assert set(full["monolingual"]) == {"per_language", "macro", "median"}


def test_encode_corpus_by_rank_then_eval_only_searches(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two launched ranks each encode their slice (2 of the 4 shards of 8 passages, 2 per shard); eval re-uses them."""
    monkeypatch.setenv("HBT_CACHE_DIR", str(tmp_path / "cache"))
    write_release(tmp_path / "data")
    common = ["--backbone", "tiny-random", "--data-dir", str(tmp_path / "data"), "--langs", "de", "--device", "cpu"]
    for rank in ("1", "0"):  # rank 0 waits for rank 1's shards, so rank 1 goes first here
        monkeypatch.setenv("RANK", rank)
        monkeypatch.setenv("WORLD_SIZE", "2")
        assert main(["encode-corpus", *common, "--shard-size", "2"]) == 0
    printed = capsys.readouterr().out
    assert "rank 1/2: miracl/de: 4 passages encoded here; slice on disk" in printed  # shards 1, 3: rows 2-3, 6-7
    assert "rank 0/2: miracl/de: 4 passages encoded here; 8 passages in" in printed  # shards 0, 2: rows 0-1, 4-5
    monkeypatch.delenv("RANK")
    monkeypatch.delenv("WORLD_SIZE")
    out = tmp_path / "run"
    assert main(["eval", *common, "--eval-data", "miracl", "--shard-size", "2", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())["datasets"]["miracl"]
    assert results["encoded"]["candidates"] == 0 and results["corpus"]["de"]["passages"] == 8


def test_report_tables_name_the_pool_and_show_ndcg_recall(tmp_path: Path) -> None:
    """`hbt-bench show/export` of a MIRACL run: every title names the pool; nDCG@10 / Recall@100 / mAP per language
    with mean and median rows (from a results.json written by the real CLI path in test_cli_eval_both_pools' form)."""
    from hbt.engine.report.tables import build_tables

    per = {"de": {"ndcg@10": 0.8, "recall@100": 1.0, "map": 0.7}, "en": {"ndcg@10": 0.4, "recall@100": 0.5, "map": 0.3}}
    per = {k: {**dict.fromkeys(METRICS, 0.0), **v, "n_queries": 2} for k, v in per.items()}
    task = miracl.CorpusTask("miracl", miracl.FULL_POOL, [])
    summary = corpus_eval.corpus_summary(task, per, {}, 100, 10, "float32").to_json()
    summary |= {"encoded": {"queries": 4, "candidates": 100}, "timings": {"encode_s": 1.0, "search_s": 1.0}}
    run = tmp_path / "run"
    run.mkdir()
    doc = {"schema": RESULTS_SCHEMA, "run_id": "run", "datasets": {"miracl": summary}, "training": None}
    doc["config"] = {"backbone": "b", "strategy": "none", "seed": 0}
    (run / "results.json").write_text(json.dumps(doc))
    (run / "config.json").write_text(json.dumps(doc["config"]))
    (run / "run.json").write_text(json.dumps({"status": "complete"}))
    tables = {t.key: t for t in build_tables(run)}
    assert all("(full corpus)" in t.title for t in tables.values()), [t.title for t in tables.values()]
    ndcg = tables["corpus_ndcg@10"]
    assert [r[0] for r in ndcg.rows] == ["de", "en", "mean", "median"]
    assert ndcg.cell("mean", "none").mean == pytest.approx(0.6)  # type: ignore[union-attr]
    assert ndcg.cell("median", "none").mean == pytest.approx(0.6)  # type: ignore[union-attr]
    assert "bias" not in tables and tables["corpus_recall@100"].cell("en", "none").mean == 0.5  # type: ignore[union-attr]


# ---- trec_eval's conventions (issue 22) --------------------------------------------------------------------------
ZERO_TOPIC = ("4", "Which Catalan films were made in 1997?")  # judged, but only as not relevant
ZERO_QRELS = [("4", "330#0", 0), ("4", "12#0", 0)]


def _with_zero_topic(tmp_path: Path) -> Path:
    topics = {lang: list(t) for lang, t in TOPICS.items()}
    qrels = {lang: list(q) for lang, q in QRELS.items()}
    topics["en"].append(ZERO_TOPIC)
    qrels["en"] += ZERO_QRELS
    write_release(tmp_path, topics=topics, qrels=qrels)
    return tmp_path


def _pytrec(encoder: object, lang: str, pool: set[str] | None, drop_empty: bool) -> dict[str, dict[str, float]]:
    """pytrec_eval (trec_eval) on the full ranking of the fixture corpus (or the judged passages), with the qrels
    as shipped: {metric: value} per query, in hbt's metric names."""
    from hbt.engine.data.benchmark import passage_text
    from hbt.engine.evaluation.trec_reference import TREC_MEASURES, _from_trec

    topics = dict(TOPICS[lang] + ([ZERO_TOPIC] if lang == "en" else []))
    qrels: dict[str, dict[str, int]] = {}
    for q, d, r in QRELS[lang] + (ZERO_QRELS if lang == "en" else []):
        qrels.setdefault(q, {})[d] = r
    if drop_empty:
        qrels = {q: j for q, j in qrels.items() if any(r > 0 for r in j.values())}
    docs = [(d, passage_text(t, x, "title+text")) for files in CORPUS[lang] for d, t, x in files]
    docs = [(d, x) for d, x in docs if pool is None or d in pool]
    q_emb = encoder.encode([topics[q] for q in qrels], "query")  # type: ignore[attr-defined]
    d_emb = encoder.encode([x for _, x in docs], "passage")  # type: ignore[attr-defined]
    scores = q_emb @ d_emb.T
    run = {q: {d: float(s) for (d, _), s in zip(docs, row, strict=True)} for q, row in zip(qrels, scores, strict=True)}
    found = pytrec_eval.RelevanceEvaluator(qrels, TREC_MEASURES).evaluate(run)
    return {q: _from_trec(m) for q, m in found.items()}


@pytest.mark.parametrize("empty_topics", ["keep", "drop"])
@pytest.mark.parametrize("dataset", ["miracl", "miracl-judged"])
def test_an_all_zero_topic_is_scored_as_pytrec_eval_scores_it(
    tmp_path: Path, counting_encoder: object, dataset: str, empty_topics: str
) -> None:
    """trec_eval keeps a judged topic without a relevant passage and scores it 0 (nDCG, recall, AP, RR): hbt's
    default (keep) equals pytrec_eval to 1e-6 in every metric, per query and in the means; drop equals pytrec_eval
    on the qrels without that topic (the other convention)."""
    from hbt.engine.evaluation.results import METRICS

    data = _with_zero_topic(tmp_path)
    bench = load_eval(dataset, data, ["en", "de"], empty_topics=empty_topics)
    result = evaluate_benchmark(bench, counting_encoder, shard_size=4, shard_dir=tmp_path / "s")  # type: ignore[arg-type]
    summary = result.summary
    for lang in ("en", "de"):
        judged = {d for q, d, _ in QRELS[lang] + (ZERO_QRELS if lang == "en" else [])}
        ref = _pytrec(counting_encoder, lang, judged if dataset == "miracl-judged" else None, empty_topics == "drop")
        ours = summary.mono.per_language[lang]
        assert ours["n_queries"] == len(ref)
        for metric in METRICS:
            assert ours[metric] == pytest.approx(np.mean([m[metric] for m in ref.values()]), abs=1e-6), metric
        ap = result.per_query_ap["mono/" + lang]
        assert set(ap) == {f"{lang}:{q}" for q in ref}
        assert all(ap[f"{lang}:{q}"] == pytest.approx(m["map"], abs=1e-6) for q, m in ref.items())
    assert ("en:4" in result.per_query_ap["mono/en"]) == (empty_topics == "keep")
    assert summary.to_json()["empty_topics"] == empty_topics


def test_passages_are_encoded_title_then_text_by_default(tmp_path: Path, counting_encoder: object) -> None:
    write_release(tmp_path)
    task = load_eval("miracl", tmp_path, ["de"])
    summary = evaluate_benchmark(task, counting_encoder, shard_dir=tmp_path / "s").summary  # type: ignore[arg-type]
    encoded = {t for role, t in counting_encoder.calls if role == "passage"}  # type: ignore[attr-defined]
    assert "Actinium Actinium wurde 1899 von André-Louis Debierne in Pechblende entdeckt." in encoded
    assert summary.to_json()["text_mode"] == "title+text"
    counting_encoder.calls.clear()  # type: ignore[attr-defined]
    evaluate_benchmark(task, counting_encoder, text_mode="sentence", shard_dir=tmp_path / "t")  # type: ignore[arg-type]
    encoded = {t for role, t in counting_encoder.calls if role == "passage"}  # type: ignore[attr-defined]
    assert "Actinium wurde 1899 von André-Louis Debierne in Pechblende entdeckt." in encoded
