"""IR metrics from the exact ranks of each query's relevant items (binary relevance).

Conventions follow trec_eval (pytrec_eval is the reference in the tests): AP over the full ranking,
MRR cut at 10, recall@k = relevant in top k / all relevant, nDCG@10 with gain 1 and log2(rank + 1) discount.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from .results import METRICS, N_QUERIES

METRIC_HELP = {
    "map": "mean average precision over the whole pool (LAReQA's headline metric)",
    "mrr@10": "mean reciprocal rank of the first relevant item, 0 beyond rank 10",
    "ndcg@10": "normalised discounted cumulative gain at 10, binary gains",
    "recall@1": "share of the relevant items found in the top 1",
    "recall@5": "share of the relevant items found in the top 5",
    "recall@10": "share of the relevant items found in the top 10",
    "recall@100": "share of the relevant items found in the top 100",
}


def average_precision(ranks: np.ndarray, n_relevant: int | None = None) -> float:
    """AP from the 1-based ranks of the relevant items found (any order), over n_relevant relevant items (default:
    as many as ranks; more when some are never ranked, as trec_eval counts the qrels' relevant documents)."""
    n_rel = len(ranks) if n_relevant is None else n_relevant
    if n_rel == 0 or len(ranks) == 0:
        return 0.0
    ordered = np.sort(ranks)
    return float(np.sum(np.arange(1, len(ordered) + 1) / ordered) / n_rel)


def query_metrics(ranks: np.ndarray, n_relevant: int | None = None) -> dict[str, float]:
    """All metrics of one query from the 1-based ranks of its relevant items (any order). n_relevant: the number of
    relevant items (default len(ranks)); relevant items without a rank (not in the pool) count in the denominators
    of AP, recall and the ideal DCG, as in trec_eval. No relevant item: every metric 0 (trec_eval's score of a
    judged topic without a relevant document)."""
    ranks = np.sort(ranks)
    n_rel = len(ranks) if n_relevant is None else n_relevant
    if n_rel < len(ranks):
        raise ValueError(f"{len(ranks)} ranks for {n_rel} relevant items")
    if n_rel == 0 or len(ranks) == 0:
        return dict.fromkeys(METRICS, 0.0)
    first = int(ranks[0])
    in10 = ranks[ranks <= 10]
    dcg = float(np.sum(1.0 / np.log2(in10 + 1)))
    idcg = float(np.sum(1.0 / np.log2(np.arange(1, min(n_rel, 10) + 1) + 1)))
    return {
        "map": average_precision(ranks, n_rel),
        "mrr@10": 1.0 / first if first <= 10 else 0.0,
        "ndcg@10": dcg / idcg,
        "recall@1": float(np.sum(ranks <= 1)) / n_rel,
        "recall@5": float(np.sum(ranks <= 5)) / n_rel,
        "recall@10": float(np.sum(ranks <= 10)) / n_rel,
        "recall@100": float(np.sum(ranks <= 100)) / n_rel,
    }


def mean_metrics(per_query: Iterable[dict[str, float]]) -> dict[str, float]:
    rows = list(per_query)
    out = {m: float(np.mean([r[m] for r in rows])) if rows else 0.0 for m in METRICS}
    out[N_QUERIES] = len(rows)
    return out


def macro(groups: Iterable[dict[str, float]]) -> dict[str, float]:
    """Unweighted mean over languages (or language pairs) of their mean metrics."""
    rows = [g for g in groups if g.get(N_QUERIES, 0) > 0]
    out = {m: float(np.mean([r[m] for r in rows])) if rows else 0.0 for m in METRICS}
    out[N_QUERIES] = int(sum(r[N_QUERIES] for r in rows))
    return out
