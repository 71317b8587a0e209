"""Report tables of a monolingual corpus dataset (MIRACL: each language's queries against its own passage pool).

Its summaries name their pool ("full corpus" / "judged passages only"); there is no cross-lingual or multilingual
pool and no language bias, so instead of the per-language, pair and bias tables it gets one table per headline
metric of the paper (nDCG@10, Recall@100) and mAP: per language (rows) and strategy (columns), then the mean and the
median over languages. Every title names the pool (through table_rows.where_of).
"""

from __future__ import annotations

from collections.abc import Callable

from ..evaluation.results import N_QUERIES, DatasetSummary, number
from .table_rows import Group, Table, language_rows, metric_label, pool_of, strategy_table, where_of

CORPUS_METRICS = ("ndcg@10", "recall@100", "map")


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
        f"{label} per language: {where_of(group)}",
        "language",
        [*language_rows("mono", metric, group.languages, total="mean"), ("median", _median(metric))],
        [f"monolingual {label}: queries in X against the {pool_of(group)} of X; mean and median over languages"],
        {"setting": "mono", "metric": metric},
    )


def corpus_tables(group: Group) -> list[Table]:
    return [metric_table(group, m) for m in CORPUS_METRICS]
