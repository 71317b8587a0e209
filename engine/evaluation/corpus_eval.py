"""Monolingual retrieval against whole passage corpora (MIRACL as published: nDCG@10 and Recall@100 per language).

Per language: the queries are encoded in memory; the corpus is streamed into on-disk shards
(encoding.corpus_shards: sliced across ranks, resumable, kept under the cache folder keyed by the model fingerprint,
text mode and corpus files, so a second evaluation of the same model re-uses them) and searched one shard at a time
(retrieval.shards.search_pool: exact ranks of every relevant passage in the whole corpus). Metrics per query from
those ranks (evaluation.metrics), per language their mean, over languages their mean and median.

Sizes up front: before encoding, the corpus's passage count, the encode time estimated from a short measured sample
on this device, and the disk the shards will take are printed; above LARGE_S seconds the run stops with a one-line
error unless allowed (--yes, or allow_large = true in a preset's [run]).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..common.errors import ConfigError
from ..common.events import EvalDone, EventBus
from ..common.io import cache_dir
from ..data.benchmark import resolve_text_mode
from ..data.miracl import CorpusLanguage, CorpusTask, check_relevant_found
from ..encoding.corpus_shards import (
    CorpusOptions,
    CorpusShards,
    complete_shards,
    encode_corpus,
    encoding_key,
)
from ..encoding.encode import Encoder, encode_texts, encode_unique
from ..encoding.shard_files import MANIFEST
from ..retrieval.shards import search_pool
from . import metrics
from .results import (
    METRICS,
    N_QUERIES,
    DatasetResult,
    DatasetSummary,
    LanguageBlock,
    PairBlock,
    headline,
    query_key,
)

LARGE_S = float(os.environ.get("HBT_LARGE_CORPUS_S", 3600))  # estimated encode seconds that need --yes
SAMPLE = 64  # passages timed for the estimate (after a warm-up batch)
K = 10


@dataclass(frozen=True)
class Estimate:
    passages: int
    remaining: int  # passages not yet in complete shards
    encode_s: float  # estimated, for the remaining passages
    disk_bytes: int  # the whole shard set
    per_passage_s: float

    def line(self, where: str, device: str) -> str:
        return (
            f"{where}: {self.passages:,} passages ({self.remaining:,} to encode), about {_duration(self.encode_s)} "
            f"on {device} ({self.per_passage_s * 1e3:.2f} ms/passage measured), "
            f"{_size(self.disk_bytes)} of shards"
        )


def _size(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def measure_per_passage(encoder: Encoder, texts: list[str], role: str = "passage", lang: str | None = None) -> float:
    """Seconds per passage on this device (encoded as they will be, in `lang`): one warm-up batch, then the sample
    timed."""
    if not texts:
        return 0.0
    warm = texts[: min(8, len(texts))]
    encode_texts(encoder, warm, role, [lang] * len(warm) if lang else None)
    t0 = time.perf_counter()
    encode_texts(encoder, texts, role, [lang] * len(texts) if lang else None)
    return (time.perf_counter() - t0) / len(texts)


def estimate(
    passages: int, done_rows: int, per_passage_s: float, dim: int, dtype: str, id_bytes: float = 12.0
) -> Estimate:
    remaining = max(0, passages - done_rows)
    item = 2 if dtype == "float16" else 4
    disk = int(passages * (dim * item + id_bytes))
    return Estimate(passages, remaining, remaining * per_passage_s, disk, per_passage_s)


def shard_root(base: Path | None, key: dict[str, Any], *where: str) -> Path:
    """Where a corpus's shards live (`where`: task, language...): keyed like the embedding cache (the model, the
    encoding parameters, the passages' language where it is encoded) plus the corpus files."""
    digest = hashlib.blake2b(json.dumps(key, sort_keys=True).encode(), digest_size=8).hexdigest()
    return (base or cache_dir() / "corpus").joinpath(*where, digest)


def _device(encoder: Encoder) -> str:
    model = getattr(encoder, "model", None)
    return str(getattr(model, "device", "this device"))


