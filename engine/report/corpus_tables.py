"""Report tables of a monolingual corpus dataset (MIRACL: each language's queries against its own passage pool).

Its summaries name their pool ("full corpus" / "judged passages only"); there is no cross-lingual or multilingual
pool and no language bias, so instead of the per-language, pair and bias tables it gets one table per headline
metric of the paper (nDCG@10, Recall@100) and mAP: per language (rows) and strategy (columns), then the mean and the
median over languages. Every title names the pool (through tables._where).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hbt.engine.report.tables import Group, Table, Value, _ci_note, _where, metric_label

CORPUS_METRICS = ("ndcg@10", "recall@100", "map")


def pool_of(group: Group) -> str:
    """The pool the group's summaries were ranked against ('' for the pooled LAReQA-style datasets)."""
    for cells in group.by_strategy.values():
        for cell in cells:
            if pool := group.summary(cell).get("pool"):
                return str(pool)
    return ""


def is_monolingual_corpus(group: Group) -> bool:
    """MIRACL-like: a pool named and no multilingual setting (its per-language block is empty)."""
    if not pool_of(group):
        return False
    return all(
        not (group.summary(c).get("multilingual") or {}).get("per_language")
        for cells in group.by_strategy.values()
        for c in cells
    )


def _median(group: Group, strategy: str, metric: str) -> Value:
    def get(summary: dict[str, object]) -> float:
        per = summary["monolingual"]["per_language"]  # type: ignore[index]
        return float(np.median([m[metric] for m in per.values() if m.get("n_queries", 0) > 0]))

    return group.values(strategy, get)


def metric_table(group: Group, metric: str) -> Table:
    label = metric_label(metric)
    rows: list[list[Value]] = []
    for lang in group.languages:

        def get(d: dict[str, Any], x: str = lang) -> Any:
            return d["monolingual"]["per_language"][x][metric]

        rows.append([lang, *(group.values(s, get) for s in group.strategies)])
    rows.append(["mean", *(group.setting(s, "mono", metric) for s in group.strategies)])
    rows.append(["median", *(_median(group, s, metric) for s in group.strategies)])
    notes = [f"monolingual {label}: queries in X against the {pool_of(group)} of X; mean and median over languages"]
    if note := _ci_note(group):
        notes.append(note)
    return Table(
        f"corpus_{metric}",
        f"{label} per language: {_where(group)}",
        ["language", *group.strategies],
        rows,
        notes,
        {"backbone": group.backbone, "dataset": group.dataset, "setting": "mono", "metric": metric},
    )


def corpus_tables(group: Group) -> list[Table]:
    return [metric_table(group, m) for m in CORPUS_METRICS]
