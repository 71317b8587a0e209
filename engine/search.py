"""Exact inner-product search over normalised embeddings: faiss top-k and exact ranks of the relevant items.

Both are chunked over queries so memory stays bounded by chunk x pool, never queries x pool.

Reproducibility: every score is a pure function of its two vectors, whichever other rows share the computation.
top_k uses faiss (its scores do not depend on the pool's other rows); relevant_ranks uses `scores`, a GEMM padded to
a shape that keeps BLAS on its general kernel. This is what lets hbt.engine.shards search a pool shard by shard
and give bit-identical results.
"""

from __future__ import annotations

import faiss
import numpy as np

# BLAS picks other kernels (gemv when a side is 1, "small matrix" kernels below ~1e6 multiply-adds) that round
# differently; padding with zero rows up to these sizes keeps every call on the general GEMM kernel.
_MIN_SIDE = 64
_MIN_WORK = 1 << 22


def scores(queries: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """queries x rows inner products (float32); each value depends only on its query and its row."""
    q = np.ascontiguousarray(queries, dtype=np.float32)
    r = np.ascontiguousarray(rows, dtype=np.float32)
    m, n, d = len(q), len(r), q.shape[1]
    pm = max(m, _MIN_SIDE)
    pn = max(n, _MIN_SIDE, -(-_MIN_WORK // (pm * max(d, 1))))
    if pm > m:
        q = np.concatenate([q, np.zeros((pm - m, d), np.float32)])
    if pn > n:
        r = np.concatenate([r, np.zeros((pn - n, d), np.float32)])
    return (q @ r.T)[:m, :n]


def canonical_search(index: faiss.Index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """faiss search of one query block with hbt's tie rule: score descending, equal scores by ascending row id.

    faiss keeps an arbitrary subset of the rows tied at the k-th score. So the search goes deeper than k, and deeper
    again (the same block: same faiss code path, same score bits) until every row tied with the k-th is inside;
    then the rows are sorted by (-score, id) and cut at k.
    """
    n = index.ntotal
    k = min(k, n)
    q = np.ascontiguousarray(queries, dtype=np.float32)
    if k == 0 or len(q) == 0:
        return np.zeros((len(q), k), np.float32), np.zeros((len(q), k), np.int64)
    depth = min(max(2 * k, k + 16), n)  # a few spare rows: a re-search is only needed for big ties
    while True:
        dist, ids = index.search(q, depth)
        open_tie = dist[:, depth - 1] == dist[:, k - 1] if depth > k else np.zeros(len(q), bool)
        if depth == n or not open_tie.any():
            break
        depth = min(2 * depth, n)
    order = np.lexsort((ids, -dist), axis=1)[:, :k]
    return np.take_along_axis(dist, order, axis=1), np.take_along_axis(ids, order, axis=1)


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
        out_scores[s : s + chunk], out_ids[s : s + chunk] = canonical_search(index, queries[s : s + chunk], k)
    return out_scores, out_ids


def relevant_ranks(
    queries: np.ndarray, pool: np.ndarray, relevant: list[np.ndarray], chunk: int = 256
) -> list[np.ndarray]:
    """For each query, the 1-based ranks of its relevant pool rows (same order) in the full ranking of the pool.

    rank = 1 + number of pool rows scoring strictly higher; exact, no top-k truncation (LAReQA's mAP ranks the
    whole pool). Ties (duplicate texts share a vector) count in the item's favour.
    """
    out: list[np.ndarray] = []
    for s in range(0, len(queries), chunk):
        block = scores(queries[s : s + chunk], pool)
        for row, rel in zip(block, relevant[s : s + chunk], strict=True):
            if len(rel) == 0:
                out.append(np.zeros(0, dtype=np.int64))
                continue
            rel_scores = row[rel]
            higher = (row[None, :] > rel_scores[:, None]).sum(axis=1)
            out.append(higher + 1)
    return out
