"""Report tables of a monolingual corpus dataset (MIRACL: each language's queries against its own passage pool).

Its summaries name their pool ("full corpus" / "judged passages only"); there is no cross-lingual or multilingual
pool and no language bias, so instead of the per-language, pair and bias tables it gets one table per headline
metric of the paper (nDCG@10, Recall@100) and mAP: per language (rows) and strategy (columns), then the mean and the
median over languages. Every title names the pool (through tables._where).
"""

from __future__ import annotations

from collections.abc import Callable

from ..evaluation.results import N_QUERIES, DatasetSummary, number
from .tables import Group, Table, _where, language_rows, metric_label, strategy_table

CORPUS_METRICS = ("ndcg@10", "recall@100", "map")


def pool_of(group: Group) -> str:
    """The pool the group's summaries were ranked against ('' for the pooled LAReQA-style datasets)."""
    return next((s.pool for s in group.summaries() if s.pool), "")


def is_monolingual_corpus(group: Group) -> bool:
    """MIRACL-like: a pool named and no multilingual setting (its per-language block is empty)."""
    return bool(pool_of(group)) and all(s.is_monolingual_corpus for s in group.summaries())


def _median(metric: str) -> Callable[[DatasetSummary], float | None]:
    """The median over languages the evaluation stored (corpus_eval.median); None when no language had queries."""

    def get(summary: DatasetSummary) -> float | None:
        m = summary.mono.median
        return number(m.get(metric)) if m and m.get(N_QUERIES) else None

    return get


def metric_table(group: Group, metric: str) -> Table:
    label = metric_label(metric)
    return strategy_table(
        group,
        f"corpus_{metric}",
        f"{label} per language: {_where(group)}",
        "language",
        [*language_rows("mono", metric, group.languages, total="mean"), ("median", _median(metric))],
        [f"monolingual {label}: queries in X against the {pool_of(group)} of X; mean and median over languages"],
        {"setting": "mono", "metric": metric},
    )


def corpus_tables(group: Group) -> list[Table]:
    return [metric_table(group, m) for m in CORPUS_METRICS]
