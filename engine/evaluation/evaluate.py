"""Zero-shot evaluation in three settings from ONE encoding of each unique text.

- monolingual: queries in X against the candidates in X, for each X;
- cross-lingual: queries in X against the candidates in Y, for every ordered pair X != Y;
- multilingual: every query against the pool of all selected languages (LAReQA), every parallel answer relevant.
"""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..common.events import NULL_BUS, EvalDone, EventBus
from ..data.benchmark import Benchmark, resolve_text_mode
from ..data.miracl import CorpusTask
from ..data.xor import XorTask, pool_notes
from ..encoding.corpus_shards import CorpusOptions
from ..encoding.encode import EmbeddingCache, Encoder, encode_unique
from ..encoding.shard_files import ShardedPool, encode_to_shards
from ..retrieval import ann
from ..retrieval.search import trec_order
from . import bias, metrics
from .corpus_eval import evaluate_corpus
from .language_pools import LanguagePools, setting_ranks
from .results import (
    BIAS_K,
    OWN_EXCESS,
    OWN_SHARE,
    POOL_SHARE,
    RANK_DISTANCE,
    RANK_GAP,
    BiasBlock,
    DatasetResult,
    DatasetSummary,
    LanguageBlock,
    Pair,
    PairBlock,
    headline,
    query_key,
)
from .xor_eval import benchmark_answer_recall, evaluate_xor
from .xor_metric import tokenizer


def _setting_metrics(
    ranks: list[np.ndarray], qids: list[str], ap_out: dict[str, float], keep_empty: bool = False
) -> tuple[dict[str, float], list[dict[str, float]]]:
    """Mean metrics over the queries; a query with no relevant item in the pool does not count (partly parallel
    data) unless keep_empty (judged topics without a relevant passage: scored 0, as trec_eval does)."""
    rows = []
    for qid, r in zip(qids, ranks, strict=True):
        if len(r) == 0 and not keep_empty:
            continue  # no relevant item in this pool (partly parallel data): the query does not count here
        m = metrics.query_metrics(r)
        ap_out[qid] = round(m["map"], 6)
        rows.append(m)
    return metrics.mean_metrics(rows), rows


@dataclass
class _Settings:
    """Every setting's metrics of one benchmark (the search half of evaluate_benchmark)."""

    mono: dict[str, dict[str, float]] = field(default_factory=dict)
    cross: dict[Pair, dict[str, float]] = field(default_factory=dict)
    multi: dict[str, dict[str, float]] = field(default_factory=dict)
    multi_rows: list[dict[str, float]] = field(default_factory=list)
    bias_rows: dict[str, dict[str, float]] = field(default_factory=dict)
    per_query: dict[str, dict[str, float]] = field(default_factory=dict)
    recall: float = 1.0  # of the approximate top-k against exact search


