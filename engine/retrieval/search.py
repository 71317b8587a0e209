"""Exact inner-product search over normalised embeddings: faiss top-k and exact ranks of the relevant items.

Both are chunked over queries so memory stays bounded by chunk x pool, never queries x pool.

Reproducibility: every score is a pure function of its two vectors, bit for bit, whatever BLAS kernel, thread
count or other rows share the computation (float32 GEMM results do change with all three). `scores` quantises each
row on its own to integers (a per-row power-of-two scale, 2^-b of the row's largest component: as fine as float32 for
unit vectors) and multiplies them in float64, where every product and partial sum is an integer below 2^53, so the
sum is exact in any order. faiss finds the top-k candidates; they are re-scored the same way. This is what lets
hbt.engine.retrieval.shards search a pool shard by shard and give bit-identical results.
"""

from __future__ import annotations

import faiss
import numpy as np

_MANTISSA = 53  # float64: integers below 2^53 are exact


def _bits(dim: int) -> int:
    """Integer bits per component such that dim products of two components sum below 2^53."""
    return (_MANTISSA - max(1, int(np.ceil(np.log2(max(dim, 2)))))) // 2


class Quantised:
    """Rows as integer-valued float64 (|value| <= 2^bits) with each row's power-of-two exponent (row max <= 2^exp)."""

    def __init__(self, x: np.ndarray, bits: int | None = None) -> None:
        x = np.asarray(x, dtype=np.float64)
        self.bits = _bits(x.shape[1]) if bits is None else bits
        _, self.exp = np.frexp(np.abs(x).max(axis=1, initial=0.0))
        self.values = np.rint(np.ldexp(x, (self.bits - self.exp)[:, None]))


def scores(queries: np.ndarray | Quantised, rows: np.ndarray | Quantised, tile: int = 4096) -> np.ndarray:
    """queries x rows inner products (float32); each value depends only on its query and its row.

    Rows are quantised a tile at a time, so the float64 work space is queries x tile, not queries x rows; callers
    that score one side many times pass it already Quantised.
    """
    q = queries if isinstance(queries, Quantised) else Quantised(queries)
    if isinstance(rows, Quantised):
        return _product(q, rows)
    out = np.empty((len(q.values), len(rows)), dtype=np.float32)
    for t in range(0, len(rows), tile):
        out[:, t : t + tile] = _product(q, Quantised(rows[t : t + tile], q.bits))
    return out


def _product(q: Quantised, r: Quantised) -> np.ndarray:
    return _to_float32(q.values @ r.values.T, q.exp[:, None] + r.exp[None, :], q.bits)


def _to_float32(dots: np.ndarray, exp_sum: np.ndarray, bits: int) -> np.ndarray:
    """Exact integer dot products back to the scale of the original vectors (a power-of-two shift), as float32."""
    out: np.ndarray = np.ldexp(dots, exp_sum - 2 * bits).astype(np.float32)
    return out


