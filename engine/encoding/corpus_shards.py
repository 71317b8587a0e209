"""Passage collections far larger than memory (MIRACL en: 32.9M passages): streamed, encoded shard by shard to
disk, sliced across ranks, resumable by shard.

Input: any iterable of (id, text) passages, read once in a fixed order. Shard j holds passages
[j * shard_size, (j + 1) * shard_size) of that order, as two files written atomically, ids first:
    ids-0000j.txt     one passage id per line
    shard-0000j.npy   its vectors (float32 or float16); its presence marks the shard complete
Under torchrun / `accelerate launch` (RANK, WORLD_SIZE) rank r encodes the shards j with j % world_size == r; every
rank streams the whole input (cheap beside encoding) and skips the other ranks' passages without keeping them.
A restart (after kill -9, a crash, a lost node) skips every complete shard without encoding it; a half-written
shard left only a temp file, which is removed. When every shard exists, rank 0 writes `manifest.json` (the
hbt-shards/1 format of hbt.engine.encoding.shard_files, so ShardedPool.open and search_pool read it) plus the
passage count.

`corpus.json`, written first, holds the encoding key: the model fingerprint, role, the encoding parameters (text
mode, the role's prefix, maximum length, and the passages' language for a backbone that encodes it: mBART-50),
shard size, dtype and whatever the caller adds (e.g. the corpus files' names and sha256 contents), the same key as
the embedding cache plus the corpus. Shards of another key are never mixed in: that is a one-line error.

Memory: one shard of texts and vectors at a time; duplicate texts are encoded once within a shard (encode_unique),
not across shards (a corpus-wide text map would not fit in memory).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..common.errors import ConfigError, DataError
from ..common.events import NULL_BUS, EventBus
from ..common.io import atomic_open, ensure_dir, read_json, write_json
from ..data.benchmark import resolve_text_mode
from ..training import distributed
from .encode import EmbeddingCache, Encoder, encode_unique, encoding_params, uses_languages
from .shard_files import DTYPES, FORMAT, MANIFEST, ShardedPool

KEY_FILE = "corpus.json"
KEY_FORMAT = "hbt-corpus/1"
ROLE = "passage"  # what a corpus holds: its texts are encoded with the backbone's passage prompt
SENTENCE = "sentence"  # the text mode `auto` stands for here: no dataset sets a convention
POLL_S = 1.0  # how often rank 0 looks for the other ranks' shards


def vectors_name(j: int) -> str:
    return f"shard-{j:05d}.npy"


def ids_name(j: int) -> str:
    return f"ids-{j:05d}.txt"


DEFAULT_SHARD_SIZE = 100_000  # passages per shard of a whole corpus (MIRACL, XOR-Retrieve)


@dataclass(frozen=True)
class CorpusOptions:
    """How a whole corpus is encoded and searched (MIRACL full corpora, XOR-Retrieve's collection): one object for
    both evaluators and for `encode_corpus`. shard_size None = DEFAULT_SHARD_SIZE; shard_dir None = under the cache
    folder."""

    text_mode: str = "auto"  # auto: each dataset's convention (MIRACL: title+text; encode_corpus alone: sentence)
    cache: EmbeddingCache | None = None  # the queries' embeddings; a corpus's passages are kept in its shards only
    bus: EventBus = NULL_BUS
    shard_size: int | None = None
    shard_dtype: str = "float32"
    shard_dir: str | Path | None = None
    allow_large: bool = False

    @property
    def size(self) -> int:
        """Passages per shard."""
        return self.shard_size or DEFAULT_SHARD_SIZE


@dataclass(frozen=True)
class CorpusShards:
    """A complete encoded corpus: the vectors as a ShardedPool, and the passage id of every row."""

    pool: ShardedPool

    @property
    def root(self) -> Path:
        return self.pool.root

    def ids(self, shard: int) -> list[str]:
        return (self.root / ids_name(shard)).read_text(encoding="utf-8").split("\n")[:-1]

    def iter_ids(self) -> Iterator[str]:
        for j in range(len(self.pool.files)):
            yield from self.ids(j)

    def rows_of(self, wanted: Iterable[str]) -> dict[str, int]:
        """Global row of each wanted id found in the corpus (one pass over the id files; memory ~ len(wanted)).

        An id that appears twice among the wanted ones is an error: its rank would be ambiguous."""
        want = set(wanted)
        found: dict[str, int] = {}
        for row, pid in enumerate(self.iter_ids()):
            if pid in want:
                if pid in found:
                    raise DataError(
                        f"{self.root}: passage id {pid!r} appears twice in the corpus (rows {found[pid]}, {row})"
                    )
                found[pid] = row
        return found

    @classmethod
    def open(cls, root: str | Path) -> CorpusShards:
        return cls(ShardedPool.open(root))


def encoding_key(encoder: Encoder, role: str, mode: str, lang: str | None) -> dict[str, Any]:
    """The encoding part of a corpus's keys (its corpus.json and its cache folder): the model fingerprint, the role,
    the encoding parameters, and the passages' language when the encoder encodes it (mBART-50's codes)."""
    return {
        "encoder": encoder.fingerprint,
        "role": role,
        **encoding_params(encoder, role, mode),
        "lang": lang if uses_languages(encoder) else None,
    }


def corpus_key(
    encoder: Encoder,
    role: str,
    mode: str,
    shard_size: int,
    dtype: str,
    extra: dict[str, Any],
    lang: str | None = None,
) -> dict[str, Any]:
    return {
        "format": KEY_FORMAT,
        **encoding_key(encoder, role, mode, lang),
        "shard_size": shard_size,
        "dtype": dtype,
        **extra,
    }


def complete_shards(root: str | Path) -> set[int]:
    """Shard numbers whose vectors file exists (the ids file was written before it)."""
    return {int(p.stem.split("-")[1]) for p in Path(root).glob("shard-*.npy")}


def check_key(root: Path, key: dict[str, Any]) -> None:
    """Write the key on first use; a different key already there is a one-line error (never mixed shards)."""
    path = root / KEY_FILE
    if path.exists():
        old = read_json(path)
        if old != key:
            diff = sorted(k for k in set(old) | set(key) if old.get(k) != key.get(k))
            raise ConfigError(
                f"{root} holds shards of another encoding (differs in {', '.join(diff)}): "
                "delete it or choose another folder"
            )
        return
    write_json(path, key)


def encode_corpus(
    encoder: Encoder,
    passages: Iterable[tuple[str, str]],
    root: str | Path,
    options: CorpusOptions,
    *,
    lang: str | None = None,
    key: dict[str, Any] | None = None,
    rank: int | None = None,
    world_size: int | None = None,
    wait_s: float = 7 * 24 * 3600.0,
    on_shard: Callable[[int, int], None] | None = None,
) -> tuple[CorpusShards | None, int]:
    """Encode `passages` into shards under `root`; returns (the corpus on rank 0, else None; passages encoded here).

    options: the shard size and dtype, the text mode (`auto`, with no dataset to set a convention, is `sentence`:
    the passages as given) and the event bus; `options.cache` is not used (it holds queries: passages live in the
    shards). lang: the passages' language (one per corpus: MIRACL's per-language corpora, XOR-Retrieve's English
    collection), given to an encoder that encodes it (mBART-50's language code) and part of the key, as is `key`
    (whatever the caller adds: the corpus files' names and contents).

    rank / world_size default to the launcher's (RANK, WORLD_SIZE). Rank 0, after its own shards, waits up to
    wait_s for the other ranks' shards, then writes the manifest. A root that already holds a manifest of the same
    key is returned at once (nothing read, nothing encoded). `on_shard(j, rows)` is called after shard j is written.
    """
    shard_size, dtype, bus = options.size, options.shard_dtype, options.bus
    mode = resolve_text_mode(options.text_mode, SENTENCE)
    if shard_size < 1:
        raise ConfigError(f"shard_size must be a positive number of rows, got {shard_size}")
    if dtype not in DTYPES:
        raise ConfigError(f"unknown shard dtype {dtype!r} (allowed: {', '.join(DTYPES)})")
    rank = distributed.rank() if rank is None else rank
    world_size = distributed.world_size() if world_size is None else world_size
    root = Path(root)
    ensure_dir(root)
    check_key(root, corpus_key(encoder, ROLE, mode, shard_size, dtype, key or {}, lang))
    if (root / MANIFEST).exists():
        return (CorpusShards.open(root) if rank == 0 else None), 0
    done = complete_shards(root)
    task = f"encode {ROLE}s"
    n_encoded = 0
    n_seen = 0
    ids: list[str] = []
    texts: list[str] = []

    def flush(j: int) -> None:
        nonlocal n_encoded
        for stale in root.glob(f".{vectors_name(j)}.*.tmp"):  # a write cut short by kill -9
            stale.unlink(missing_ok=True)
        emb, n = encode_unique(encoder, texts, ROLE, langs=[lang] * len(texts) if lang else None, mode=mode)
        n_encoded += n
        with atomic_open(root / ids_name(j), "w") as fh:
            fh.write("".join(f"{pid}\n" for pid in ids))
        with atomic_open(root / vectors_name(j), "wb") as fh:
            np.save(fh, emb.astype(dtype, copy=False))
        if on_shard is not None:
            on_shard(j, len(ids))

    bus.progress(task, 0, 0)  # the total is known once the stream ends
    for pid, text in passages:
        j = n_seen // shard_size
        n_seen += 1
        if j % world_size != rank or j in done:
            if n_seen % shard_size == 0:
                bus.progress(task, n_seen, n_seen)
            continue
        if "\n" in pid or "\r" in pid:
            raise DataError(f"passage id {pid!r} contains a line break")
        ids.append(pid)
        texts.append(text)
        if len(ids) == shard_size:
            flush(j)
            ids, texts = [], []
            bus.progress(task, n_seen, n_seen)
    if ids:
        flush((n_seen - 1) // shard_size)  # the last, short shard
    bus.progress(task, n_seen, n_seen)
    if rank != 0:
        return None, n_encoded
    n_shards = math.ceil(n_seen / shard_size)
    deadline = time.monotonic() + wait_s
    while len(complete_shards(root) & set(range(n_shards))) < n_shards:
        if time.monotonic() > deadline:
            missing = sorted(set(range(n_shards)) - complete_shards(root))
            raise ConfigError(f"{root}: shards {missing[:5]} never appeared (another rank stopped?); rerun to resume")
        time.sleep(POLL_S)
    return CorpusShards(write_manifest(root, n_seen, shard_size, dtype)), n_encoded


def write_manifest(root: Path, n_rows: int, shard_size: int, dtype: str) -> ShardedPool:
    """The hbt-shards/1 manifest over shards 0..n-1, each checked against its expected row count."""
    n_shards = math.ceil(n_rows / shard_size)
    sizes = [min(shard_size, n_rows - j * shard_size) for j in range(n_shards)]
    dim = 0
    for j, rows in enumerate(sizes):
        shape = np.load(root / vectors_name(j), mmap_mode="r").shape
        if shape[0] != rows:
            raise DataError(f"{root / vectors_name(j)}: {shape[0]} rows, expected {rows} (the corpus changed?)")
        dim = int(shape[1])
    write_json(
        root / MANIFEST,
        {
            "format": FORMAT,
            "rows": n_rows,
            "dim": dim,
            "dtype": dtype,
            "shard_size": shard_size,
            "shards": [{"file": vectors_name(j), "rows": n, "ids": ids_name(j)} for j, n in enumerate(sizes)],
        },
    )
    return ShardedPool.open(root)
