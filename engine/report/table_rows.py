"""What every report table is built from: the table type (`Table`, its `Value`s), the cells of one backbone on one
dataset (`Group`, `groups`) and the row builders of the per-language tables (`strategy_table`, `language_rows`).
Below `tables`, `corpus_tables`, `xor_tables`, `claims`, `power_tables` and `published`, which all use them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from ..common.vocabulary import strategy_key
from ..evaluation.results import DatasetSummary, Metrics, Setting, number
from .source import Cell, Source, require_results
from .stats import MeanCI, mean_ci

Value: TypeAlias = str | int | float | MeanCI | None


@dataclass
class Table:
    """A rendered-agnostic table: title, column names, rows of values (str, number, MeanCI or None), notes."""

    key: str  # summary | significance | per_language | pairs | bias
    title: str
    columns: list[str]
    rows: list[list[Value]]
    notes: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)  # backbone, dataset, setting, strategy
    totals: int = 0  # trailing summary rows (macro, mean, median): Rich sets them apart in bold

    def column(self, name: str) -> list[Value]:
        i = self.columns.index(name)
        return [row[i] for row in self.rows]

    def row(self, first: str) -> list[Value]:
        """The row whose first cell is `first` (KeyError when absent)."""
        for r in self.rows:
            if r and r[0] == first:
                return r
        raise KeyError(first)

    def cell(self, first: str, column: str) -> Value:
        return self.row(first)[self.columns.index(column)]


def metric_of(metrics: Metrics | None, metric: str) -> float | None:
    """One metric of a metrics block, None when the block or the metric is absent."""
    return None if metrics is None else metrics.get(metric)


def metric_label(metric: str) -> str:
    return "mAP" if metric == "map" else metric


@dataclass
class Group:
    """The cells of one backbone evaluated on one dataset, by strategy (seeds sorted)."""

    backbone: str
    dataset: str
    by_strategy: dict[str, list[Cell]]

    @property
    def strategies(self) -> list[str]:
        return list(self.by_strategy)

    @property
    def languages(self) -> list[str]:
        langs: dict[str, None] = {}
        for summary in self.summaries():
            for lang in summary.languages:
                langs.setdefault(lang, None)
        return list(langs)

    def summary(self, cell: Cell) -> DatasetSummary | None:
        return cell.datasets.get(self.dataset)

    def summaries(self) -> list[DatasetSummary]:
        """Every cell's summary of this dataset, strategies in order."""
        return [s for cells in self.by_strategy.values() for c in cells if (s := self.summary(c)) is not None]

    def values(self, strategy: str, get: Callable[[DatasetSummary], Any]) -> MeanCI | None:
        """Mean ± CI over the seeds of `strategy` of get(dataset summary); seeds lacking the value (None) are left
        out."""
        xs = []
        for cell in self.by_strategy.get(strategy, []):
            summary = self.summary(cell)
            try:
                v = get(summary) if summary is not None else None
            except (KeyError, TypeError, IndexError):  # a validated summary without this value (an older writer)
                continue
            if (x := number(v)) is not None:
                xs.append(x)
        return mean_ci(xs) if xs else None

    def setting(self, strategy: str, setting: Setting, metric: str = "map") -> MeanCI | None:
        """The setting's macro metric; a setting without queries is None (shown missing, not 0.0)."""
        return self.values(strategy, lambda s: s.macro(setting, metric))

    def pair(self, strategy: str, x: str, y: str, metric: str = "map") -> MeanCI | None:
        return self.values(strategy, lambda s: metric_of(s.pair(x, y), metric))

    def bias(self, strategy: str, key: str) -> MeanCI | None:
        return self.values(strategy, lambda s: s.bias.overall.get(key))

    def n_seeds(self, strategy: str) -> int:
        return len(self.by_strategy.get(strategy, []))


def pool_of(group: Group) -> str:
    """The pool the group's summaries were ranked against ('' for the pooled LAReQA-style datasets)."""
    return next((s.pool for s in group.summaries() if s.pool), "")


def groups(source: Source) -> list[Group]:
    """One group per backbone and evaluation dataset, over the cells with results."""
    out = []
    cells = require_results(source)
    for backbone in dict.fromkeys(c.backbone for c in cells):
        mine = [c for c in cells if c.backbone == backbone]
        names: dict[str, None] = {}
        for cell in mine:
            for name in cell.datasets:
                names.setdefault(name, None)
        for dataset in names:
            by: dict[str, list[Cell]] = defaultdict(list)
            for cell in sorted(mine, key=lambda c: (strategy_key(c.arm), c.seed, c.id)):
                if dataset in cell.datasets:
                    by[cell.arm].append(cell)
            out.append(Group(backbone, dataset, dict(by)))
    return out


def ci_note(group: Group) -> str | None:
    seeds = sorted({group.n_seeds(s) for s in group.strategies})
    if max(seeds) < 2:
        return None
    return "mean ± half-width of the 95% confidence interval over seeds (Student t); a single seed shows the mean"


def where_of(group: Group) -> str:
    """'backbone on dataset', and the pool where the dataset names one (MIRACL: full corpus / judged passages)."""
    pool = pool_of(group)
    return f"{group.backbone} on {group.dataset}" + (f" ({pool})" if pool else "")


Getter: TypeAlias = Callable[[DatasetSummary], Any]


def strategy_table(
    group: Group, key: str, title: str, first: str, rows: Sequence[tuple[str, Getter]], notes: list[str],
    meta: dict[str, Any],
) -> Table:  # fmt: skip
    """One value per row and strategy (mean ± CI over seeds): the one builder of every per-language table (here,
    corpus_tables, xor_tables). `rows`: (first cell, what to read from a cell's summary)."""
    body: list[list[Value]] = [[label, *(group.values(s, get) for s in group.strategies)] for label, get in rows]
    if note := ci_note(group):
        notes = [*notes, note]
    meta = {"backbone": group.backbone, "dataset": group.dataset, **meta}
    return Table(key, title, [first, *group.strategies], body, notes, meta)


def language_rows(
    setting: Setting, metric: str, langs: Sequence[str], total: str = "macro"
) -> list[tuple[str, Getter]]:
    """Rows of `metric` per query language in `setting`, then the setting's macro row (labelled `total`)."""

    def of(lang: str) -> Getter:
        return lambda s: metric_of(s.language(setting, lang), metric)

    return [*((lang, of(lang)) for lang in langs), (total, lambda s: s.macro(setting, metric))]