def pair_scores(queries: np.ndarray, rows: np.ndarray, ids: np.ndarray, max_pairs: int = 8192) -> np.ndarray:
    """scores(queries[i], rows[ids[i, j]]) for every (i, j), without the full queries x rows product; the float64
    work space holds at most max_pairs gathered rows (a deep tie search can make ids wide)."""
    out = np.empty(ids.shape, dtype=np.float32)
    chunk = max(1, max_pairs // max(1, ids.shape[1]))
    for s in range(0, len(ids), chunk):
        sel = ids[s : s + chunk]
        q = Quantised(queries[s : s + chunk])
        r = Quantised(rows[sel.reshape(-1)], q.bits)
        dots = np.einsum("nd,nkd->nk", q.values, r.values.reshape(*sel.shape, -1))
        out[s : s + chunk] = _to_float32(dots, q.exp[:, None] + r.exp.reshape(sel.shape), q.bits)
    return out


def canonical_search(
    index: faiss.Index, rows: np.ndarray, queries: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k of `rows` (indexed by `index`) with hbt's scores and tie rule: score descending, equal scores by
    ascending row id.

    faiss's float32 scores carry GEMM rounding and it keeps an arbitrary subset of the rows tied at the k-th score.
    So the search goes deeper than k, and deeper again while rows within faiss's rounding of the k-th score may be
    cut off; then the candidates are re-scored with `scores`' exact arithmetic, sorted by (-score, id), cut at k.
    """
    n = index.ntotal
    k = min(k, n)
    q = np.ascontiguousarray(queries, dtype=np.float32)
    if k == 0 or len(q) == 0:
        return np.zeros((len(q), k), np.float32), np.zeros((len(q), k), np.int64)
    depth = min(max(2 * k, k + 16), n)  # a few spare rows: a re-search is only needed for big near-ties
    while True:
        dist, ids = index.search(q, depth)
        kth = dist[:, k - 1]
        slack = 1e-4 * np.maximum(1.0, np.abs(kth))  # far above float32 GEMM rounding of unit-vector scores
        open_tie = dist[:, depth - 1] >= kth - slack if depth > k else np.zeros(len(q), bool)
        if depth == n or not open_tie.any():
            break
        depth = min(2 * depth, n)
    exact = pair_scores(q, rows, ids)
    order = np.lexsort((ids, -exact), axis=1)[:, :k]
    return np.take_along_axis(exact, order, axis=1), np.take_along_axis(ids, order, axis=1)


def on_gpus_if_any(index: faiss.Index) -> faiss.Index:
    """The index on every GPU when faiss-gpu is installed and sees one (same exact results), else unchanged."""
    if hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0:
        return faiss.index_cpu_to_all_gpus(index)
    return index


def top_k(queries: np.ndarray, pool: np.ndarray, k: int, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """(scores, indices) of the k best pool rows for every query, by faiss IndexFlatIP (exact, canonical ties)."""
    k = min(k, len(pool))
    index = on_gpus_if_any(faiss.IndexFlatIP(pool.shape[1]))
    index.add(np.ascontiguousarray(pool, dtype=np.float32))
    out_scores = np.empty((len(queries), k), dtype=np.float32)
    out_ids = np.empty((len(queries), k), dtype=np.int64)
    for s in range(0, len(queries), chunk):
        out_scores[s : s + chunk], out_ids[s : s + chunk] = canonical_search(index, pool, queries[s : s + chunk], k)
    return out_scores, out_ids


def relevant_ranks(
    queries: np.ndarray, pool: np.ndarray, relevant: list[np.ndarray], chunk: int = 256
) -> list[np.ndarray]:
    """For each query, the 1-based ranks of its relevant pool rows (same order) in the full ranking of the pool.

    The ranking is a total order, the same as top_k's: score descending, equal scores by ascending row id. So
    rank = 1 + rows scoring strictly higher + rows with an equal score and a smaller row id; exact, no top-k
    truncation (LAReQA's mAP ranks the whole pool). Duplicate texts share a vector, hence a score: they take
    consecutive ranks, never one rank each (which would push AP above 1). evaluate.py orders the pool so that
    ascending row id is trec_eval's tie order (see in_trec_order).
    """
    out: list[np.ndarray] = []
    row_ids = np.arange(len(pool))
    for s in range(0, len(queries), chunk):
        block = scores(queries[s : s + chunk], pool)
        for row, rel in zip(block, relevant[s : s + chunk], strict=True):
            if len(rel) == 0:
                out.append(np.zeros(0, dtype=np.int64))
                continue
            rel = np.asarray(rel, dtype=np.int64)
            rel_scores = row[rel]
            higher = (row[None, :] > rel_scores[:, None]).sum(axis=1)
            tied_before = ((row[None, :] == rel_scores[:, None]) & (row_ids[None, :] < rel[:, None])).sum(axis=1)
            out.append(higher + tied_before + 1)
    return out


def trec_order(ids: list[str]) -> np.ndarray:
    """Positions of `ids` in trec_eval's tie order: docno descending, compared as bytes (strcmp).

    trec_eval (and pytrec_eval, which embeds it) sorts a query's run by score descending, then by docno descending;
    a pool laid out in this order makes hbt's ascending-row-id tie rule the same ranking. Python compares str by code
    point, which is UTF-8 byte order.
    """
    return np.array(sorted(range(len(ids)), key=lambda i: ids[i], reverse=True), dtype=np.int64)