def evaluate_benchmark(
    bench: Benchmark | CorpusTask | XorTask,
    encoder: Encoder,
    *,
    text_mode: str = "auto",
    cache: EmbeddingCache | None = None,
    bus: EventBus = NULL_BUS,
    shard_size: int | None = None,
    index: str = "exact",
    shard_dtype: str = "float32",
    shard_dir: str | Path | None = None,
    allow_large: bool = False,
) -> DatasetResult:
    """All settings of one benchmark (a CorpusTask, e.g. MIRACL's full corpora: hbt.engine.evaluation.corpus_eval).

    shard_size: stream the candidate embeddings to on-disk shards of that many rows (in shard_dir, else a temporary
    folder) and search them one at a time: memory bounded by the shard, results identical to the in-memory path
    (shard_dtype float16 = the in-memory results on float16-rounded candidate vectors). index ivf | hnsw: the
    multilingual top-k (language bias) comes from that approximate index, and summary["search"] reports its
    recall@10 against exact search; ranks and every rank metric (mAP, ...) stay exact. text_mode `auto`: the
    dataset's own convention (Benchmark.auto_text_mode), recorded in the summary as `text_mode`. Every query and
    candidate is encoded with its own language (mBART-50's codes).
    """
    streamed = CorpusOptions(text_mode, cache, bus, shard_size, shard_dtype, shard_dir, allow_large)
    if isinstance(bench, XorTask) or (isinstance(bench, Benchmark) and bench.answers):
        tokenizer()  # XOR-Retrieve's R@kt tokeniser (NLTK's punkt tables) before anything is encoded
    if isinstance(bench, XorTask):  # XOR-Retrieve over its whole passage collection
        return evaluate_xor(bench, encoder, streamed)
    if isinstance(bench, CorpusTask):
        return evaluate_corpus(bench, encoder, streamed)
    t0 = time.perf_counter()
    bench = in_trec_order(bench)
    text_mode = resolve_text_mode(text_mode, bench.auto_text_mode)
    bus.stage("encode", f"{bench.name}: {len(bench.queries)} queries, {len(bench.candidates)} candidates")
    q_emb, n_q = encode_unique(
        encoder, [q.text for q in bench.queries], "query", langs=[q.lang for q in bench.queries], mode=text_mode,
        cache=cache, bus=bus,
    )  # fmt: skip
    texts = [c.text(text_mode) for c in bench.candidates]
    c_langs = [c.lang for c in bench.candidates]  # every text with its own language (mBART-50's codes)
    with contextlib.ExitStack() as stack:
        candidates: np.ndarray | ShardedPool
        if shard_size:
            root = shard_dir or stack.enter_context(tempfile.TemporaryDirectory(prefix="hbt-shards-"))
            candidates, n_c = encode_to_shards(
                encoder, texts, root, shard_size=shard_size, dtype=shard_dtype, mode=text_mode, langs=c_langs,
                cache=cache, bus=bus,
            )  # fmt: skip
        else:
            candidates, n_c = encode_unique(
                encoder, texts, "passage", langs=c_langs, mode=text_mode, cache=cache, bus=bus
            )
        t_encode = time.perf_counter() - t0
        bus.stage("search", bench.name)
        s = _search_settings(bench, q_emb, candidates, index, bus)
        answer_recall = None
        if bench.answers:  # XOR-Retrieve: the official R@2kt / R@5kt beside the rank metrics
            answer_recall = benchmark_answer_recall(bench, q_emb, candidates, bus)
    t_total = time.perf_counter() - t0

    summary = DatasetSummary(
        languages=sorted(set(s.multi) | {q.lang for q in bench.queries}),
        n_queries=len(bench.queries),
        n_candidates=len(bench.candidates),
        mono=LanguageBlock(s.mono, _macro(s.mono, bench.macro_excludes)),
        cross=PairBlock(s.cross, metrics.macro(s.cross.values())),
        multi=LanguageBlock(s.multi, _macro(s.multi, bench.macro_excludes), all=metrics.mean_metrics(s.multi_rows)),
        bias=BiasBlock(s.bias_rows, bias.summarise(s.bias_rows, {x: m["map"] for x, m in s.multi.items()})),
        encoded={"queries": n_q, "candidates": n_c},
        timings={"encode_s": round(t_encode, 3), "search_s": round(t_total - t_encode, 3)},
    )
    summary.extra["text_mode"] = text_mode
    if bench.macro_excludes:
        summary.extra["macro_excludes"] = list(bench.macro_excludes)
    summary.extra |= bench.notes  # what the dataset states about itself (TyDi's pool and macro rules, ...)
    if bench.pool:
        summary.pool = bench.pool
    if answer_recall is not None:  # XOR-Retrieve: comparable with published R@kt? gold passages known?
        summary.answer_recall = answer_recall
        with_gold = sum(1 for q in bench.queries if bench.qrels.get(q.id))
        summary.extra |= pool_notes(bool(bench.notes.get("sampled")), with_gold)
    if shard_size or index != "exact":
        summary.search = {
            "shard_size": shard_size,
            "shard_dtype": shard_dtype if shard_size else None,
            "index": index,
            f"recall@{BIAS_K}": s.recall,
        }
    bus.emit(EvalDone(dataset=bench.name, summary=headline(summary)))
    return DatasetResult(summary, s.per_query)


