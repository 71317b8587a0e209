"""Table models of a run or grid directory (plain dataclasses; `export` renders them as md, csv, json, LaTeX, Rich).

For each backbone and evaluation dataset:
1. `summary`: strategy x setting (monolingual / cross-lingual / multilingual macro mAP), mean ± 95% CI over seeds,
   and the p-value of each trained strategy against the untrained `none` baseline in each setting.
2. `significance`: every comparison of the p-value rule below, with the mean per-query AP difference and p.
3. `per_language`: mAP per query language (rows) and strategy (columns), one table for mono, one for multi.
4. `pairs`: per strategy, the language-pair mAP matrix: query language rows x candidate language columns;
   the diagonal is monolingual (queries and candidates in X), the rest cross-lingual (queries X, candidates Y).
5. `bias`: language bias per strategy: the paper's rank distance (2408.10536 Table 2) first, then hbt's own
   own_excess@10, rank_gap, map_spread (see hbt.engine.evaluation.bias).
6. `claims`: verdicts on 2408.10536's claims (grids with xx, xy and hybrid; see hbt.engine.report.claims).

Significance rule (p-values, paired sign-flip randomization test on per-query AP, `stats.paired_permutation_test`):
- every trained strategy (xx, xy, hybrid, ...) against the `none` baseline of the same backbone;
- hybrid against xx and against xy (does mixing batch types beat each pure strategy?).
The unit is the query: mono and multi use each query's AP in that setting; cross uses each query's AP averaged
over its candidate languages. With several seeds each query's AP is first averaged over seeds. p-values are not
corrected for multiple comparisons. They are computed on AP, so they are only shown when the metric is mAP.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

from hbt.engine.common.errors import ConfigError
from hbt.engine.common.vocabulary import BASELINE, HYBRID_PARTS, paper_name, strategy_key
from hbt.engine.evaluation.results import (
    BIAS_KEYS,
    METRICS,
    SETTING_NAME,
    SETTINGS,
    DatasetSummary,
    Metrics,
    Setting,
    number,
    parse_query_key,
)
from hbt.engine.report.source import Cell, Source, load_source, require_results
from hbt.engine.report.stats import DEFAULT_RESAMPLES, MeanCI, PairedTest, average_over_seeds, mean_ci
from hbt.engine.report.stats import paired_permutation_test as _permutation_test

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


def comparisons(strategies: Sequence[str]) -> list[tuple[str, str]]:
    """The (a, b) pairs tested by the significance rule, among the strategies present."""
    present = set(strategies)
    out = [(s, BASELINE) for s in strategies if s != BASELINE and BASELINE in present]
    if "hybrid" in present:
        out += [("hybrid", other) for other in HYBRID_PARTS if other in present]
    return out


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

    def units(self, strategy: str, setting: str) -> dict[str, float] | None:
        """Per-query AP of `strategy` in `setting`, averaged over seeds; None without any per_query.json."""
        runs = [u for cell in self.by_strategy.get(strategy, []) if (u := self._cell_units(cell, setting))]
        return average_over_seeds(runs) if runs else None

    def _cell_units(self, cell: Cell, setting: str) -> dict[str, float] | None:
        doc = cell.per_query
        block = doc.get(self.dataset) if doc else None
        if not isinstance(block, dict):
            return None
        langs = self.languages
        acc: dict[str, list[float]] = defaultdict(list)
        try:
            for key, aps in block.items():
                kind, x, _ = parse_query_key(str(key), langs)
                if kind != setting or not isinstance(aps, dict):
                    continue
                for qid, ap in aps.items():
                    acc[f"{x}/{qid}"].append(float(ap))
        except (TypeError, ValueError):
            return None
        return {q: sum(v) / len(v) for q, v in acc.items()} or None


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
            for cell in sorted(mine, key=lambda c: (strategy_key(c.strategy), c.seed, c.id)):
                if dataset in cell.datasets:
                    by[cell.strategy].append(cell)
            out.append(Group(backbone, dataset, dict(by)))
    return out


class _Tests:
    """Paired tests of one group, computed once per (a, b, setting)."""

    def __init__(self, group: Group, resamples: int, seed: int) -> None:
        self.group = group
        self.resamples = resamples
        self.seed = seed
        self._cache: dict[tuple[str, str, str], PairedTest | None] = {}
        self._units: dict[tuple[str, str], dict[str, float] | None] = {}

    def units(self, strategy: str, setting: str) -> dict[str, float] | None:
        if (strategy, setting) not in self._units:
            self._units[strategy, setting] = self.group.units(strategy, setting)
        return self._units[strategy, setting]

    def __call__(self, a: str, b: str, setting: str) -> PairedTest | None:
        key = (a, b, setting)
        if key not in self._cache:
            ua, ub = self.units(a, setting), self.units(b, setting)
            test = None
            if ua is not None and ub is not None:
                test = _permutation_test(ua, ub, resamples=self.resamples, seed=self.seed)
            self._cache[key] = test
        return self._cache[key]


def _ci_note(group: Group) -> str | None:
    seeds = sorted({group.n_seeds(s) for s in group.strategies})
    if max(seeds) < 2:
        return None
    return "mean ± half-width of the 95% confidence interval over seeds (Student t); a single seed shows the mean"


def _where(group: Group) -> str:
    """'backbone on dataset', and the pool where the dataset names one (MIRACL: full corpus / judged passages)."""
    from hbt.engine.report.corpus_tables import pool_of

    pool = pool_of(group)
    return f"{group.backbone} on {group.dataset}" + (f" ({pool})" if pool else "")


def summary_table(group: Group, tests: _Tests | None, metric: str = "map") -> Table:
    label = metric_label(metric)
    pairs = comparisons(group.strategies)
    vs_base = tests is not None and any(b == BASELINE for _, b in pairs)
    columns = ["strategy", "seeds", *(f"{s} {label}" for s in SETTINGS)]
    if vs_base:
        columns += [f"p {s}" for s in SETTINGS]  # vs the none baseline (see the note)
    rows: list[list[Value]] = []
    for strategy in group.strategies:
        row: list[Value] = [strategy, group.n_seeds(strategy), *(group.setting(strategy, s, metric) for s in SETTINGS)]
        if vs_base and tests is not None:
            for s in SETTINGS:
                test = tests(strategy, BASELINE, s) if strategy != BASELINE else None
                row.append(test.p_value if test else None)
        rows.append(row)
    notes = [
        f"{label}: macro over query languages (mono), ordered language pairs (cross), query languages against the "
        "pool of all languages (multi)"
    ]
    if note := _ci_note(group):
        notes.append(note)
    named = [f"{s} = {paper_name(s)}" for s in group.strategies if paper_name(s) != s]
    if named:
        notes.append("strategies as the papers name them (LAReQA, 2408.10536): " + ", ".join(named))
    if vs_base:
        notes.append(
            "p: against the untrained baseline (none), two-sided paired sign-flip randomization test on per-query AP "
            f"({tests.resamples if tests else 0} resamples; queries averaged over seeds)"
        )
    return Table(
        "summary",
        f"{label} by strategy and setting: {_where(group)}",
        columns,
        rows,
        notes,
        {"backbone": group.backbone, "dataset": group.dataset, "metric": metric},
    )


def significance_table(group: Group, tests: _Tests) -> Table | None:
    pairs = comparisons(group.strategies)
    if not pairs:
        return None
    columns = ["comparison", "n"]
    for s in SETTINGS:
        columns += [f"Δ {s}", f"p {s}"]
    rows: list[list[Value]] = []
    for a, b in pairs:
        results = [tests(a, b, s) for s in SETTINGS]
        row: list[Value] = [f"{a} vs {b}", max((t.n for t in results if t), default=None)]
        for t in results:
            row += [t.mean_diff if t else None, t.p_value if t else None]
        rows.append(row)
    rule = [f"each trained strategy vs the untrained baseline ({BASELINE})"] if BASELINE in group.strategies else []
    if versus := [b for a, b in pairs if a == "hybrid" and b != BASELINE]:
        rule.append("hybrid vs " + " and vs ".join(versus))  # only the comparisons this grid has
    notes = [
        "rule: " + "; ".join(rule),
        "n: queries; Δ: mean over queries of (AP of the first - AP of the second); p: two-sided paired sign-flip "
        f"randomization test ({tests.resamples} resamples, seed {tests.seed}; exact when 2^n <= resamples), "
        "queries aligned by id, AP averaged over seeds; cross: each query's AP averaged over candidate languages; "
        "not corrected for multiple comparisons",
    ]
    if any(t is None for row in rows for t in row[3::2]):
        notes.append("–: per_query.json missing or unreadable for a strategy")
    return Table(
        "significance",
        f"Paired significance on per-query AP: {_where(group)}",
        columns,
        rows,
        notes,
        {"backbone": group.backbone, "dataset": group.dataset},
    )


Getter: TypeAlias = Callable[[DatasetSummary], Any]


def strategy_table(
    group: Group, key: str, title: str, first: str, rows: Sequence[tuple[str, Getter]], notes: list[str],
    meta: dict[str, Any],
) -> Table:  # fmt: skip
    """One value per row and strategy (mean ± CI over seeds): the one builder of every per-language table (here,
    corpus_tables, xor_tables). `rows`: (first cell, what to read from a cell's summary)."""
    body: list[list[Value]] = [[label, *(group.values(s, get) for s in group.strategies)] for label, get in rows]
    if note := _ci_note(group):
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


def per_language_table(group: Group, setting: Setting, metric: str = "map") -> Table:
    label = metric_label(metric)
    what = "queries in X against candidates in X" if setting == "mono" else "queries in X against the pool of all"
    return strategy_table(
        group,
        "per_language",
        f"{SETTING_NAME[setting].capitalize()} {label} per language: {_where(group)}",
        "language",
        language_rows(setting, metric, group.languages),
        [f"{SETTING_NAME[setting]}: {what}"],
        {"setting": setting, "metric": metric},
    )


def pair_table(group: Group, strategy: str, metric: str = "map") -> Table:
    label = metric_label(metric)
    langs = group.languages
    rows: list[list[Value]] = [[x, *(group.pair(strategy, x, y, metric) for y in langs)] for x in langs]
    notes = ["rows: query language; columns: candidate language; diagonal: monolingual, off-diagonal: cross-lingual"]
    if group.n_seeds(strategy) > 1:
        notes.append(f"mean ± 95% CI over {group.n_seeds(strategy)} seeds (Student t)")
    return Table(
        "pairs",
        f"Language-pair {label} ({strategy}): {_where(group)}",
        ["query lang", *langs],
        rows,
        notes,
        {"backbone": group.backbone, "dataset": group.dataset, "strategy": strategy, "metric": metric},
    )


def bias_table(group: Group) -> Table:
    rows: list[list[Value]] = [
        [s, group.n_seeds(s), *(group.bias(s, key) for key in BIAS_KEYS)] for s in group.strategies
    ]
    notes = [
        "rank_distance (2408.10536, Table 2): per query, max - min rank of its relevant answers (one per language) "
        "in the multilingual pool; mean per query language, then macro over languages (lower = less language bias)",
        "own_excess@10: share of the top 10 in the query's language minus its share of the pool (0 = no preference)",
        "rank_gap: mean rank of own-language relevant answers minus that of other-language ones (negative = own "
        "language first); map_spread: max - min multilingual mAP over query languages",
    ]
    if note := _ci_note(group):
        notes.append(note)
    return Table(
        "bias",
        f"Language bias (multilingual pool): {_where(group)}",
        ["strategy", "seeds", *BIAS_KEYS],
        rows,
        notes,
        {"backbone": group.backbone, "dataset": group.dataset},
    )


def _skipped_note(source: Source) -> str | None:
    skipped = source.skipped
    if not skipped:
        return None
    listed = ", ".join(f"{c.id} ({c.problem or c.status})" for c in skipped[:8])
    more = f" and {len(skipped) - 8} more" if len(skipped) > 8 else ""
    return f"left out {len(skipped)} cell(s) without results: {listed}{more}"


def build_tables(
    path: str | Path | Source,
    *,
    metric: str = "map",
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> list[Table]:
    """All tables of a run or grid directory (see the module docstring); a UserError if it is neither."""
    if metric not in METRICS:
        raise ConfigError(f"unknown metric {metric!r} (allowed: {', '.join(METRICS)})")
    source = path if isinstance(path, Source) else load_source(path)
    tables: list[Table] = []
    for group in groups(source):
        tests = _Tests(group, resamples, seed) if metric == "map" else None
        summary = summary_table(group, tests, metric)
        if note := _skipped_note(source):
            summary.notes.append(note)
        tables.append(summary)
        if tests is not None and (sig := significance_table(group, tests)):
            tables.append(sig)
        from hbt.engine.report.corpus_tables import corpus_tables, is_monolingual_corpus
        from hbt.engine.report.xor_tables import cross_only_tables, is_cross_only

        if is_cross_only(group):  # XOR-Retrieve: no mono / multi pool, no bias; cross-lingual + answer recall
            tables += cross_only_tables(group, metric)
        elif is_monolingual_corpus(group):  # MIRACL: nDCG@10, Recall@100, mAP per language, mean and median
            tables += corpus_tables(group)
        else:
            tables += [per_language_table(group, s, metric) for s in ("mono", "multi")]
            tables += [pair_table(group, s, metric) for s in group.strategies]
            tables.append(bias_table(group))
        if tests is not None:
            from hbt.engine.report.claims import claims_table

            if claims := claims_table(group, tests):
                tables.append(claims)
    return tables
