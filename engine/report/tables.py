"""Table models of a run or grid directory (plain dataclasses; `export` renders them as md, csv, json, LaTeX, Rich).

For each backbone and evaluation dataset:
1. `summary`: arm x setting (monolingual / cross-lingual / multilingual macro mAP), mean ± 95% CI over seeds, and
   the p-value of each trained arm against the untrained `none` baseline in each setting.
2. `significance`: every comparison of the rule below, with the difference, its 95% CI and p.
3. `per_language`: mAP per query language (rows) and arm (columns), one table for mono, one for multi.
4. `pairs`: per arm, the language-pair mAP matrix: query language rows x candidate language columns;
   the diagonal is monolingual (queries and candidates in X), the rest cross-lingual (queries X, candidates Y).
5. `bias`: language bias per arm: the paper's rank distance (2408.10536 Table 2) first, then hbt's own
   own_excess@10, rank_gap, map_spread (see hbt.engine.evaluation.bias).
6. `claims` and `power`: verdicts on 2408.10536's claims and what the grid could detect (hbt.engine.report.claims).

An arm is a strategy (xx, xy, hybrid, ...), or in an alpha sweep one hybrid_p value ('hybrid-a0.25').

Significance rule (p-values: the seed-aware test of `seed_test`, training runs and queries both random):
- every trained arm against the `none` baseline of the same backbone;
- hybrid against X-X-mono and against X-Y (in an alpha sweep: the alpha = 0.5 arm against alpha 1 and 0);
- in an alpha sweep, every other alpha against alpha = 0.5.
The tables' p-values are not corrected for multiple comparisons (the claims table's are, Holm). An arm with fewer than
2 seeds has no p-value (one trained model says nothing about its strategy). They are computed on mAP only.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..common.errors import ConfigError
from ..common.vocabulary import BASELINE, PAPER_ALPHA, paper_arms, paper_name, parse_arm
from ..evaluation.results import (
    BIAS_KEYS,
    METRICS,
    SETTING_NAME,
    SETTINGS,
    Setting,
)
from .arms import OVERALL, Comparisons, run_value
from .claims import claims_tables
from .corpus_tables import corpus_tables, is_monolingual_corpus
from .seed_test import SeedTest
from .source import Source, load_source
from .stats import MeanCI
from .table_rows import (
    Group,
    Table,
    Value,
    ci_note,
    groups,
    language_rows,
    metric_label,
    strategy_table,
    where_of,
)
from .xor_tables import cross_only_tables, is_cross_only


def comparisons(strategies: Sequence[str]) -> list[tuple[str, str]]:
    """The (a, b) pairs tested by the significance rule (module docstring), among the arms present."""
    present = list(strategies)
    out = [(s, BASELINE) for s in present if s != BASELINE and BASELINE in present]
    roles = paper_arms(present)
    if "hybrid" in roles:
        out += [(roles["hybrid"], roles[r]) for r in ("xx", "xy") if r in roles and roles[r] != roles["hybrid"]]
    sweep = [s for s in present if parse_arm(s)[1] is not None]
    paper = next((s for s in sweep if parse_arm(s)[1] == PAPER_ALPHA), None)
    if paper is not None:
        out += [(s, paper) for s in sweep if s != paper and (paper, s) not in out and (s, paper) not in out]
    return out


SEED_TEST_NOTE = (
    "seed-aware test: training runs (seeds) and queries both random (crossed random-effects model, Student t with "
    "Satterthwaite degrees of freedom; docs/statistics.md); –: an arm with fewer than 2 seeds (one trained model "
    "says nothing about its strategy)"
)


def difference(test: SeedTest | None) -> MeanCI | None:
    """A test's difference a - b with the half-width of its 95% CI (None without a CI: the bare difference)."""
    if test is None:
        return None
    return MeanCI(test.effect, test.half_width, min(test.seeds))


def summary_table(group: Group, tests: Comparisons | None, metric: str = "map") -> Table:
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
                row.append(test.p if test else None)
        rows.append(row)
    notes = [
        f"{label}: macro over query languages (mono), ordered language pairs (cross), query languages against the "
        "pool of all languages (multi)"
    ]
    if note := ci_note(group):
        notes.append(note)
    named = [f"{s} = {paper_name(s)}" for s in group.strategies if paper_name(s) != s]
    if named:
        notes.append("strategies as the papers name them (LAReQA, 2408.10536): " + ", ".join(named))
    if vs_base:
        notes.append(f"p: against the untrained baseline (none), two-sided; {SEED_TEST_NOTE}; not corrected for "
                     "multiple comparisons")  # fmt: skip
    return Table(
        "summary",
        f"{label} by strategy and setting: {where_of(group)}",
        columns,
        rows,
        notes,
        {"backbone": group.backbone, "dataset": group.dataset, "metric": metric},
    )