def _macro(per_language: dict[str, dict[str, float]], excludes: tuple[str, ...]) -> dict[str, float]:
    """The macro mean over query languages, leaving out `excludes` (TyDi QA averages its non-English languages)."""
    return metrics.macro(m for x, m in per_language.items() if x not in excludes)


def in_trec_order(bench: Benchmark) -> Benchmark:
    """The benchmark with its candidates in trec_eval's tie order (id descending), so that search's tie rule (equal
    scores by ascending row) ranks exactly as trec_eval / pytrec_eval do on the same scores."""
    order = trec_order([c.id for c in bench.candidates])
    if np.array_equal(order, np.arange(len(order))):
        return bench
    return dataclasses.replace(bench, candidates=[bench.candidates[i] for i in order], _by_lang={})


def _search_settings(
    bench: Benchmark, q_emb: np.ndarray, candidates: np.ndarray | ShardedPool, index: str, bus: EventBus
) -> _Settings:
    """Every setting's metrics from one LanguagePools view of the benchmark and its ranks (in memory: searched per
    setting; sharded: one pass over the shards up front), read by one loop."""
    pools = LanguagePools.of(bench)
    found = setting_ranks(pools, q_emb, candidates, k=BIAS_K, bus=bus)
    langs, pool_langs, cand_lang = pools.langs, pools.pool_langs, pools.cand_lang
    approx = None
    if index != "exact":
        bus.stage("index", f"{bench.name}: {index}")
        approx = ann.build_index(index, candidates)
    recall_sum = 0.0

    out = _Settings()
    done, total = 0, len(langs) * (len(pool_langs) + 1)
    for x in langs:
        qids = [bench.queries[i].id for i in pools.query_rows[x]]
        qx = q_emb[pools.query_rows[x]]
        rel_global = pools.relevant[x]
        for y in pool_langs:
            ranks = found.pair_ranks(x, y)
            key = query_key("mono", x) if x == y else query_key("cross", x, y)
            ap: dict[str, float] = {}
            result, _ = _setting_metrics(ranks, qids, ap, keep_empty=bench.keep_empty and x == y)
            if result["n_queries"]:
                out.per_query[key] = ap
                if x == y:
                    out.mono[x] = result
                else:
                    out.cross[x, y] = result
            done += 1
            bus.progress("search", done, total)
        if x not in pool_langs:  # no candidate in the query's language (XOR-Retrieve): cross-lingual rows only
            done += 1
            bus.progress("search", done, total)
            continue
        ranks = found.ranks(x)
        multi_ap = out.per_query.setdefault(query_key("multi", x), {})
        out.multi[x], rows = _setting_metrics(ranks, qids, multi_ap, keep_empty=bench.keep_empty)
        out.multi_rows += rows
        own_code = pools.code(x)
        top = found.top_ids(x)
        if approx is not None:
            exact_top, top = top, ann.search(approx, qx, BIAS_K)[1]
            recall_sum += ann.recall_at_k(top, exact_top, BIAS_K) * len(qx)
        share = bias.own_share(np.where(top >= 0, cand_lang[top], -1), own_code)  # -1: the ANN found no row
        pool_share = float(np.mean(cand_lang == own_code))
        split = [
            (r[cand_lang[g] == own_code], r[cand_lang[g] != own_code]) for g, r in zip(rel_global, ranks, strict=True)
        ]
        out.per_query[query_key("rankdist", x)] = {  # per-query rank distance: paired tests of the bias claim
            qid: float(r.max() - r.min()) for qid, r in zip(qids, ranks, strict=True) if len(r) >= 2
        }
        out.bias_rows[x] = {
            RANK_DISTANCE: bias.rank_distance(ranks),
            OWN_SHARE: share,
            POOL_SHARE: pool_share,
            OWN_EXCESS: share - pool_share,
            RANK_GAP: bias.rank_gap(split),
        }
        done += 1
        bus.progress("search", done, total)
    if approx is not None and bench.queries:
        out.recall = recall_sum / len(bench.queries)
    return out
