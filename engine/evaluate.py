"""Zero-shot evaluation in three settings from ONE encoding of each unique text.

- monolingual: queries in X against the candidates in X, for each X;
- cross-lingual: queries in X against the candidates in Y, for every ordered pair X != Y;
- multilingual: every query against the pool of all selected languages (LAReQA), every parallel answer relevant.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hbt.engine import bias, metrics
from hbt.engine.data.benchmark import Benchmark
from hbt.engine.encode import EmbeddingCache, Encoder, encode_unique
from hbt.engine.events import NULL_BUS, EvalDone, EventBus
from hbt.engine.search import relevant_ranks, top_k

BIAS_K = 10


@dataclass
class DatasetResult:
    """Metrics of one benchmark in every setting, plus per-query AP (for paired significance tests)."""

    summary: dict[str, Any]
    per_query_ap: dict[str, dict[str, float]] = field(default_factory=dict)  # setting key -> query id -> AP


def _setting_metrics(
    ranks: list[np.ndarray], qids: list[str], ap_out: dict[str, float]
) -> tuple[dict[str, float], list[dict[str, float]]]:
    rows = []
    for qid, r in zip(qids, ranks, strict=True):
        if len(r) == 0:
            continue  # no relevant item in this pool (partly parallel data): the query does not count here
        m = metrics.query_metrics(r)
        ap_out[qid] = round(m["map"], 6)
        rows.append(m)
    return metrics.mean_metrics(rows), rows


def evaluate_benchmark(
    bench: Benchmark,
    encoder: Encoder,
    *,
    text_mode: str = "sentence",
    cache: EmbeddingCache | None = None,
    bus: EventBus = NULL_BUS,
) -> DatasetResult:
    t0 = time.perf_counter()
    bus.stage("encode", f"{bench.name}: {len(bench.queries)} queries, {len(bench.candidates)} candidates")
    q_emb, n_q = encode_unique(encoder, [q.text for q in bench.queries], "query", mode=text_mode, cache=cache, bus=bus)
    c_emb, n_c = encode_unique(
        encoder,
        [c.text(text_mode) for c in bench.candidates],
        "passage",
        mode=text_mode,
        cache=cache,
        bus=bus,
    )
    t_encode = time.perf_counter() - t0

    bus.stage("search", bench.name)
    langs = sorted({q.lang for q in bench.queries})
    pool_langs = sorted({c.lang for c in bench.candidates})
    cand_pos = {c.id: i for i, c in enumerate(bench.candidates)}
    cand_lang = np.array([pool_langs.index(c.lang) for c in bench.candidates])
    pools = {y: np.asarray(bench.candidate_indices(y), dtype=np.int64) for y in pool_langs}
    local = {y: {int(g): j for j, g in enumerate(idx)} for y, idx in pools.items()}

    per_query: dict[str, dict[str, float]] = {}
    mono: dict[str, dict[str, float]] = {}
    cross: dict[str, dict[str, float]] = {}
    multi: dict[str, dict[str, float]] = {}
    bias_rows: dict[str, dict[str, float]] = {}
    multi_rows: list[dict[str, float]] = []
    done, total = 0, len(langs) * (len(pool_langs) + 1)
    for x in langs:
        q_idx = [i for i, q in enumerate(bench.queries) if q.lang == x]
        qids = [bench.queries[i].id for i in q_idx]
        qx = q_emb[q_idx]
        rel_global = [np.array(sorted(cand_pos[c] for c in bench.qrels[q]), dtype=np.int64) for q in qids]
        for y in pool_langs:
            rel_local = [np.array([local[y][g] for g in r if g in local[y]], dtype=np.int64) for r in rel_global]
            ranks = relevant_ranks(qx, c_emb[pools[y]], rel_local)
            key = f"mono/{x}" if x == y else f"cross/{x}-{y}"
            ap: dict[str, float] = {}
            result, _ = _setting_metrics(ranks, qids, ap)
            if result["n_queries"]:
                per_query[key] = ap
                (mono if x == y else cross)[x if x == y else f"{x}-{y}"] = result
            done += 1
            bus.progress("search", done, total)
        ranks = relevant_ranks(qx, c_emb, rel_global)
        multi[x], rows = _setting_metrics(ranks, qids, per_query.setdefault(f"multi/{x}", {}))
        multi_rows += rows
        own_code = pool_langs.index(x)
        _, top = top_k(qx, c_emb, BIAS_K)
        share = bias.own_share(cand_lang[top], own_code)
        pool_share = float(np.mean(cand_lang == own_code))
        split = [
            (r[cand_lang[g] == own_code], r[cand_lang[g] != own_code]) for g, r in zip(rel_global, ranks, strict=True)
        ]
        bias_rows[x] = {
            f"own_share@{BIAS_K}": share,
            "pool_share": pool_share,
            f"own_excess@{BIAS_K}": share - pool_share,
            "rank_gap": bias.rank_gap(split),
        }
        done += 1
        bus.progress("search", done, total)
    t_total = time.perf_counter() - t0

    summary: dict[str, Any] = {
        "languages": langs,
        "n_queries": len(bench.queries),
        "n_candidates": len(bench.candidates),
        "monolingual": {"per_language": mono, "macro": metrics.macro(mono.values())},
        "cross_lingual": {"per_pair": cross, "macro": metrics.macro(cross.values())},
        "multilingual": {
            "per_language": multi,
            "macro": metrics.macro(multi.values()),
            "all": metrics.mean_metrics(multi_rows),
        },
        "language_bias": {
            "per_language": bias_rows,
            **bias.summarise(bias_rows, {x: m["map"] for x, m in multi.items()}),
        },
        "encoded": {"queries": n_q, "candidates": n_c},
        "timings": {"encode_s": round(t_encode, 3), "search_s": round(t_total - t_encode, 3)},
    }
    bus.emit(EvalDone(dataset=bench.name, summary=headline(summary)))
    return DatasetResult(summary, per_query)


def headline(summary: dict[str, Any]) -> dict[str, float]:
    return {
        "mono_map": summary["monolingual"]["macro"]["map"],
        "cross_map": summary["cross_lingual"]["macro"]["map"],
        "multi_map": summary["multilingual"]["macro"]["map"],
    }
