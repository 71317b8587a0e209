"""Report tables of a cross-lingual-only dataset (XOR-Retrieve: questions in X, passages in English).

Such a dataset has no monolingual or multilingual pool and no language bias, so instead of the per-language,
pair and bias tables it gets:
- `cross_language`: cross-lingual metric per query language X (X -> en) and strategy, with the macro row;
- `answer_recall`: the official R@2kt / R@5kt per query language and strategy, with the macro row.
"""

from __future__ import annotations

from typing import Any

from hbt.engine.report.tables import Group, Table, Value, _ci_note, _where, metric_label

RECALL_KEYS = ("r@2kt", "r@5kt")


def is_cross_only(group: Group) -> bool:
    """The dataset's summaries carry XOR-Retrieve's answer recall (cross-lingual rows only)."""
    return any("answer_recall" in group.summary(c) for cells in group.by_strategy.values() for c in cells)


def _pair_keys(group: Group) -> dict[str, str]:
    """query language -> its 'X-Y' pair key (one candidate language per query language)."""
    keys: dict[str, str] = {}
    for cells in group.by_strategy.values():
        for cell in cells:
            for key in (group.summary(cell).get("cross_lingual") or {}).get("per_pair") or {}:
                keys.setdefault(str(key).partition("-")[0], str(key))
    return keys


def cross_language_table(group: Group, metric: str = "map") -> Table:
    label = metric_label(metric)
    pairs = _pair_keys(group)
    rows: list[list[Value]] = []
    for lang in sorted(pairs):

        def get(d: dict[str, Any], key: str = pairs[lang]) -> Any:
            return d["cross_lingual"]["per_pair"][key][metric]

        rows.append([pairs[lang], *(group.values(s, get) for s in group.strategies)])
    rows.append(["macro", *(group.setting(s, "cross", metric) for s in group.strategies)])
    notes = [f"cross-lingual {label}: queries in X against the passages in the other language, gold passages known"]
    if note := _ci_note(group):
        notes.append(note)
    return Table(
        "cross_language",
        f"Cross-lingual {label} per query language: {_where(group)}",
        ["pair", *group.strategies],
        rows,
        notes,
        {"backbone": group.backbone, "dataset": group.dataset, "setting": "cross", "metric": metric},
    )


def answer_recall_table(group: Group, key: str) -> Table:
    """R@2kt or R@5kt (`key`) per query language (rows) and strategy (columns), with the macro row."""
    langs: dict[str, None] = {}
    for cells in group.by_strategy.values():
        for cell in cells:
            for lang in (group.summary(cell).get("answer_recall") or {}).get("per_language") or {}:
                langs.setdefault(str(lang), None)

    def get(lang: str | None) -> Any:
        if lang is None:
            return lambda d: d["answer_recall"]["macro"][key]
        return lambda d: d["answer_recall"]["per_language"][lang][key]

    rows: list[list[Value]] = [
        [lang or "macro", *(group.values(s, get(lang)) for s in group.strategies)] for lang in [*sorted(langs), None]
    ]
    budget = key.removeprefix("r@").removesuffix("kt")
    notes = [
        f"{key.replace('r@', 'R@')} (XOR-Retrieve's official metric): share of questions with a short answer within "
        f"the first {budget},000 NLTK tokens of the retrieved passages; yes/no questions left out; macro over languages"
    ]
    if note := _ci_note(group):
        notes.append(note)
    return Table(
        "answer_recall",
        f"Answer recall {key.replace('r@', 'R@')} per query language: {_where(group)}",
        ["language", *group.strategies],
        rows,
        notes,
        {"backbone": group.backbone, "dataset": group.dataset, "metric": key},
    )


def cross_only_tables(group: Group, metric: str = "map") -> list[Table]:
    return [cross_language_table(group, metric), *(answer_recall_table(group, k) for k in RECALL_KEYS)]


__all__ = ["answer_recall_table", "cross_language_table", "cross_only_tables", "is_cross_only"]
