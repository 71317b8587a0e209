"""Embeddings streamed to on-disk shards: the hbt-shards/1 format, its writer and its reader.

A shard directory holds `shard-00000.npy`, `shard-00001.npy`, ... (`shard_size` rows each, the last one fewer;
float32, or float16 to halve the disk and read size) and `manifest.json`, written last and atomically: a directory
without a manifest is incomplete. Searching them is hbt.engine.retrieval.shards.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..common.errors import ConfigError
from ..common.events import NULL_BUS, EventBus
from ..common.io import atomic_open, read_json, write_json
from .encode import EmbeddingCache, Encoder, encode_unique, encoding_params, uses_languages

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
