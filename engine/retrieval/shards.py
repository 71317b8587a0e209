"""Pools larger than memory: embeddings streamed to on-disk shards and searched one shard at a time.

A shard directory holds `shard-00000.npy`, `shard-00001.npy`, ... (`shard_size` rows each, the last one fewer;
float32, or float16 to halve the disk and read size) and `manifest.json`, written last and atomically: a directory
without a manifest is incomplete.

Search reads one shard at a time (widened to float32) and keeps, per query, a running top-k and running counts of
the rows ranked ahead of each relevant row. Peak memory is about
    shard_size x dim x 8 bytes (the shard + faiss's copy) + chunk x tile x 4 bytes (one score block)
plus the queries and per-relevant-row counters, whatever the pool size. Results are bit-identical to
hbt.engine.retrieval.search on the same vectors (widened to float32): each score depends only on its two vectors (see
search.py), and ties follow search.py's rule: top-k and ranks sort by score descending, equal scores by ascending
row id (one total order, so duplicate texts take consecutive ranks).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from ..common.errors import ConfigError
from ..common.events import NULL_BUS, EventBus
from ..common.io import atomic_open, read_json, write_json
from ..encoding.encode import EmbeddingCache, Encoder, encode_unique, encoding_params, uses_languages
from .search import Quantised, canonical_search, scores

FORMAT = "hbt-shards/1"
MANIFEST = "manifest.json"
DTYPES = ("float32", "float16")


@dataclass(frozen=True)
class ShardedPool:
    """A complete shard directory: row i lives in shard i // shard_size at row i % shard_size."""

    root: Path
    dim: int
    dtype: str
    shard_size: int
    files: tuple[str, ...]
    sizes: tuple[int, ...]

    @property
    def n_rows(self) -> int:
        return sum(self.sizes)

    @classmethod
    def open(cls, root: str | Path) -> ShardedPool:
        root = Path(root)
        if not (root / MANIFEST).exists():
            raise ConfigError(f"{root} holds no complete shard set (no {MANIFEST})")
        m = read_json(root / MANIFEST)
        if m.get("format") != FORMAT:
            raise ConfigError(f"{root / MANIFEST}: unknown format {m.get('format')!r} (expected {FORMAT})")
        return cls(
            root,
            int(m["dim"]),
            m["dtype"],
            int(m["shard_size"]),
            tuple(s["file"] for s in m["shards"]),
            tuple(int(s["rows"]) for s in m["shards"]),
        )

    def bounds(self) -> list[tuple[int, int]]:
        """[start, stop) global rows of each shard."""
        return [(int(a), int(b)) for a, b in itertools.pairwise(np.cumsum((0, *self.sizes)))]

    def load(self, i: int) -> np.ndarray:
        """Shard i read into memory as float32."""
        shard: np.ndarray = np.load(self.root / self.files[i]).astype(np.float32, copy=False)
        return shard

    def rows(self, idx: np.ndarray) -> np.ndarray:
        """Rows at global indices `idx` (any order) as float32, read through memory maps."""
        idx = np.asarray(idx, dtype=np.int64)
        out = np.empty((len(idx), self.dim), dtype=np.float32)
        shard = idx // self.shard_size
        for s in np.unique(shard):
            mask = shard == s
            out[mask] = np.load(self.root / self.files[s], mmap_mode="r")[idx[mask] - s * self.shard_size]
        return out

    def to_array(self) -> np.ndarray:
        """The whole pool in memory (float32): for tests and in-memory comparisons only."""
        if not self.files:
            return np.zeros((0, self.dim), np.float32)
        return np.concatenate([self.load(i) for i in range(len(self.files))])


