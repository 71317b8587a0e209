"""Encode each unique text once, batched by length, with a persistent embedding cache.

What changes a vector is in every cache key: the model fingerprint (weights), the text mode, the role's prefix
(prompt), the maximum length, and, for a backbone whose input depends on the text's language (mBART-50's language
codes), the language each text is encoded with (`encoding_params`, `text_key`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np

from ..backbones._util import wants_text_languages
from ..common.events import NULL_BUS, EventBus


class Encoder(Protocol):
    """Anything that maps texts of one role to L2-normalised float32 vectors."""

    fingerprint: str

    def encode(self, texts: Sequence[str], role: str) -> np.ndarray: ...


class LanguageEncoder(Encoder, Protocol):
    """An encoder whose vectors depend on each text's language (`uses_languages` true: mBART-50's language codes);
    `langs` is aligned with `texts` (ISO codes such as "fi")."""

    uses_languages: bool

    def encode(self, texts: Sequence[str], role: str, langs: Sequence[str] | None = None) -> np.ndarray: ...


def uses_languages(encoder: Encoder) -> bool:
    """The encoder tags each text with its language (so the language is part of what is encoded and cached)."""
    return bool(getattr(encoder, "uses_languages", False))


def model_inputs(model: Any, texts: Sequence[str], langs: Sequence[str] | None) -> list[Any]:
    """What a sentence-transformers model is given: the texts, or {"text", "lang"} items for a model whose input
    depends on the language (mBART-50), so every text carries its own language whatever path encodes it."""

    if langs is None or not wants_text_languages(model):
        return list(texts)
    return [{"text": t, "lang": x} for t, x in zip(texts, langs, strict=True)]


def encode_texts(encoder: Encoder, texts: Sequence[str], role: str, langs: Sequence[str] | None = None) -> np.ndarray:
    """encoder.encode, with each text's language for an encoder that uses it (the one call every path makes)."""
    if langs is not None and uses_languages(encoder):
        return cast(LanguageEncoder, encoder).encode(texts, role, langs=langs)
    return encoder.encode(texts, role)


def encoding_params(encoder: Encoder, role: str, mode: str) -> dict[str, Any]:
    """Everything besides the weights (the fingerprint) and the text that changes a vector of `role`: the text
    mode, the role's prefix (prompt), the maximum length and whether each text's language is encoded with it."""
    model = getattr(encoder, "model", None)
    prompts = getattr(model, "prompts", None) or {}
    max_length = getattr(model, "max_seq_length", None)
    return {
        "text_mode": mode,
        "prefix": str(prompts.get(role) or ""),
        "max_length": int(max_length) if isinstance(max_length, int) else None,
        "languages": uses_languages(encoder),
    }


def params_key(params: dict[str, Any]) -> str:
    """The embedding cache's `mode` column: the text mode, then a digest of the other encoding parameters."""
    digest = hashlib.blake2b(json.dumps(params, sort_keys=True).encode(), digest_size=8).hexdigest()
    return f"{params['text_mode']}|{digest}"


class SentenceTransformerEncoder:
    """Wraps a SentenceTransformer: applies the model's role prompt ("query: " / "passage: ") when it has one, and
    hands each text's language to a model whose input depends on it (mBART-50's language codes)."""

    def __init__(self, model: object, fingerprint: str, batch_size: int = 64) -> None:
        self.model = model
        self.fingerprint = fingerprint
        self.batch_size = batch_size
        self.uses_languages = wants_text_languages(model)

    def encode(self, texts: Sequence[str], role: str, langs: Sequence[str] | None = None) -> np.ndarray:
        """Encode with the largest batch that fits: on out-of-memory the batch size halves and stays halved."""
        prompts = getattr(self.model, "prompts", {}) or {}
        prompt_name = role if prompts.get(role) else None
        inputs = model_inputs(self.model, texts, langs)
        while True:
            try:
                vectors = self.model.encode(  # type: ignore[attr-defined]
                    inputs,
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
    # (start-up: torch)
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def text_key(role: str, text: str, lang: str | None = None) -> str:
    """A text's cache key within one model and encoding: its role, its language when that is encoded, the text."""
    tagged = f"{role}\x00{text}" if lang is None else f"{role}\x00{lang}\x00{text}"
    return hashlib.blake2b(tagged.encode(), digest_size=16).hexdigest()


CORRUPT = ("SQLITE_CORRUPT", "SQLITE_NOTADB")  # a damaged file; the other errors (full, read-only, I/O) are the disk's


def _corrupt(exc: sqlite3.Error) -> bool:
    return getattr(exc, "sqlite_errorname", "") in CORRUPT


class EmbeddingCache:
    """SQLite store of embeddings keyed by (model fingerprint, encoding parameters, role, language, text): the `mode`
    column holds `params_key(encoding_params(...))`, the `key` column `text_key(role, text, lang)`.

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
    langs: Sequence[str] | None = None,
    mode: str = "sentence",
    cache: EmbeddingCache | None = None,
    bus: EventBus = NULL_BUS,
    chunk_size: int = 1024,
) -> tuple[np.ndarray, int]:
    """Embeddings aligned with `texts`; each distinct text is encoded at most once (zero times if cached).

    langs (aligned with texts): each text's language. An encoder that uses languages (mBART-50) encodes every text
    with its own language's code, and the same text in two languages is two items with two cache keys; for other
    encoders the language changes nothing and is ignored. Texts are sorted by length before encoding so batches
    hold similar lengths; chunks bound memory and feed progress events. Returns (matrix, number of texts actually
    encoded).
    """
    if langs is not None and len(langs) != len(texts):
        raise ValueError(f"{len(langs)} languages for {len(texts)} texts")
    tagged = langs is not None and uses_languages(encoder)
    items = list(zip(texts, langs, strict=True)) if tagged and langs is not None else [(t, "") for t in texts]
    unique = list(dict.fromkeys(items))
    keys = [text_key(role, t, x if tagged else None) for t, x in unique]
    variant = params_key(encoding_params(encoder, role, mode))
    cached = cache.get(encoder.fingerprint, variant, keys) if cache else {}
    todo = [i for i, k in enumerate(keys) if k not in cached]
    todo.sort(key=lambda i: len(unique[i][0]), reverse=True)
    vectors: dict[str, np.ndarray] = dict(cached)
    task = f"encode {'queries' if role == 'query' else role + 's'}"
    bus.progress(task, 0, len(todo))
    for start in range(0, len(todo), chunk_size):
        idx = todo[start : start + chunk_size]
        out = encode_texts(encoder, [unique[i][0] for i in idx], role, [unique[i][1] for i in idx] if tagged else None)
        fresh = {keys[i]: out[j] for j, i in enumerate(idx)}
        vectors.update(fresh)
        if cache:
            cache.put(encoder.fingerprint, variant, fresh)
        bus.progress(task, min(start + chunk_size, len(todo)), len(todo))
    if not unique:
        return np.zeros((0, 0), dtype=np.float32), 0
    position = {item: i for i, item in enumerate(unique)}
    matrix = np.stack([vectors[keys[i]] for i in range(len(unique))]).astype(np.float32, copy=False)
    return matrix[[position[item] for item in items]], len(todo)