def evaluate_corpus(task: CorpusTask, encoder: Encoder, options: CorpusOptions | None = None) -> DatasetResult:
    """Every language of `task` against its whole corpus; returns a results.DatasetResult."""

    o = options or CorpusOptions()
    text_mode, cache, bus, size, shard_dtype = o.text_mode, o.cache, o.bus, o.size, o.shard_dtype
    text_mode = resolve_text_mode(text_mode, task.auto_text_mode)
    t0 = time.perf_counter()
    per_language: dict[str, dict[str, float]] = {}
    per_query: dict[str, dict[str, float]] = {}
    corpus_info: dict[str, dict[str, Any]] = {}
    n_q = n_c = n_pool = 0
    t_encode = 0.0
    for part in task.languages:
        where = f"{task.name}/{part.lang}"
        qids = list(part.queries)
        t1 = time.perf_counter()
        bus.stage("encode", f"{where}: {len(qids)} queries")
        q_emb, n = encode_unique(
            encoder, [part.queries[q] for q in qids], "query", langs=[part.lang] * len(qids), mode=text_mode,
            cache=cache,
        )  # fmt: skip
        n_q += n
        shards, n = encode_language(task, part, encoder, o, rank=0, world_size=1)
        n_c += n
        t_encode += time.perf_counter() - t1
        if shards is None:  # a worker rank: its slice is on disk, rank 0 evaluates
            continue
        bus.stage("search", f"{where}: {shards.pool.n_rows:,} passages in {len(shards.pool.files)} shards")
        rows = shards.rows_of(set().union(set(), *part.relevant.values()))
        check_relevant_found(part.lang, part.corpus, part.relevant, rows)  # every judged passage is in the corpus
        n_relevant = sum(len(part.relevant[q]) for q in qids)
        bus.log(f"{where}: {len(qids)} queries, their {n_relevant} relevant passages all found among "
                f"{shards.pool.n_rows:,} passages")  # fmt: skip
        counts = part.counts
        if counts:
            bus.log(f"{where}: {counts['topics']} topics, {counts['judged_topics']} judged, "
                    f"{counts['topics_with_relevant']} with a relevant passage")  # fmt: skip
        if counts.get("judged_not_topics"):
            stray = counts["judged_not_topics"]
            bus.log(f"{where}: the qrels judge {len(stray)} query id(s) that are not topics (e.g. {stray[0]!r}): "
                    "their judgments are not used", "warning")  # fmt: skip
        # the queries are task.empty_topics' (keep: every judged topic, one without a relevant passage scores 0)
        rel = [np.array(sorted(rows[d] for d in part.relevant[q]), np.int64) for q in qids]
        found = search_pool(shards.pool, {part.lang: q_emb}, {part.lang: rel}, k=K, bus=bus)
        query_rows = [metrics.query_metrics(r, len(part.relevant[q])) for r, q in zip(found.ranks[part.lang], qids,
                                                                                     strict=True)]  # fmt: skip
        per_language[part.lang] = metrics.mean_metrics(query_rows)
        per_query[query_key("mono", part.lang)] = {
            f"{part.lang}:{q}": round(m["map"], 6) for q, m in zip(qids, query_rows, strict=True)
        }
        n_pool += shards.pool.n_rows
        corpus_info[part.lang] = {
            "passages": shards.pool.n_rows,
            "shards": str(shards.root),
            "queries": len(qids),
            "relevant_passages": n_relevant,
            "topics_without_relevant": sum(1 for q in qids if not part.relevant[q]),
            **part.counts,
        }
    summary = corpus_summary(task, per_language, corpus_info, n_pool, size, shard_dtype)
    summary.extra |= {"text_mode": text_mode, "empty_topics": task.empty_topics}
    summary.encoded = {"queries": n_q, "candidates": n_c}
    summary.timings = {"encode_s": round(t_encode, 3), "search_s": round(time.perf_counter() - t0 - t_encode, 3)}
    bus.emit(EvalDone(dataset=task.name, summary=headline(summary)))
    return DatasetResult(summary, per_query)


def language_root(
    task: CorpusTask, part: CorpusLanguage, encoder: Encoder, text_mode: str, size: int, dtype: str, base: Path | None
) -> Path:
    key = {**encoding_key(encoder, "passage", text_mode, part.lang), "dtype": dtype, "shard_size": size}
    return shard_root(base, key | part.corpus.signature(), task.name, part.lang)


