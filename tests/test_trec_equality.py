"""Every number evaluate_benchmark reports equals pytrec_eval's on the same scores, ties and duplicate texts included.

The full-size check (full XQuAD-R and MLQA-R, bundled model) is benchmarks/bench_trec_equality.py; here: a hand-worked
duplicate case and real subsets holding every duplicate answer of MLQA-R and XQuAD-R's tr "I." duplicate.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import pytrec_eval
from hbt.engine.data.benchmark import Benchmark, Candidate, Query
from hbt.engine.data.registry import load_benchmark
from hbt.engine.encoding.encode import encode_unique
from hbt.engine.evaluation.evaluate import evaluate_benchmark
from hbt.engine.evaluation.metrics import query_metrics
from hbt.engine.evaluation.trec_reference import compare, reference
from hbt.engine.retrieval.search import relevant_ranks, top_k, trec_order


def test_pytrec_eval_breaks_ties_by_docno_descending() -> None:
    """The rule hbt copies, checked on pytrec_eval itself: equal scores rank by docno descending (byte order)."""
    qrels = {"q": {"b": 1}}
    run = {"q": dict.fromkeys(["a", "b", "c", "B", "aa"], 1.0)}
    got = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(run)["q"]["recip_rank"]
    # descending: c, b, aa, a, B -> b second
    assert got == 0.5
    assert [["a", "b", "c", "B", "aa"][i] for i in trec_order(["a", "b", "c", "B", "aa"])] == ["c", "b", "aa", "a", "B"]


def test_two_relevant_copies_take_two_ranks() -> None:
    """A pool where a query's two relevant items are copies of one text: AP 1.0, never 1.5."""
    pool = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], np.float32)
    q = np.array([[1.0, 0.0]], np.float32)
    ranks = relevant_ranks(q, pool, [np.array([0, 1])])[0]
    assert sorted(ranks) == [1, 2]
    m = query_metrics(ranks)
    assert m["map"] == 1.0 and m["ndcg@10"] == pytest.approx(1.0) and m["recall@1"] == 0.5
    # copy tied with a non-relevant one: the non-relevant row 0 comes first
    ranks = relevant_ranks(q, pool, [np.array([1])])[0]
    assert list(ranks) == [2] and query_metrics(ranks)["map"] == 0.5
    assert list(top_k(q, pool, 3)[1][0]) == [0, 1, 2]


def test_duplicate_candidates_evaluate_like_pytrec_eval(counting_encoder) -> None:
    """Candidates are laid out in trec_eval's order whatever their input order; copies share one encoding."""
    cands = [
        Candidate("en:1:0:0", "en", "the answer"),
        Candidate("de:1:0:0", "de", "the answer"),  # same text in another language: same vector
        Candidate("de:2:0:0", "de", "other words"),
        Candidate("en:2:0:0", "en", "the answer"),  # a non-relevant copy
    ]
    queries = [Query("en:q", "en", "the answer", "q"), Query("de:q", "de", "the answer", "q")]
    qrels = {"en:q": {"en:1:0:0", "de:1:0:0"}, "de:q": {"en:1:0:0", "de:1:0:0"}}
    bench = Benchmark("dup", queries, cands, qrels)
    result = evaluate_benchmark(bench, counting_encoder)
    for m in result.summary.multi.per_language.values():
        assert m["map"] <= 1.0
    # docno descending: en:2:0:0, en:1:0:0, de:2:0:0, de:1:0:0 -> the relevant copies at ranks 2 and 3 or 4
    q_emb, _ = encode_unique(counting_encoder, [q.text for q in queries], "query")
    c_emb, _ = encode_unique(counting_encoder, [c.sentence for c in cands], "passage")
    worst = compare(result.summary, result.per_query_ap, reference(bench, q_emb, c_emb))
    assert max(worst.values()) < 1e-6, worst


def _subset_with_duplicates(name: str, data_dir: Path, n_groups: int, n_other: int) -> tuple[Benchmark, set[str]]:
    """Every question group with a duplicate relevant text (or a relevant text duplicated in the pool), plus
    n_groups random groups; candidates: the paragraphs of their answers, their duplicates, n_other random ones."""
    full = load_benchmark(name, data_dir)
    cand = {c.id: c for c in full.candidates}
    by_text: dict[str, list[str]] = {}
    for c in full.candidates:
        by_text.setdefault(c.sentence, []).append(c.id)
    special = {q.group for q in full.queries if any(len(by_text[cand[c].sentence]) > 1 for c in full.qrels[q.id])}
    rng = random.Random(0)
    groups = special | set(rng.sample(sorted({q.group for q in full.queries} - special), n_groups))
    queries = [q for q in full.queries if q.group in groups]
    rel = {c for q in queries for c in full.qrels[q.id]}
    paragraphs = {c.rsplit(":", 1)[0] for c in rel}
    keep = {c.id for c in full.candidates if c.id.rsplit(":", 1)[0] in paragraphs}
    keep |= {d for c in rel for d in by_text[cand[c].sentence]}
    keep |= set(rng.sample(sorted(cand), n_other))
    candidates = [c for c in full.candidates if c.id in keep]
    return Benchmark(name, queries, candidates, {q.id: full.qrels[q.id] & keep for q in queries}), special


@pytest.mark.parametrize(("name", "n_special"), [("mlqa-r", 5), ("xquad-r", 1)])
def test_real_subset_with_duplicate_answers_equals_pytrec_eval(
    name: str, n_special: int, data_dir: Path, counting_encoder
) -> None:
    bench, special = _subset_with_duplicates(name, data_dir, n_groups=12, n_other=400)
    assert len(special) == n_special  # MLQA-R: 5 groups (20 queries) with identical relevant texts; XQuAD-R: tr "I."
    result = evaluate_benchmark(bench, counting_encoder)
    q_emb, _ = encode_unique(counting_encoder, [q.text for q in bench.queries], "query")
    c_emb, _ = encode_unique(counting_encoder, [c.sentence for c in bench.candidates], "passage")
    worst = compare(result.summary, result.per_query_ap, reference(bench, q_emb, c_emb))
    assert max(worst.values()) < 1e-6, worst
    assert all(m["map"] <= 1.0 for m in result.summary.multi.per_language.values())
