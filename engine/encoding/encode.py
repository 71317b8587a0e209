"""Encode each unique text once, batched by length, with a persistent embedding cache."""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
from hbt.engine.common.events import NULL_BUS, EventBus

ROLES = ("query", "passage")


class Encoder(Protocol):
    """Anything that maps texts of one role to L2-normalised float32 vectors."""

    fingerprint: str

    def encode(self, texts: Sequence[str], role: str) -> np.ndarray: ...


class SentenceTransformerEncoder:
    """Wraps a SentenceTransformer: applies the model's role prompt ("query: " / "passage: ") when it has one."""

    def __init__(self, model: object, fingerprint: str, batch_size: int = 64) -> None:
        self.model = model
        self.fingerprint = fingerprint
        self.batch_size = batch_size

    def encode(self, texts: Sequence[str], role: str) -> np.ndarray:
        """Encode with the largest batch that fits: on out-of-memory the batch size halves and stays halved."""
        prompts = getattr(self.model, "prompts", {}) or {}
        prompt_name = role if prompts.get(role) else None
        while True:
            try:
                vectors = self.model.encode(  # type: ignore[attr-defined]
                    list(texts),
                    prompt_name=prompt_name,
                    batch_size=self.batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
                return np.asarray(vectors, dtype=np.float32)
            except (MemoryError, RuntimeError) as exc:
                if self.batch_size == 1 or not _out_of_memory(exc):
                    raise
                self.batch_size //= 2
                _free_accelerator_memory()


def _out_of_memory(exc: BaseException) -> bool:
    """torch.cuda.OutOfMemoryError is a RuntimeError; MPS and CPU allocators say 'out of memory' too."""
    return isinstance(exc, MemoryError) or "out of memory" in str(exc).lower()


def _free_accelerator_memory() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def text_key(role: str, text: str) -> str:
    return hashlib.blake2b(f"{role}\x00{text}".encode(), digest_size=16).hexdigest()


CORRUPT = ("SQLITE_CORRUPT", "SQLITE_NOTADB")  # a damaged file; the other errors (full, read-only, I/O) are the disk's


def _corrupt(exc: sqlite3.Error) -> bool:
    return getattr(exc, "sqlite_errorname", "") in CORRUPT


class EmbeddingCache:
    """SQLite store of embeddings keyed by (model fingerprint, text mode, role, text).

    A new fingerprint (any weight changed) means new keys: stale vectors are never returned. The cache is only a
    cache: a corrupt file is moved aside (`<name>.corrupt-<time>`) with a warning and rebuilt from empty; a cache
    that cannot be written (a full disk, a read-only folder) is left as it is, with one warning, and the run goes on
    encoding without it.
    """

    def __init__(self, path: Path, warn: Callable[[str], object] | None = None) -> None:
        self.path = path
        self._warn = warn or (lambda message: None)
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = self._open()
        except sqlite3.Error as exc:
            self._recover(exc)
        except OSError as exc:
            self._give_up(exc.strerror or type(exc).__name__)

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(str(self.path), check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS emb "
                "(model TEXT, mode TEXT, key TEXT, vec BLOB, PRIMARY KEY (model, mode, key))"
            )
        except sqlite3.Error:
            db.close()
            raise
        return db

    def _rebuild(self, exc: sqlite3.Error) -> sqlite3.Connection:
        """Move the corrupt database (and its WAL files) aside and start an empty one."""
        aside = self.path.with_name(f"{self.path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
        os.replace(self.path, aside)
        for suffix in ("-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.replace(f"{self.path}{suffix}", f"{aside}{suffix}")
        self._warn(f"embedding cache {self.path} was corrupt ({exc}): moved to {aside} and rebuilt")
        return self._open()

    def _give_up(self, reason: str) -> None:
        """Go on without the cache (every text is encoded), after one warning saying why and what to do."""
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
        self._db = None
        self._warn(
            f"embedding cache {self.path} cannot be used ({reason}): encoding without it — free space, or set "
            "HBT_CACHE_DIR to a writable folder"
        )

    def _recover(self, exc: sqlite3.Error) -> None:
        """After an error: a corrupt file is rebuilt; anything else (or a failed rebuild) drops the cache."""
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None
        if not _corrupt(exc):
            self._give_up(str(exc))
            return
        try:
            self._db = self._rebuild(exc)
        except (OSError, sqlite3.Error) as again:
            self._give_up(f"{exc}; moving it aside failed: {getattr(again, 'strerror', None) or again}")

    def get(self, model: str, mode: str, keys: list[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        with self._lock:
            if self._db is None:
                return found
            try:
                for start in range(0, len(keys), 500):
                    chunk = keys[start : start + 500]
                    marks = ",".join("?" * len(chunk))
                    rows = self._db.execute(
                        f"SELECT key, vec FROM emb WHERE model=? AND mode=? AND key IN ({marks})",
                        [model, mode, *chunk],
                    )
                    for key, blob in rows:
                        found[key] = np.frombuffer(blob, dtype=np.float32)
            except sqlite3.Error as exc:  # damage met deeper in the file: start afresh, encode again
                self._recover(exc)
                return {}
        return found

    def put(self, model: str, mode: str, items: dict[str, np.ndarray]) -> None:
        rows = [(model, mode, k, np.ascontiguousarray(v, dtype=np.float32).tobytes()) for k, v in items.items()]
        with self._lock:
            for _ in range(2):  # a corrupt file is rebuilt once and the rows written to the new one
                if self._db is None:
                    return
                try:
                    with self._db:
                        self._db.executemany("INSERT OR REPLACE INTO emb VALUES (?, ?, ?, ?)", rows)
                    return
                except sqlite3.Error as exc:
                    self._recover(exc)

    def close(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()


def encode_unique(
    encoder: Encoder,
    texts: Sequence[str],
    role: str,
    *,
    mode: str = "sentence",
    cache: EmbeddingCache | None = None,
    bus: EventBus = NULL_BUS,
    chunk_size: int = 1024,
) -> tuple[np.ndarray, int]:
    """Embeddings aligned with `texts`; each distinct text is encoded at most once (zero times if cached).

    Texts are sorted by length before encoding so batches hold similar lengths; chunks bound memory and feed
    progress events. Returns (matrix, number of texts actually encoded).
    """
    unique = list(dict.fromkeys(texts))
    keys = [text_key(role, t) for t in unique]
    cached = cache.get(encoder.fingerprint, mode, keys) if cache else {}
    todo = [i for i, k in enumerate(keys) if k not in cached]
    todo.sort(key=lambda i: len(unique[i]), reverse=True)
    vectors: dict[str, np.ndarray] = dict(cached)
    task = f"encode {'queries' if role == 'query' else role + 's'}"
    bus.progress(task, 0, len(todo))
    for start in range(0, len(todo), chunk_size):
        idx = todo[start : start + chunk_size]
        out = encoder.encode([unique[i] for i in idx], role)
        fresh = {keys[i]: out[j] for j, i in enumerate(idx)}
        vectors.update(fresh)
        if cache:
            cache.put(encoder.fingerprint, mode, fresh)
        bus.progress(task, min(start + chunk_size, len(todo)), len(todo))
    if not unique:
        return np.zeros((0, 0), dtype=np.float32), 0
    position = {t: i for i, t in enumerate(unique)}
    matrix = np.stack([vectors[keys[i]] for i in range(len(unique))]).astype(np.float32, copy=False)
    return matrix[[position[t] for t in texts]], len(todo)
