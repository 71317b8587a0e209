"""What a grid could detect (`power`, shown under the claims table) and how many seeds it would need (`plan`).

From the grid's own variances per setting (seed_test.Noise: the run variance pooled over its trained arms, the query
part of a difference averaged over their pairs): the minimum detectable effect (MDE) at 80% power of the seed-aware
test between two trained arms with the grid's seeds, at alpha 0.05 and at alpha / m (Holm's first step over the m
comparisons of the claims table), and against the untrained baseline; `plan_table` turns it around: the seeds per
arm needed to detect a given difference.
"""

from __future__ import annotations

import math
from pathlib import Path

from ..common.errors import ConfigError, UserError
from ..common.vocabulary import BASELINE, parse_arm
from ..evaluation.results import RANKDIST
from .arms import MAP_SETTINGS, OVERALL, SETTING_LABEL, Comparisons
from .seed_test import ALPHA, POWER, Noise, minimum_detectable_effect, seeds_needed
from .source import Source, load_source
from .table_rows import Group, Table, Value, groups, where_of

PLAN_MOST_SEEDS = 200


def _settings(group: Group) -> list[str]:
    sweep = any(parse_arm(s)[1] is not None for s in group.strategies)
    return [*MAP_SETTINGS, RANKDIST, *([OVERALL] if sweep else [])]


def _seeds(group: Group, trained: list[str]) -> int:
    return min(group.n_seeds(s) for s in trained)


def _noise(group: Group, tests: Comparisons, trained: list[str]) -> dict[str, Noise]:
    out = {}
    for setting in _settings(group):
        noise = tests.noise(setting, trained)
        if noise is not None:
            out[setting] = noise
    return out


def power_table(group: Group, tests: Comparisons, trained: list[str], comparisons: int = 1) -> Table | None:
    """The MDE per setting (module docstring); None when no trained arm has 2 seeds."""
    if not trained:
        return None
    noise = _noise(group, tests, trained)
    if not noise:
        return None
    seeds = max(_seeds(group, trained), 2)
    strict = ALPHA / max(comparisons, 1)
    rows: list[list[Value]] = []
    for setting, n in noise.items():
        rows.append(
            [
                SETTING_LABEL[setting],
                seeds,
                n.queries or None,
                math.sqrt(n.run_var),
                math.sqrt(n.query_var),
                minimum_detectable_effect(n.parts(seeds, seeds)),
                minimum_detectable_effect(n.parts(seeds, seeds), strict),
                minimum_detectable_effect(n.parts(seeds, None)) if BASELINE in group.strategies else None,
            ]
        )
    notes = [
        f"minimum detectable effect (MDE): the smallest true difference the seed-aware test finds with {POWER:.0%} "
        f"probability (two-sided), between two trained arms with {seeds} seeds each, at α {ALPHA} and at "
        f"α/{comparisons} (Holm's first step over the claims table's comparisons), and against the untrained "
        "baseline (one fixed model)",
        "from this grid's own variances: run SD = SD of one training run's macro value around its arm's mean "
        f"(pooled over {len(trained)} trained arms); query SD = SD of the query-sampling part of a difference (mean "
        "over pairs)",
        "a true difference below the MDE is more likely missed than found: 'inconclusive' then says little; "
        "`hbt-bench plan GRID --effect D` gives the seeds needed for a difference D",
    ]
    return Table(
        "power",
        f"What this grid can detect: {where_of(group)}",
        ["setting", "seeds", "n", "run SD", "query SD", f"MDE α {ALPHA}", f"MDE α/{comparisons}", "MDE vs none"],
        rows,
        notes,
        {"backbone": group.backbone, "dataset": group.dataset},
    )


def plan_table(group: Group, effect: float, target: float = POWER, alpha: float = ALPHA) -> Table | None:
    """Seeds per arm needed to detect `effect` per setting (None when no trained arm has 2 seeds)."""
    tests = Comparisons(group)
    trained = [s for s in group.strategies if s != BASELINE]
    noise = _noise(group, tests, trained) if trained else {}
    if not noise:
        return None
    seeds = max(_seeds(group, trained), 2)
    rows: list[list[Value]] = []
    for setting, n in noise.items():
        rows.append(
            [
                SETTING_LABEL[setting],
                seeds,
                minimum_detectable_effect(n.parts(seeds, seeds), alpha, target),
                seeds_needed(effect, n, alpha, target, PLAN_MOST_SEEDS),
                seeds_needed(effect, n, alpha, target, PLAN_MOST_SEEDS, fixed_rival=True),
            ]
        )
    notes = [
        f"seeds per arm for the seed-aware test to find a true difference of {effect:g} with {target:.0%} probability "
        f"(two-sided, α {alpha}), from this grid's variances (its queries kept): between two trained arms, and "
        "against the untrained baseline",
        f"–: more than {PLAN_MOST_SEEDS} seeds (the query part alone is too large: evaluate on more queries)",
        "Holm over m comparisons: plan with --alpha 0.05/m for the strictest step",
    ]
    return Table(
        "plan",
        f"Seeds needed for a difference of {effect:g}: {where_of(group)}",
        ["setting", "seeds now", f"MDE now ({target:.0%})", "seeds needed", "seeds needed vs none"],
        rows,
        notes,
        {"backbone": group.backbone, "dataset": group.dataset, "effect": effect},
    )


def plan_tables(path: str | Path | Source, effect: float, target: float = POWER, alpha: float = ALPHA) -> list[Table]:
    """`hbt-bench plan`: one plan table per backbone x dataset of a grid (a one-line error when it cannot plan)."""
    if not effect > 0:
        raise ConfigError(f"--effect must be positive, got {effect}")
    if not 0 < target < 1 or not 0 < alpha < 1:
        raise ConfigError(f"--power and --alpha must be in (0, 1), got {target} and {alpha}")
    source = path if isinstance(path, Source) else load_source(path)
    tables = [t for g in groups(source) if (t := plan_table(g, effect, target, alpha)) is not None]
    if not tables:
        raise UserError(f"{source.path}: no trained arm with 2 or more seeds: nothing to estimate the variance from")
    return tables