def significance_table(group: Group, tests: Comparisons) -> Table | None:
    pairs = comparisons(group.strategies)
    if not pairs:
        return None
    columns = ["comparison", "seeds", "n"]
    for s in SETTINGS:
        columns += [f"Δ {s}", f"p {s}"]
    rows: list[list[Value]] = []
    for a, b in pairs:
        results = [tests(a, b, s) for s in SETTINGS]
        known = [t for t in results if t is not None]
        seeds = f"{known[0].seeds[0]} vs {known[0].seeds[1]}" if known else None
        row: list[Value] = [f"{a} vs {b}", seeds, max((t.queries for t in known), default=None) or None]
        for t in results:
            row += [difference(t), t.p if t else None]
        rows.append(row)
    rule = [f"each trained strategy vs the untrained baseline ({BASELINE})"] if BASELINE in group.strategies else []
    if versus := [f"{a} vs {b}" for a, b in pairs if b != BASELINE]:
        rule.append(", ".join(versus))  # only the comparisons this grid has
    notes = [
        "rule: " + "; ".join(rule),
        "Δ: difference of the macro mAP (first - second, mean over seeds) ± half-width of its 95% CI; p: two-sided; "
        f"{SEED_TEST_NOTE}; seeds: runs of each arm (none: one fixed model); n: queries; not corrected for multiple "
        "comparisons (the claims table is)",
    ]
    if any(row[4] is None for row in rows):
        notes.append("–: an arm with fewer than 2 seeds, or without the setting")
    return Table(
        "significance",
        f"Strategy comparisons (seed-aware): {where_of(group)}",
        columns,
        rows,
        notes,
        {"backbone": group.backbone, "dataset": group.dataset},
    )


def per_language_table(group: Group, setting: Setting, metric: str = "map") -> Table:
    label = metric_label(metric)
    what = "queries in X against candidates in X" if setting == "mono" else "queries in X against the pool of all"
    return strategy_table(
        group,
        "per_language",
        f"{SETTING_NAME[setting].capitalize()} {label} per language: {where_of(group)}",
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
        f"Language-pair {label} ({strategy}): {where_of(group)}",
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
    if note := ci_note(group):
        notes.append(note)
    return Table(
        "bias",
        f"Language bias (multilingual pool): {where_of(group)}",
        ["strategy", "seeds", *BIAS_KEYS],
        rows,
        notes,
        {"backbone": group.backbone, "dataset": group.dataset},
    )


def alpha_table(group: Group) -> Table | None:
    """An alpha sweep: per alpha (hybrid_p), mono / cross / multi / overall macro mAP and rank distance, mean ± 95% CI
    over seeds; None unless the group has two or more alpha arms."""
    sweep = sorted((alpha, arm) for arm in group.strategies if (alpha := parse_arm(arm)[1]) is not None)
    if len(sweep) < 2:
        return None
    rows: list[list[Value]] = []
    for alpha, arm in sweep:
        rows.append(
            [
                f"{alpha:g}",
                group.n_seeds(arm),
                *(group.setting(arm, s) for s in SETTINGS),
                group.values(arm, lambda summary: run_value(summary, OVERALL)),
                group.bias(arm, "rank_distance"),
            ]
        )
    notes = [
        "α = P(X-X-mono batch) of the hybrid sampler: α = 0 is X-Y, α = 1 X-X-mono batches (2408.10536 sweeps α in "
        "[0, 1] and reports α = 0.5 best, stable for 0.4-0.6); overall = mean of mono, cross and multi mAP",
        "mean ± half-width of the 95% confidence interval over seeds (Student t); the claims table tests the α claims",
    ]
    return Table(
        "alpha",
        f"α sweep: {where_of(group)}",
        ["α", "seeds", *(f"{s} mAP" for s in SETTINGS), "overall mAP", "rank_distance"],
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
    margin: float | None = None,
) -> list[Table]:
    """All tables of a run or grid directory (see the module docstring); a UserError if it is neither. `margin`: the
    claims' non-inferiority margin (None: the grid's, else claims.DEFAULT_MARGIN)."""
    if metric not in METRICS:
        raise ConfigError(f"unknown metric {metric!r} (allowed: {', '.join(METRICS)})")
    source = path if isinstance(path, Source) else load_source(path)
    tables: list[Table] = []
    for group in groups(source):
        tests = Comparisons(group) if metric == "map" else None
        summary = summary_table(group, tests, metric)
        if note := _skipped_note(source):
            summary.notes.append(note)
        tables.append(summary)
        if tests is not None and (sig := significance_table(group, tests)):
            tables.append(sig)
        if is_cross_only(group):  # XOR-Retrieve: no mono / multi pool, no bias; cross-lingual + answer recall
            tables += cross_only_tables(group, metric)
        elif is_monolingual_corpus(group):  # MIRACL: nDCG@10, Recall@100, mAP per language, mean and median
            tables += corpus_tables(group)
        else:
            tables += [per_language_table(group, s, metric) for s in ("mono", "multi")]
            tables += [pair_table(group, s, metric) for s in group.strategies]
            tables.append(bias_table(group))
            if alpha := alpha_table(group):
                tables.append(alpha)
        if tests is not None:
            tables += claims_tables(group, tests, margin if margin is not None else source.margin)
    return tables