def encode_language(
    task: CorpusTask,
    part: CorpusLanguage,
    encoder: Encoder,
    options: CorpusOptions,
    *,
    rank: int = 0,
    world_size: int = 1,
) -> tuple[CorpusShards | None, int]:
    """A language's corpus into its shard folder (sizes checked up front on rank 0); rank 0 gets the shards."""
    text_mode = resolve_text_mode(options.text_mode, task.auto_text_mode)
    shard_size, shard_dtype, bus = options.size, options.shard_dtype, options.bus
    where = f"{task.name}/{part.lang}"
    root = language_root(
        task, part, encoder, text_mode, shard_size, shard_dtype, Path(options.shard_dir) if options.shard_dir else None
    )
    if rank == 0 and not (root / MANIFEST).exists():
        _check_size(part, encoder, root, shard_size, shard_dtype, text_mode, where, options.allow_large, bus)
    bus.stage(
        "encode",
        f"{where}: corpus {part.corpus.describe()} -> {root}"
        + (f" (rank {rank}/{world_size})" if world_size > 1 else ""),
    )
    return encode_corpus(
        encoder, part.corpus.passages(text_mode), root, replace(options, text_mode=text_mode), lang=part.lang,
        key=part.corpus.signature(), rank=rank, world_size=world_size,
    )  # fmt: skip


def median(groups: dict[str, dict[str, float]]) -> dict[str, float]:
    """Median over languages of each metric (as the mean in metrics.macro, languages without queries left out)."""
    rows = [g for g in groups.values() if g.get(N_QUERIES, 0) > 0]
    out = {m: float(np.median([r[m] for r in rows])) if rows else 0.0 for m in METRICS}
    out[N_QUERIES] = int(sum(r[N_QUERIES] for r in rows))
    return out


def corpus_summary(
    task: CorpusTask,
    per_language: dict[str, dict[str, float]],
    corpus: dict[str, dict[str, Any]],
    n_pool: int,
    shard_size: int,
    shard_dtype: str,
) -> DatasetSummary:
    """The results block: monolingual only (per language, mean, median); the other settings stay empty."""
    return DatasetSummary(
        pool=task.pool,
        languages=sorted(per_language),
        n_queries=int(sum(m[N_QUERIES] for m in per_language.values())),
        n_candidates=n_pool,
        mono=LanguageBlock(per_language, metrics.macro(per_language.values()), median=median(per_language)),
        cross=PairBlock({}, metrics.macro([])),
        multi=LanguageBlock({}, metrics.macro([]), all=metrics.mean_metrics([])),
        corpus=corpus,
        search={"shard_size": shard_size, "shard_dtype": shard_dtype, "index": "exact", f"recall@{K}": 1.0},
    )


def _check_size(
    part: CorpusLanguage,
    encoder: Encoder,
    root: Path,
    shard_size: int,
    dtype: str,
    mode: str,
    where: str,
    allow_large: bool,
    bus: EventBus,
) -> None:
    """Print passages, estimated encode time and disk; stop above LARGE_S unless allowed."""
    bus.stage("estimate", f"{where}: counting passages in {part.corpus.describe()}")
    n = part.corpus.count()
    sample = [t for _, t in itertools.islice(part.corpus.passages(mode), SAMPLE)]
    dim = encode_texts(encoder, sample[:1], "passage", [part.lang]).shape[1] if sample else 0
    stop_if_large(
        n, root, shard_size, encoder, sample, dim, dtype, where, allow_large,
        "evaluate the judged pool (--eval-data miracl-judged)", bus, part.lang,
    )  # fmt: skip


def stop_if_large(
    n: int,
    root: Path,
    shard_size: int,
    encoder: Encoder,
    sample: list[str],
    dim: int,
    dtype: str,
    where: str,
    allow_large: bool,
    instead: str,
    bus: EventBus,
    lang: str | None = None,
) -> None:
    """The estimate line of encoding the n passages not yet in complete shards under `root` (MIRACL, XOR-Retrieve);
    a ConfigError above LARGE_S unless allowed, naming `instead` as the cheaper alternative."""
    done = sum(
        min(shard_size, n - j * shard_size) for j in _complete(root) if j * shard_size < n
    )  # rows already encoded (a resumed run)
    est = estimate(n, done, measure_per_passage(encoder, sample, lang=lang), dim, dtype)
    line = est.line(where, _device(encoder))
    bus.stage("estimate", line)
    if est.encode_s > LARGE_S and not allow_large:
        raise ConfigError(f"{line}: pass --yes (or allow_large = true in the preset's [run]) to start it, or {instead}")


def _complete(root: Path) -> set[int]:
    return complete_shards(root) if root.exists() else set()


__all__ = ["CorpusShards", "Estimate", "estimate", "evaluate_corpus", "measure_per_passage"]
