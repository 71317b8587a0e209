"""Our metrics equal pytrec_eval's (trec_eval) on the same runs."""

from __future__ import annotations

import numpy as np
import pytest
import pytrec_eval
from hbt.engine.evaluation import metrics
from hbt.engine.retrieval.search import relevant_ranks, top_k


def _random_run(seed: int, n_q: int = 40, n_c: int = 300, dim: int = 16):
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((n_q, dim)).astype(np.float32)
    c = rng.standard_normal((n_c, dim)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    rel = [rng.choice(n_c, size=rng.integers(1, 12), replace=False) for _ in range(n_q)]
    return q, c, rel


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_equal_pytrec_eval(seed: int) -> None:
    q, c, rel = _random_run(seed)
    scores = q @ c.T
    qrels = {f"q{i}": {f"d{j}": 1 for j in r} for i, r in enumerate(rel)}
    full_run = {f"q{i}": {f"d{j}": float(s) for j, s in enumerate(row)} for i, row in enumerate(scores)}
    measures = {"map", "recip_rank", "ndcg_cut_10", "recall_1", "recall_5", "recall_10", "recall_100"}
    ref = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(full_run)
    # MRR@10 in trec_eval terms: recip_rank over the run cut at depth 10
    cut_run = {qid: dict(sorted(docs.items(), key=lambda kv: -kv[1])[:10]) for qid, docs in full_run.items()}
    ref_rr10 = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(cut_run)

    ranks = relevant_ranks(q, c, [np.asarray(r) for r in rel])
    for i, r in enumerate(ranks):
        ours = metrics.query_metrics(r)
        theirs = ref[f"q{i}"]
        assert ours["map"] == pytest.approx(theirs["map"], abs=1e-6)
        assert ours["ndcg@10"] == pytest.approx(theirs["ndcg_cut_10"], abs=1e-6)
        for k in (1, 5, 10, 100):
            assert ours[f"recall@{k}"] == pytest.approx(theirs[f"recall_{k}"], abs=1e-6)
        assert ours["mrr@10"] == pytest.approx(ref_rr10[f"q{i}"]["recip_rank"], abs=1e-6)
    mean_map = np.mean([metrics.query_metrics(r)["map"] for r in ranks])
    assert mean_map == pytest.approx(np.mean([v["map"] for v in ref.values()]), abs=1e-6)


def test_ranks_are_exact_against_a_full_sort() -> None:
    q, c, rel = _random_run(7, n_q=10, n_c=50)
    ranks = relevant_ranks(q, c, [np.asarray(r) for r in rel], chunk=3)
    for i in range(len(q)):
        order = np.argsort(-(q[i] @ c.T))
        expected = [int(np.where(order == j)[0][0]) + 1 for j in rel[i]]
        assert list(ranks[i]) == expected


def test_faiss_top_k_matches_numpy() -> None:
    q, c, _ = _random_run(3, n_q=20, n_c=100)
    scores, ids = top_k(q, c, 5, chunk=7)
    ref = np.argsort(-(q @ c.T), axis=1)[:, :5]
    assert (ids == ref).all()
    assert np.allclose(scores, np.take_along_axis(q @ c.T, ref, axis=1), atol=1e-5)


def test_hand_computed_average_precision() -> None:
    # relevant at ranks 1, 3, 6 -> (1/1 + 2/3 + 3/6) / 3
    assert metrics.average_precision(np.array([6, 1, 3])) == pytest.approx((1 + 2 / 3 + 0.5) / 3)
    m = metrics.query_metrics(np.array([12]))
    assert m["mrr@10"] == 0.0 and m["recall@100"] == 1.0 and m["ndcg@10"] == 0.0
