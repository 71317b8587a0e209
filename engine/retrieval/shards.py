"""Pools larger than memory: on-disk shards (hbt.engine.encoding.shard_files) searched one shard at a time.

Search reads one shard at a time (widened to float32) and keeps, per query, a running top-k and running counts of
the rows ranked ahead of each relevant row. Peak memory is about
    shard_size x dim x 8 bytes (the shard + faiss's copy) + chunk x tile x 4 bytes (one score block)
plus the queries and per-relevant-row counters, whatever the pool size. Results are bit-identical to
hbt.engine.retrieval.search on the same vectors (widened to float32): each score depends only on its two vectors (see
search.py), and ties follow search.py's rule: top-k and ranks sort by score descending, equal scores by ascending
row id (one total order, so duplicate texts take consecutive ranks).
"""

from __future__ import annotations

from dataclasses import dataclass

import faiss
import numpy as np

from ..common.events import NULL_BUS, EventBus
from ..encoding.shard_files import ShardedPool
from .search import Quantised, canonical_search, scores


@dataclass
class PoolSearch:
    """Per query set: exact ranks of each relevant row (in the given order) and the canonical top-k."""

    ranks: dict[str, list[np.ndarray]]  # rank in the whole pool
    group_ranks: dict[str, list[np.ndarray]]  # rank among the rows of the relevant row's own group (e.g. language)
    top_scores: dict[str, np.ndarray]
    top_ids: dict[str, np.ndarray]


@dataclass
class _Chunk:
    """One block of queries and its (query, relevant row) pairs with their scores and running counts."""

    queries: Quantised  # quantised once, scored against every tile
    pair_query: np.ndarray
    pair_row: np.ndarray
    pair_score: np.ndarray
    pair_group: np.ndarray
    higher: np.ndarray
    higher_in_group: np.ndarray
    lengths: list[int]


def _chunks(
    pool: ShardedPool, queries: np.ndarray, relevant: list[np.ndarray], groups: np.ndarray, size: int
) -> list[_Chunk]:
    out = []
    for s in range(0, len(queries), size):
        q = Quantised(queries[s : s + size])
        rel = [np.asarray(r, dtype=np.int64) for r in relevant[s : s + size]]
        pair_query = np.repeat(np.arange(len(rel)), [len(r) for r in rel])
        pair_row = np.concatenate([*rel, np.zeros(0, np.int64)])
        uniq, pos = np.unique(pair_row, return_inverse=True)
        pair_score = scores(q, pool.rows(uniq))[pair_query, pos] if len(uniq) else np.zeros(0, np.float32)
        n = len(pair_row)
        zeros = np.zeros(n, np.int64)
        out.append(
            _Chunk(q, pair_query, pair_row, pair_score, groups[pair_row], zeros, zeros.copy(), [len(r) for r in rel])
        )
    return out


def _count(
    chunk: _Chunk, block: np.ndarray, start: int, block_groups: np.ndarray | None, pairs_per_step: int = 512
) -> None:
    """Add, for every pair, the rows of `block` (chunk queries x rows, its first row global row `start`) ranked
    ahead of its row: a higher score, or an equal score and a smaller row id (search.relevant_ranks' total order)."""
    block_rows = np.arange(start, start + block.shape[1])
    for p in range(0, len(chunk.pair_query), pairs_per_step):
        sl = slice(p, p + pairs_per_step)
        got, own = block[chunk.pair_query[sl]], chunk.pair_score[sl, None]
        higher = (got > own) | ((got == own) & (block_rows[None, :] < chunk.pair_row[sl, None]))
        chunk.higher[sl] += higher.sum(axis=1)
        if block_groups is not None:
            same = block_groups[None, :] == chunk.pair_group[sl, None]
            chunk.higher_in_group[sl] += (higher & same).sum(axis=1)


TopK = tuple[np.ndarray, np.ndarray]  # (scores, ids), queries x k


def _merge(best: TopK, new: TopK, k: int) -> TopK:
    """Running top-k: the first k of the union by (-score, id), the same rule as search.canonical_search."""
    s = np.concatenate([best[0], new[0]], axis=1)
    i = np.concatenate([best[1], new[1]], axis=1)
    order = np.lexsort((i, -s), axis=1)[:, :k]
    return np.take_along_axis(s, order, axis=1), np.take_along_axis(i, order, axis=1)


def search_pool(
    pool: ShardedPool,
    queries: dict[str, np.ndarray],
    relevant: dict[str, list[np.ndarray]] | None = None,
    *,
    k: int = 10,
    groups: np.ndarray | None = None,
    rank_chunk: int = 256,
    topk_chunk: int = 2048,
    tile: int = 4096,
    bus: EventBus = NULL_BUS,
) -> PoolSearch:
    """One pass over the shards for several query sets (e.g. one per language).

    For each set: the canonical top-k (equal to search.top_k(q, pool, k, chunk=topk_chunk)) and, for the
    relevant global rows of each query, ranks equal to search.relevant_ranks(q, pool, relevant, chunk=rank_chunk);
    `groups` (an int per row) adds each relevant row's rank among the rows of its own group, i.e. what
    relevant_ranks gives on the sub-pool of that group. Chunk sizes must match the in-memory call for bit-equality.
    """
    relevant = relevant or {name: [np.zeros(0, np.int64)] * len(q) for name, q in queries.items()}
    row_groups = np.zeros(pool.n_rows, np.int64) if groups is None else np.asarray(groups, dtype=np.int64)
    chunks = {name: _chunks(pool, q, relevant[name], row_groups, rank_chunk) for name, q in queries.items()}
    k = min(k, pool.n_rows)
    top: dict[str, TopK] = {}
    for name, q in queries.items():
        top[name] = np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64)
    bounds = pool.bounds()
    bus.progress("search shards", 0, len(bounds))
    for i, (start, stop) in enumerate(bounds):
        shard = pool.load(i)
        index = faiss.IndexFlatIP(pool.dim)
        index.add(shard)
        for name, q in queries.items():
            parts = [canonical_search(index, shard, q[s : s + topk_chunk], k) for s in range(0, len(q), topk_chunk)]
            if parts:
                found = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]) + start)
                top[name] = _merge(top[name], found, k)
        del index
        for t in range(0, stop - start, tile):
            rows = Quantised(shard[t : t + tile])  # once per tile, for every query chunk
            block_groups = None if groups is None else row_groups[start + t : start + t + len(rows.values)]
            for chunk_list in chunks.values():
                for chunk in chunk_list:
                    if len(chunk.pair_query):
                        _count(chunk, scores(chunk.queries, rows), start + t, block_groups)
        bus.progress("search shards", i + 1, len(bounds))
    ranks: dict[str, list[np.ndarray]] = {}
    group_ranks: dict[str, list[np.ndarray]] = {}
    for name, chunk_list in chunks.items():
        ranks[name], group_ranks[name] = [], []
        for chunk in chunk_list:
            cuts = np.cumsum(chunk.lengths)[:-1]
            ranks[name] += np.split(chunk.higher + 1, cuts)
            in_group = chunk.higher if groups is None else chunk.higher_in_group
            group_ranks[name] += np.split(in_group + 1, cuts)
    return PoolSearch(ranks, group_ranks, {n: t[0] for n, t in top.items()}, {n: t[1] for n, t in top.items()})
