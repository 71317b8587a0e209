"""Synthetic grids with known variance parts: how often the seed-aware test rejects (type-I error, power).

A scenario draws two strategies' runs from the model of `seed_test` (query difficulty, strategy x query, training
run, run x query noise; optionally clipped to [0, 1] like AP) with a known difference. `rejection_rate` runs the
test on many such grids; `stated_power` is what `seed_test.power` promises for the scenario's true variances. The
test suite checks the two against each other; `python -m hbt.engine.report.simulate` prints the table quoted in
docs/statistics.md, beside two tests that ignore a source of variance (a query-level paired t-test on
seed-averaged values, i.e. a fixed-model comparison, and a hierarchical bootstrap over seeds then queries).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import stats as scipy_stats

from .seed_test import (
    ALPHA,
    MAX_DF,
    ArmSample,
    Parts,
    degrees_of_freedom,
    minimum_detectable_effect,
    power,
    seed_test,
)


@dataclass(frozen=True)
class Scenario:
    """Two strategies, A (seeds[0] runs) and B (seeds[1] runs, or one fixed model), on langs x per_lang queries."""

    name: str
    seeds: tuple[int, int] = (3, 3)
    langs: int = 3
    per_lang: int = 100
    effect: float = 0.0
    run_sd: float = 0.01  # training run (seed)
    query_sd: float = 0.15  # query difficulty (cancels in a difference)
    inter_sd: float = 0.03  # strategy x query
    noise_sd: float = 0.08  # run x query
    same_strategy: bool = False  # B is A relabelled: no strategy x query difference
    fixed_b: bool = False  # B is one fixed model (the untrained baseline): no run effect, no run x query noise
    clip: bool = False  # values clipped to [0, 1], as AP

    @property
    def queries(self) -> int:
        return self.langs * self.per_lang

    def strata(self) -> np.ndarray:
        return np.repeat([f"l{i}" for i in range(self.langs)], self.per_lang)

    def true_parts(self) -> Parts:
        """The variance parts of the difference under this scenario (no clipping)."""
        sum_w2 = 1.0 / self.queries  # equal strata: sum of squared macro weights
        run_var = self.run_sd**2 + self.noise_sd**2 * sum_w2
        runs = [self.seeds[0]] if self.fixed_b else list(self.seeds)
        inter = 0.0 if self.same_strategy else 2 * self.inter_sd**2 * sum_w2
        dof = float(sum(s - 1 for s in runs))
        return Parts(run_var * sum(1.0 / s for s in runs), dof, inter, float(self.queries - self.langs))

    def draw(self, rng: np.random.Generator) -> tuple[ArmSample, ArmSample, np.ndarray]:
        q = self.queries
        difficulty = rng.normal(0.5, self.query_sd, q)
        inter_a = rng.normal(0, self.inter_sd, q)
        inter_b = inter_a if self.same_strategy else rng.normal(0, self.inter_sd, q)
        strata = self.strata()
        arms = []
        for k, (runs, inter, shift) in enumerate(
            ((self.seeds[0], inter_a, self.effect), (self.seeds[1], inter_b, 0.0))
        ):
            fixed = k == 1 and self.fixed_b
            n = 1 if fixed else runs
            run = np.zeros(n) if fixed else rng.normal(0, self.run_sd, n)
            noise = np.zeros((n, q)) if fixed else rng.normal(0, self.noise_sd, (n, q))
            y = shift + difficulty + inter + run[:, None] + noise
            if self.clip:
                y = np.clip(y, 0.0, 1.0)
            macro = np.mean([y[:, strata == s].mean(axis=1) for s in np.unique(strata)], axis=0)
            arms.append(ArmSample(macro, y, fixed))
        return arms[0], arms[1], strata


def stated_power(scenario: Scenario, alpha: float = ALPHA) -> float:
    return power(scenario.effect, scenario.true_parts(), alpha)


def stated_mde(scenario: Scenario, alpha: float = ALPHA) -> float:
    return minimum_detectable_effect(scenario.true_parts(), alpha)


def rejection_rate(scenario: Scenario, reps: int = 2000, seed: int = 0, alpha: float = ALPHA) -> float:
    """Share of `reps` simulated grids on which the seed-aware test rejects D = 0 at level alpha."""
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(reps):
        a, b, strata = scenario.draw(rng)
        test = seed_test(a, b, strata)
        hits += test.p is not None and test.p < alpha
    return hits / reps


def fixed_model_rate(scenario: Scenario, reps: int = 2000, seed: int = 0, alpha: float = ALPHA) -> float:
    """The same for a query-level paired t-test on seed-averaged values (treats the trained models as fixed)."""
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(reps):
        a, b, _ = scenario.draw(rng)
        assert a.units is not None and b.units is not None
        hits += scipy_stats.ttest_rel(a.units.mean(axis=0), b.units.mean(axis=0)).pvalue < alpha
    return hits / reps


def bootstrap_rate(
    scenario: Scenario, reps: int = 500, boots: int = 1000, seed: int = 0, alpha: float = ALPHA
) -> float:
    """The same for a hierarchical percentile bootstrap: resample each strategy's seeds, then queries within each
    language (Bouthillier et al. 2021 randomise both); rejects when the (1 - alpha) interval excludes 0."""
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(reps):
        a, b, strata = scenario.draw(rng)
        assert a.units is not None and b.units is not None
        cols = [np.flatnonzero(strata == s) for s in np.unique(strata)]
        picks = [c[rng.integers(0, c.size, (boots, c.size))] for c in cols]  # boots x n_l per language
        means = []
        for arm in (a, b):
            rows = rng.integers(0, arm.runs, (boots, arm.runs))
            units = arm.units
            assert units is not None
            per_lang = [units[rows[:, :, None], p[:, None, :]].mean(axis=(1, 2)) for p in picks]
            means.append(np.mean(per_lang, axis=0))
        diff = means[0] - means[1]
        low, high = np.quantile(diff, [alpha / 2, 1 - alpha / 2])
        hits += not (low <= 0 <= high)
    return hits / reps


DF_RULES = ("hbt", "satterthwaite", "seed df")


def df_rule_rate(
    k: int, seed_share: float, draws: int = 20000, seed: int = 0, alpha: float = ALPHA, rule: str = "hbt"
) -> float:
    """Type-I error of a degrees-of-freedom rule alone: D ~ N(0, 1) split into a seed part (share `seed_share`,
    estimated with k degrees of freedom) and a known query part; the share of |t| above the rule's critical value.
    Rules: hbt (seed_test's), plain Satterthwaite, the seed part's k alone."""
    rng = np.random.default_rng(seed)
    d = rng.normal(0.0, 1.0, draws)
    seed_var = seed_share * rng.chisquare(k, draws) / k
    query_var = np.full(draws, 1.0 - seed_share)
    if rule == "hbt":
        df = degrees_of_freedom(seed_var, float(k), query_var)
    elif rule == "satterthwaite":
        with np.errstate(divide="ignore", invalid="ignore"):
            df = np.where(seed_var > 0, (seed_var + query_var) ** 2 / (seed_var**2 / k), MAX_DF)
    else:
        df = np.full(draws, float(k))
    t = d / np.sqrt(seed_var + query_var)
    return float(np.mean(np.abs(t) > scipy_stats.t.ppf(1 - alpha / 2, np.minimum(df, MAX_DF))))


SCENARIOS = (
    Scenario("no effect, 2 vs 2 seeds", seeds=(2, 2)),
    Scenario("no effect, 3 vs 3 seeds", seeds=(3, 3)),
    Scenario("no effect, 5 vs 5 seeds, clipped to [0, 1]", seeds=(5, 5), clip=True),
    Scenario("no effect, 3 seeds vs the untrained baseline", seeds=(3, 1), fixed_b=True),
    Scenario("no effect, 2 seeds vs the baseline, query part ~ seed part", seeds=(2, 1), fixed_b=True, run_sd=0.004,
             inter_sd=0.06),
    Scenario("two seeds of one strategy relabelled (2 vs 2)", seeds=(2, 2), same_strategy=True),
)  # fmt: skip


def with_mde(scenario: Scenario) -> Scenario:
    """The scenario with its true difference set to the test's stated minimum detectable effect (80% power)."""
    return replace(scenario, name=scenario.name.replace("no effect", "effect = MDE"), effect=stated_mde(scenario))


def main() -> None:  # pragma: no cover - prints the docs' table
    print("| scenario | seed-aware test | fixed-model t-test | hierarchical bootstrap | stated |")
    print("|---|---:|---:|---:|---:|")
    for scenario in (*SCENARIOS, *(with_mde(s) for s in SCENARIOS[:5])):
        stated = stated_power(scenario) if scenario.effect else ALPHA
        cells = [
            rejection_rate(scenario, 4000, seed=1),
            fixed_model_rate(scenario, 4000, seed=1),
            bootstrap_rate(scenario, 400, 1000, seed=1),
        ]
        effect = f" (Δ {scenario.effect:.4f})" if scenario.effect else ""
        print(f"| {scenario.name}{effect} | " + " | ".join(f"{c:.3f}" for c in cells) + f" | {stated:.3f} |")
    print(f"\nalpha {ALPHA}; 4000 simulated grids per cell (bootstrap: 400 grids x 1000 resamples)")
    shares = (1.0, 0.9, 0.7, 0.5, 0.3, 0.1)
    print("\n| seed df k | rule | " + " | ".join(f"seed share {s:g}" for s in shares) + " |")
    print("|---|---|" + "---:|" * len(shares))
    for k in (1, 2, 4, 8):
        for rule in DF_RULES:
            rates = [df_rule_rate(k, share, 40000, seed=k, rule=rule) for share in shares]
            print(f"| {k} | {rule} | " + " | ".join(f"{r:.3f}" for r in rates) + " |")
    print("\ntype-I error of the degrees-of-freedom rule alone (40000 draws per cell)")


if __name__ == "__main__":  # pragma: no cover
    main()
