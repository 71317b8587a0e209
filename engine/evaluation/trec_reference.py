"""An independent recomputation of evaluate_benchmark's numbers with pytrec_eval (trec_eval), on the same scores.

pytrec_eval receives each query's run as {docno: score} with docno = the candidate id and ranks it itself (score
descending, then docno descending: trec_eval's rule); hbt's ranks, metrics and rank distance must equal what
follows from that ranking. Needs the dev extra (pytrec-eval-terrier). Used by tests/test_trec_equality.py and
benchmarks/bench_trec_equality.py.

A run holds every candidate scoring at least as high as the query's lowest-scoring relevant candidate: the rest
rank below every relevant item under any tie rule, so no metric depends on them (trec_eval's AP, nDCG and recall
use the number of relevant items from the qrels). That keeps the full-size check to a few million run entries.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from ..data.benchmark import Benchmark
from ..retrieval.search import Quantised, scores
from . import metrics
from .results import METRICS, N_QUERIES, OWN_SHARE, RANK_DISTANCE, DatasetSummary, query_key

TREC_MEASURES = {"map", "recip_rank", "ndcg_cut_10", "recall_1", "recall_5", "recall_10", "recall_100"}


def _from_trec(m: dict[str, float]) -> dict[str, float]:
    rr = m["recip_rank"]
    return {
        "map": m["map"],
        "mrr@10": rr if rr >= 0.1 else 0.0,  # first relevant at rank <= 10
        "ndcg@10": m["ndcg_cut_10"],
        **{f"recall@{k}": m[f"recall_{k}"] for k in (1, 5, 10, 100)},
    }


@dataclass
class Reference:
    """pytrec_eval's numbers in hbt's summary layout (per setting key: metric means), plus per-query values."""

    settings: dict[str, dict[str, float]] = field(default_factory=dict)  # "mono/en", "cross/en-de", "multi/en"
    per_query: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # setting -> qid -> metrics
    rank_distance: dict[str, float] = field(default_factory=dict)  # query language -> mean rank distance
    own_share: dict[str, float] = field(default_factory=dict)  # query language -> own_share@10


def _runs(
    q: Quantised, qids: list[str], pool: np.ndarray, pool_ids: list[str], rel: list[np.ndarray]
) -> Iterator[tuple[str, dict[str, float], np.ndarray]]:
    block = scores(q, pool)
    for qid, row, r in zip(qids, block, rel, strict=True):
        if len(r) == 0:
            continue
        keep = np.flatnonzero(row >= row[r].min())
        yield qid, {pool_ids[j]: float(row[j]) for j in keep}, row


def reference(bench: Benchmark, q_emb: np.ndarray, c_emb: np.ndarray, chunk: int = 128) -> Reference:
    """pytrec_eval on every setting of `bench` (q_emb, c_emb aligned with bench.queries / bench.candidates)."""
    # (start-up: pytrec_eval)
    import pytrec_eval

    out = Reference()
    cand_ids = [c.id for c in bench.candidates]
    pos = {cid: i for i, cid in enumerate(cand_ids)}
    langs = sorted({q.lang for q in bench.queries})
    pool_langs = sorted({c.lang for c in bench.candidates})
    by_lang = {y: np.array([i for i, c in enumerate(bench.candidates) if c.lang == y]) for y in pool_langs}
    cand_lang = np.array([c.lang for c in bench.candidates])
    # trec_eval's tie order as a rank key: docno descending
    docno_rank = np.empty(len(cand_ids), np.int64)
    docno_rank[np.array(sorted(range(len(cand_ids)), key=lambda i: cand_ids[i], reverse=True))] = np.arange(
        len(cand_ids)
    )
    for x in langs:
        qi = [i for i, q in enumerate(bench.queries) if q.lang == x]
        targets = [(query_key("mono", x) if y == x else query_key("cross", x, y), by_lang[y]) for y in pool_langs]
        targets.append((query_key("multi", x), np.arange(len(cand_ids))))
        distances: list[int] = []
        own: list[float] = []
        for key, rows in targets:
            local = {int(g): j for j, g in enumerate(rows)}
            ids = [cand_ids[g] for g in rows]
            per_query: dict[str, dict[str, float]] = {}
            for s in range(0, len(qi), chunk):
                part = qi[s : s + chunk]
                qids = [bench.queries[i].id for i in part]
                rel = [
                    np.array(sorted(local[pos[c]] for c in bench.qrels[bench.queries[i].id] if pos[c] in local), int)
                    for i in part
                ]
                qrels = {qid: {ids[j]: 1 for j in r} for qid, r in zip(qids, rel, strict=True) if len(r)}
                runs: dict[str, dict[str, float]] = {}
                for qid, run, row in _runs(Quantised(q_emb[part]), qids, c_emb[rows], ids, rel):
                    runs[qid] = run
                    if key == query_key("multi", x):
                        order = np.lexsort((docno_rank, -row))  # trec_eval's ranking of the whole pool
                        rank = np.empty(len(order), np.int64)
                        rank[order] = np.arange(1, len(order) + 1)
                        r = np.array([rank[local[pos[c]]] for c in bench.qrels[qid]])
                        if len(r) >= 2:
                            distances.append(int(r.max() - r.min()))
                        own.append(float(np.mean(cand_lang[order[:10]] == x)))
                if runs:
                    found = pytrec_eval.RelevanceEvaluator(qrels, TREC_MEASURES).evaluate(runs)
                    per_query.update({qid: _from_trec(m) for qid, m in found.items()})
            if per_query:
                out.per_query[key] = per_query
                out.settings[key] = metrics.mean_metrics(per_query.values())
        out.rank_distance[x] = float(np.mean(distances)) if distances else 0.0
        out.own_share[x] = float(np.mean(own)) if own else 0.0
    return out


def compare(summary: DatasetSummary, per_query_ap: dict[str, dict[str, float]], ref: Reference) -> dict[str, float]:
    """Largest |hbt - pytrec_eval| per kind of number (keys: per-query AP, each metric's setting means, rank
    distance, own_share@10); every setting of the reference must be in hbt's summary and vice versa."""
    ours = summary.by_query_key()
    if set(ours) != set(ref.settings):
        raise AssertionError(f"settings differ: {sorted(set(ours) ^ set(ref.settings))}")
    worst: dict[str, float] = {}
    for key, theirs in ref.settings.items():
        for m in METRICS:
            worst[m] = max(worst.get(m, 0.0), abs(ours[key][m] - theirs[m]))
        if ours[key][N_QUERIES] != theirs[N_QUERIES]:
            raise AssertionError(f"{key}: {ours[key][N_QUERIES]} queries vs pytrec_eval's {theirs[N_QUERIES]}")
        ap = per_query_ap[key]
        if set(ap) != set(ref.per_query[key]):
            raise AssertionError(f"{key}: per-query AP for different queries")
        for qid, q_metrics in ref.per_query[key].items():
            # per-query AP is stored rounded to 6 decimals in results.json
            worst["ap/query"] = max(worst.get("ap/query", 0.0), abs(ap[qid] - q_metrics["map"]) - 5e-7)
    bias = summary.bias.per_language
    worst[RANK_DISTANCE] = max(abs(bias[x][RANK_DISTANCE] - d) for x, d in ref.rank_distance.items())
    worst[OWN_SHARE] = max(abs(bias[x][OWN_SHARE] - s) for x, s in ref.own_share.items())
    return worst
