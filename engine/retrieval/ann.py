"""Approximate inner-product search (faiss IVF-Flat, HNSW-Flat) over an in-memory or sharded pool, and its recall.

The index holds every vector (Flat = uncompressed), so its memory grows with the pool even when the pool is sharded;
only building reads the pool shard by shard. Recall@k is measured against exact search (search.top_k or
shards.search_pool).
"""

from __future__ import annotations

import math

import faiss
import numpy as np

from ..common.errors import ConfigError
from ..common.vocabulary import INDEXES
from ..encoding.shard_files import ShardedPool

APPROXIMATE = tuple(i for i in INDEXES if i != "exact")


def _blocks(pool: ShardedPool | np.ndarray, rows: int = 65536) -> list[tuple[int, int]]:
    if isinstance(pool, ShardedPool):
        return pool.bounds()
    return [(s, min(s + rows, len(pool))) for s in range(0, len(pool), rows)]


def _read(pool: ShardedPool | np.ndarray, i: int, bounds: list[tuple[int, int]]) -> np.ndarray:
    if isinstance(pool, ShardedPool):
        return pool.load(i)
    a, b = bounds[i]
    return np.ascontiguousarray(pool[a:b], dtype=np.float32)


def default_nlist(n: int) -> int:
    """~4 sqrt(n) inverted lists, but at least 40 training rows per list."""
    return max(1, min(int(4 * math.sqrt(n)), n // 40))


def default_nprobe(nlist: int) -> int:
    """Lists scanned per query: ~2 sqrt(nlist), at least 8 (all of them for tiny indexes)."""
    return min(nlist, max(8, round(2 * math.sqrt(nlist))))


def build_index(
    kind: str,
    pool: ShardedPool | np.ndarray,
    *,
    nlist: int | None = None,
    nprobe: int | None = None,
    hnsw_m: int = 32,
    ef_construction: int = 80,
    ef_search: int = 64,
    seed: int = 0,
) -> faiss.Index:
    """An IVF-Flat (spherical k-means on a seeded sample) or HNSW-Flat inner-product index over the pool."""
    if kind not in APPROXIMATE:
        raise ConfigError(f"unknown approximate index {kind!r} (allowed: {', '.join(APPROXIMATE)})")
    n = pool.n_rows if isinstance(pool, ShardedPool) else len(pool)
    dim = pool.dim if isinstance(pool, ShardedPool) else pool.shape[1]
    index: faiss.Index
    if kind == "ivf":
        nlist = nlist or default_nlist(n)
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.spherical = True
        index.cp.seed = seed
        sample = np.sort(np.random.default_rng(seed).choice(n, size=min(n, max(40 * nlist, 50_000)), replace=False))
        train = pool.rows(sample) if isinstance(pool, ShardedPool) else np.ascontiguousarray(pool[sample], np.float32)
        index.train(train)  # faiss's Python wrapper keeps `quantizer` alive with the index
        index.nprobe = nprobe or default_nprobe(nlist)
    else:
        index = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = ef_construction
        index.hnsw.efSearch = ef_search
    bounds = _blocks(pool)
    for i in range(len(bounds)):
        index.add(_read(pool, i, bounds))
    return index


def search(index: faiss.Index, queries: np.ndarray, k: int, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """(scores, ids) of the approximate top-k; ids are -1 where the index found fewer than k rows."""
    k = min(k, index.ntotal)
    out_s = np.empty((len(queries), k), np.float32)
    out_i = np.empty((len(queries), k), np.int64)
    for s in range(0, len(queries), chunk):
        out_s[s : s + chunk], out_i[s : s + chunk] = index.search(
            np.ascontiguousarray(queries[s : s + chunk], dtype=np.float32), k
        )
    return out_s, out_i


def recall_at_k(approx_ids: np.ndarray, exact_ids: np.ndarray, k: int | None = None) -> float:
    """Mean over queries of |approx top-k & exact top-k| / |exact top-k|, in [0, 1] (faiss's -1 never matches)."""
    k = k or exact_ids.shape[1]
    if exact_ids.size == 0 or k == 0:
        return 1.0
    pairs = zip(approx_ids[:, :k].tolist(), exact_ids[:, :k].tolist(), strict=True)
    return float(np.mean([len(set(a) & set(e)) / len(e) for a, e in pairs]))
