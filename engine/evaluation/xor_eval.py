"""XOR-Retrieve evaluation: questions in ar, bn, fi, ja, ko, ru, te against English passages (cross-lingual only).

Two pools (hbt.engine.data.xor):

- `--corpus-limit N` (an in-memory Benchmark: gold passages + N others): evaluate.evaluate_benchmark ranks it like any
  benchmark (cross_lingual "<x>-en" rows from the gold passages, where the questions file has them) and calls
  `benchmark_answer_recall` for the official R@2kt / R@5kt over the top DEPTH passages;
- the whole collection (an XorTask, ~18M passages for enwiki_20190201_w100.tsv): `evaluate_xor` streams the TSV
  into on-disk shards with encoding.corpus_shards.encode_corpus (rank r of a torchrun / accelerate launch encodes
  shards j with j % world_size == r; a restart skips complete shards; shards are kept under the cache keyed by model,
  text mode and collection file), searches them one shard at a time (retrieval.shards.search_pool: the top DEPTH
  per question and the exact rank of every gold passage), then streams the TSV once more for the texts of the
  retrieved passages (at most questions x DEPTH of them) to score R@kt.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..common.events import NULL_BUS, EvalDone, EventBus
from ..data.benchmark import Benchmark, passage_text, resolve_text_mode
from ..data.xor import PASSAGE_LANG, XorTask, check_gold_found, pool_notes
from ..encoding.corpus_shards import CorpusOptions, encode_corpus, encoding_key
from ..encoding.encode import Encoder, encode_unique
from ..encoding.shard_files import MANIFEST, ShardedPool
from ..retrieval.search import top_k
from ..retrieval.shards import search_pool
from . import metrics, xor_metric
from .corpus_eval import SAMPLE, shard_root, stop_if_large
from .results import DatasetResult, DatasetSummary, LanguageBlock, Pair, PairBlock, headline, query_key


def benchmark_answer_recall(
    bench: Benchmark, q_emb: np.ndarray, candidates: np.ndarray | ShardedPool, bus: EventBus = NULL_BUS
) -> dict[str, Any]:
    """R@kt of an in-memory benchmark with answers: the top DEPTH candidates of every query (exact search)."""
    depth = min(xor_metric.DEPTH, len(bench.candidates))
    if isinstance(candidates, ShardedPool):
        sets = {"all": q_emb}
        ids = search_pool(candidates, sets, k=depth, bus=bus).top_ids["all"]
    else:
        ids = top_k(q_emb, candidates, depth)[1]
    ranked = {
        q.id: [bench.candidates[int(i)].sentence for i in row if i >= 0]
        for q, row in zip(bench.queries, ids, strict=True)
    }
    return xor_metric.answer_recall(ranked, bench.answers, {q.id: q.lang for q in bench.queries})


def evaluate_xor(task: XorTask, encoder: Encoder, options: CorpusOptions | None = None) -> DatasetResult:
    """XOR-Retrieve over the whole collection; returns a results.DatasetResult (None-valued metrics on worker
    ranks, which only encode their slice of the shards)."""
    o = options or CorpusOptions()
    text_mode, cache, bus, size, shard_dir = (
        resolve_text_mode(o.text_mode, "sentence"),
        o.cache,
        o.bus,
        o.size,
        o.shard_dir,
    )
    shard_dtype, allow_large = o.shard_dtype, o.allow_large
    t0 = time.perf_counter()
    collection = task.collection
    key = {**encoding_key(encoder, "passage", text_mode, PASSAGE_LANG), "dtype": shard_dtype, "shard_size": size,
           **collection.signature()}  # fmt: skip
    root = shard_root(Path(shard_dir) if shard_dir else None, key, "xor-retrieve")
    queries = task.queries
    bus.stage("encode", f"{task.name}: {len(queries)} queries")
    q_emb, n_q = encode_unique(
        encoder, [q.text for q in queries], "query", langs=[q.lang for q in queries], mode=text_mode, cache=cache
    )
    if not (root / MANIFEST).exists():
        bus.stage("estimate", f"{task.name}: counting passages in {collection.describe()}")
        n = sum(1 for _ in collection.passages())
        sample = [passage_text(t, x, text_mode) for _, x, t in itertools.islice(collection.passages(), SAMPLE)]
        stop_if_large(
            n, root, size, encoder, sample, q_emb.shape[1], shard_dtype, task.name, allow_large,
            "evaluate a sample with --corpus-limit N (not comparable with published R@kt)", bus, PASSAGE_LANG,
        )  # fmt: skip
    bus.stage("encode", f"{task.name}: collection {collection.describe()} -> {root}")
    shards, n_c = encode_corpus(
        encoder, ((pid, passage_text(title, text, text_mode)) for pid, text, title in collection.passages()), root,
        replace(o, text_mode=text_mode), lang=PASSAGE_LANG, key=collection.signature(),
    )  # fmt: skip
    t_encode = time.perf_counter() - t0
    if shards is None:  # a worker rank: its slice is on disk, rank 0 searches
        return DatasetResult(DatasetSummary.worker({"queries": n_q, "candidates": n_c}))
    bus.stage("search", f"{task.name}: {shards.pool.n_rows:,} passages in {len(shards.pool.files)} shards")
    gold = {p for q in task.questions for p in q.gold}
    rows = shards.rows_of(gold)
    check_gold_found(collection, gold, rows)  # as with --corpus-limit (xor.limited_passages)
    langs = sorted({q.lang for q in queries})
    idx = {x: [i for i, q in enumerate(queries) if q.lang == x] for x in langs}
    rel = {
        x: [np.array(sorted(rows[p] for p in task.questions[i].gold if p in rows), np.int64) for i in ids]
        for x, ids in idx.items()
    }
    depth = min(xor_metric.DEPTH, shards.pool.n_rows)
    found = search_pool(shards.pool, {x: q_emb[ids] for x, ids in idx.items()}, rel, k=depth, bus=bus)
    cross: dict[Pair, dict[str, float]] = {}
    per_query: dict[str, dict[str, float]] = {}
    for x, ids in idx.items():
        scored = [(queries[i].id, r) for i, r in zip(ids, found.ranks[x], strict=True) if len(r)]
        if scored:
            rows_m = [metrics.query_metrics(r) for _, r in scored]
            cross[x, PASSAGE_LANG] = metrics.mean_metrics(rows_m)
            per_query[query_key("cross", x, PASSAGE_LANG)] = {
                q: round(m["map"], 6) for (q, _), m in zip(scored, rows_m, strict=True)
            }
    bus.stage("answer-recall", f"{task.name}: texts of the top {depth} passages")
    wanted = {int(r) for x in langs for r in found.top_ids[x].ravel() if r >= 0}
    row_text = _texts_of_rows(task, shards, wanted)
    ranked = {
        queries[i].id: [row_text[int(r)] for r in row if r >= 0]
        for x, ids in idx.items()
        for i, row in zip(ids, found.top_ids[x], strict=True)
    }
    answers = {queries[i].id: list(q.answers) for i, q in enumerate(task.questions)}
    recall = xor_metric.answer_recall(ranked, answers, {q.id: q.lang for q in queries})
    summary = DatasetSummary(
        pool=task.pool,
        languages=langs,
        n_queries=len(queries),
        n_candidates=shards.pool.n_rows,
        mono=LanguageBlock({}, metrics.macro([])),
        cross=PairBlock(cross, metrics.macro(cross.values())),
        multi=LanguageBlock({}, metrics.macro([]), all=metrics.mean_metrics([])),
        answer_recall=recall,
        corpus={"passages": shards.pool.n_rows, "shards": str(shards.root)},
        encoded={"queries": n_q, "candidates": n_c},
        search={"shard_size": size, "shard_dtype": shard_dtype, "index": "exact"},
        timings={"encode_s": round(t_encode, 3), "search_s": round(time.perf_counter() - t0 - t_encode, 3)},
        extra={"text_mode": text_mode, **pool_notes(False, sum(1 for q in task.questions if q.gold))},
    )
    bus.emit(EvalDone(dataset=task.name, summary=headline(summary)))
    return DatasetResult(summary, per_query)


def _texts_of_rows(task: XorTask, shards: Any, wanted: set[int]) -> dict[int, str]:
    """Passage text of each wanted row: the row's id from the shard id files, then one streamed pass of the TSV."""
    row_id: dict[int, str] = {}
    for row, pid in enumerate(shards.iter_ids()):
        if row in wanted:
            row_id[row] = pid
    by_id = {pid: row for row, pid in row_id.items()}
    texts: dict[int, str] = {}
    for pid, text, _ in task.collection.passages():
        if pid in by_id:
            texts[by_id[pid]] = text
    return texts


__all__ = ["benchmark_answer_recall", "evaluate_xor"]
