"""Exact inner-product search over normalised embeddings: faiss top-k and exact ranks of the relevant items.

Both are chunked over queries so memory stays bounded by chunk x pool, never queries x pool.
"""

from __future__ import annotations

import faiss
import numpy as np


def top_k(queries: np.ndarray, pool: np.ndarray, k: int, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """(scores, indices) of the k best pool rows for every query, by faiss IndexFlatIP (exact)."""
    k = min(k, len(pool))
    index = faiss.IndexFlatIP(pool.shape[1])
    index.add(np.ascontiguousarray(pool, dtype=np.float32))
    scores = np.empty((len(queries), k), dtype=np.float32)
    ids = np.empty((len(queries), k), dtype=np.int64)
    for s in range(0, len(queries), chunk):
        scores[s : s + chunk], ids[s : s + chunk] = index.search(
            np.ascontiguousarray(queries[s : s + chunk], dtype=np.float32), k
        )
    return scores, ids


def relevant_ranks(
    queries: np.ndarray, pool: np.ndarray, relevant: list[np.ndarray], chunk: int = 256
) -> list[np.ndarray]:
    """For each query, the 1-based ranks of its relevant pool rows (same order) in the full ranking of the pool.

    rank = 1 + number of pool rows scoring strictly higher; exact, no top-k truncation (LAReQA's mAP ranks the
    whole pool). Ties, which normalised float embeddings practically never produce, count in the item's favour.
    """
    out: list[np.ndarray] = []
    pool32 = np.ascontiguousarray(pool, dtype=np.float32)
    for s in range(0, len(queries), chunk):
        block = queries[s : s + chunk].astype(np.float32, copy=False) @ pool32.T
        for row, rel in zip(block, relevant[s : s + chunk], strict=True):
            if len(rel) == 0:
                out.append(np.zeros(0, dtype=np.int64))
                continue
            rel_scores = row[rel]
            higher = (row[None, :] > rel_scores[:, None]).sum(axis=1)
            out.append(higher + 1)
    return out
