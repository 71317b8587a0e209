"""Report tables of a cross-lingual-only dataset (XOR-Retrieve: questions in X, passages in English).

Such a dataset has no monolingual or multilingual pool and no language bias, so instead of the per-language,
pair and bias tables it gets:
- `cross_language`: cross-lingual metric per query language X (X -> en) and strategy, with the macro row;
- `answer_recall`: the official R@2kt / R@5kt per query language and strategy, with the macro row.
"""

from __future__ import annotations

from ..evaluation.results import Pair, pair_label
from .table_rows import Getter, Group, Table, metric_label, metric_of, strategy_table, where_of

RECALL_KEYS = ("r@2kt", "r@5kt")


def is_cross_only(group: Group) -> bool:
    """The dataset's summaries carry XOR-Retrieve's answer recall (cross-lingual rows only)."""
    return any(s.is_cross_only for s in group.summaries())


def _pairs(group: Group) -> dict[str, Pair]:
    """query language -> its (query, candidate) pair (one candidate language per query language)."""
    pairs: dict[str, Pair] = {}
    for summary in group.summaries():
        for pair in summary.cross.per_pair:
            pairs.setdefault(pair[0], pair)
    return pairs


def cross_language_table(group: Group, metric: str = "map") -> Table:
    label = metric_label(metric)
    pairs = _pairs(group)

    def of(pair: Pair) -> Getter:
        return lambda s: metric_of(s.cross.per_pair.get(pair), metric)

    rows = [(pair_label(pairs[x]), of(pairs[x])) for x in sorted(pairs)]
    return strategy_table(
        group,
        "cross_language",
        f"Cross-lingual {label} per query language: {where_of(group)}",
        "pair",
        [*rows, ("macro", lambda s: s.macro("cross", metric))],
        [f"cross-lingual {label}: queries in X against the passages in the other language, gold passages known"],
        {"setting": "cross", "metric": metric},
    )


def answer_recall_table(group: Group, key: str) -> Table:
    """R@2kt or R@5kt (`key`) per query language (rows) and strategy (columns), with the macro row."""
    langs = dict.fromkeys(x for s in group.summaries() for x in s.recall_languages())

    def of(lang: str | None) -> Getter:
        return lambda s: s.recall(lang, key)

    budget = key.removeprefix("r@").removesuffix("kt")
    return strategy_table(
        group,
        "answer_recall",
        f"Answer recall {key.replace('r@', 'R@')} per query language: {where_of(group)}",
        "language",
        [(lang or "macro", of(lang)) for lang in [*sorted(langs), None]],
        [
            f"{key.replace('r@', 'R@')} (XOR-Retrieve's official metric): share of questions with a short answer "
            f"within the first {budget},000 NLTK tokens of the retrieved passages; yes/no questions left out; macro "
            "over languages"
        ],
        {"metric": key},
    )


def cross_only_tables(group: Group, metric: str = "map") -> list[Table]:
    return [cross_language_table(group, metric), *(answer_recall_table(group, k) for k in RECALL_KEYS)]


__all__ = ["answer_recall_table", "cross_language_table", "cross_only_tables", "is_cross_only"]