class ShardWriter:
    """Appends rows; every `shard_size` rows become one .npy file; close() writes the manifest."""

    def __init__(
        self, root: str | Path, shard_size: int, dtype: str = "float32", meta: dict[str, Any] | None = None
    ) -> None:
        if shard_size < 1:
            raise ConfigError(f"shard_size must be a positive number of rows, got {shard_size}")
        if dtype not in DTYPES:
            raise ConfigError(f"unknown shard dtype {dtype!r} (allowed: {', '.join(DTYPES)})")
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / MANIFEST).unlink(missing_ok=True)  # incomplete until close()
        for old in self.root.glob("shard-*.npy"):
            old.unlink()
        self.shard_size = shard_size
        self.dtype = dtype
        self.meta = meta or {}
        self.dim: int | None = None
        self.files: list[str] = []
        self.sizes: list[int] = []
        self._buf = np.zeros((0, 0), dtype=dtype)
        self._fill = 0

    def append(self, rows: np.ndarray) -> None:
        if self.dim is None:
            self.dim = rows.shape[1]
            self._buf = np.empty((self.shard_size, self.dim), dtype=self.dtype)
        start = 0
        while start < len(rows):
            take = min(self.shard_size - self._fill, len(rows) - start)
            self._buf[self._fill : self._fill + take] = rows[start : start + take]
            self._fill += take
            start += take
            if self._fill == self.shard_size:
                self._flush()

    def _flush(self) -> None:
        name = f"shard-{len(self.files):05d}.npy"
        with atomic_open(self.root / name, "wb") as fh:
            np.save(fh, self._buf[: self._fill])
        self.files.append(name)
        self.sizes.append(self._fill)
        self._fill = 0

    def written(self) -> ShardedPool:
        """The shards flushed so far (readable while writing goes on)."""
        return ShardedPool(self.root, self.dim or 0, self.dtype, self.shard_size, tuple(self.files), tuple(self.sizes))

    def close(self) -> ShardedPool:
        if self._fill:
            self._flush()
        pool = self.written()
        write_json(
            self.root / MANIFEST,
            {
                "format": FORMAT,
                "rows": pool.n_rows,
                "dim": pool.dim,
                "dtype": self.dtype,
                "shard_size": self.shard_size,
                "shards": [{"file": f, "rows": n} for f, n in zip(pool.files, pool.sizes, strict=True)],
                **self.meta,
            },
        )
        return pool


def encode_to_shards(
    encoder: Encoder,
    texts: Sequence[str],
    root: str | Path,
    *,
    shard_size: int,
    dtype: str = "float32",
    role: str = "passage",
    mode: str = "sentence",
    langs: Sequence[str] | None = None,
    cache: EmbeddingCache | None = None,
    bus: EventBus = NULL_BUS,
) -> tuple[ShardedPool, int]:
    """Embed `texts` (row i = texts[i], in language langs[i] when given) into shards under `root`; returns (pool,
    number of texts actually encoded).

    Goes window by window (one shard of texts at a time). Each distinct text (and language, for an encoder that
    encodes it) is encoded once, through encode_unique (so: length-sorted batches within the window, the embedding
    cache); one seen in an earlier window is copied from its first row on disk. Memory: one window of vectors + an
    item -> first-row map.
    """
    params = encoding_params(encoder, role, mode)
    writer = ShardWriter(root, shard_size, dtype, {"encoder": encoder.fingerprint, "role": role, **params})
    tagged = langs is not None and uses_languages(encoder)
    items = list(zip(texts, langs, strict=True)) if tagged and langs is not None else [(t, "") for t in texts]
    first: dict[tuple[str, str], int] = {}
    n_encoded = 0
    task = f"encode {'queries' if role == 'query' else role + 's'}"
    bus.progress(task, 0, len(texts))
    for start in range(0, len(items), shard_size):
        window = items[start : start + shard_size]
        new = [t for t in dict.fromkeys(window) if t not in first]
        emb, n = encode_unique(
            encoder, [t for t, _ in new], role, langs=[x for _, x in new] if tagged else None, mode=mode, cache=cache
        )
        n_encoded += n
        seen = [t for t in dict.fromkeys(window) if t in first]
        old = writer.written().rows(np.array([first[t] for t in seen], dtype=np.int64)) if seen else emb[:0]
        where = {t: (emb, i) for i, t in enumerate(new)} | {t: (old, i) for i, t in enumerate(seen)}
        dim = emb.shape[1] if new else old.shape[1]
        block = np.empty((len(window), dim), dtype=np.float32)
        for j, t in enumerate(window):
            src, i = where[t]
            block[j] = src[i]
            first.setdefault(t, start + j)
        writer.append(block)
        bus.progress(task, start + len(window), len(texts))
    return writer.close(), n_encoded


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
