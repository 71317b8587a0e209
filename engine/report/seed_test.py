"""Strategy A vs strategy B when both the training runs (seeds) and the queries vary: the test, its power.

Model: a crossed random-effects model (queries crossed with training runs, runs nested in strategies; the topic x
system models of IR evaluation, Robertson & Kanoulas 2012, with the training run as a second random factor,
Bouthillier et al. 2021). The value of run r of strategy k on query q is

    y[r, q] = mu_k + u[q] + a[k, q] + v[r] + e[r, q]

u: query difficulty (the same for every run, so it cancels in a difference); a: how a strategy's advantage varies
from query to query (why a new query sample would change the difference); v: the training run (seed); e: run x query
noise. What a table shows for a run is its macro value m[r] = sum_q w[q] y[r, q] (w: the macro weights, 1 / (L n_l)
for a query of language l among L). The effect is D = mean over A's runs of m - mean over B's runs of m, and

    Var(D) = (s_v^2 + s_e^2 sum w^2) (1/S_A + 1/S_B) + Var_queries(sum_q w[q] (a[A, q] - a[B, q]))

estimated by the method of moments:
- seed part: the variance of m over a strategy's runs, pooled over the two strategies (as Student's two-sample
  t-test; k = S_A + S_B - 2 degrees of freedom), times 1/S_A + 1/S_B. An untrained baseline is one fixed model:
  nothing in it is random, so it adds nothing (not "unknown");
- query part: the stratified sampling variance (strata: query languages) of the per-query difference of the
  run-averaged values, minus the run x query noise it also holds (the residual mean square of each strategy's
  runs x queries table, Var(e) (1/S_A + 1/S_B)), floored at 0; estimated from hundreds of queries.

t = (D - null) / sqrt(V), referred to Student t (scipy.stats.t); two-sided p, 95% interval D +- t(0.975, df) sqrt(V).
Degrees of freedom: Satterthwaite's for seed part + query part, with the seed part at its upper 70% confidence
limit (seed * k / chi2(0.3, k)). Plain Satterthwaite is liberal with 1-2 seed degrees of freedom (a seed variance
underestimated by chance also inflates the df: type-I error up to 0.13 when the query part is 10% of V), k alone
over-conservative (down to 0.00); this choice keeps the type-I error within 0.03-0.07 for k = 1..8 and every share of
the two parts (docs/statistics.md, where the simulation is). With fewer than 2 runs of a trained strategy the seed
part cannot be estimated: no p-value (`why` says so). Power and the minimum detectable effect use the noncentral t
(scipy.stats.nct) with the same parts and degrees of freedom.

Why not a bootstrap over seeds: with 2-5 seeds the bootstrap distribution of a mean has (n - 1) / n of its variance
and normal tails; docs/statistics.md measures its type-I error against this test's on the same simulated grids.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize
from scipy import stats as scipy_stats

ALPHA = 0.05
POWER = 0.8
CONFIDENCE = 0.95


@dataclass(frozen=True)
class ArmSample:
    """One strategy's runs in one setting: the macro value of each run, the per-query values (runs x queries, the
    columns aligned with the comparison's query list) and whether it is one fixed model (the untrained baseline)."""

    macro: np.ndarray
    units: np.ndarray | None = None
    fixed: bool = False

    @property
    def runs(self) -> int:
        return int(self.macro.size)

    @property
    def estimable(self) -> bool:
        """Its seed variance is known: 0 for a fixed model, estimated from >= 2 runs otherwise."""
        return self.fixed or self.runs >= 2


@dataclass(frozen=True)
class SeedTest:
    """The comparison of A with B: effect D (A - B), standard error, degrees of freedom, two-sided p-value against
    `null`, the 95% interval of D, and the two variance parts; p is None when `why` says it cannot be computed."""

    effect: float
    null: float
    se: float | None
    df: float | None
    p: float | None
    low: float | None
    high: float | None
    seeds: tuple[int, int]
    queries: int
    v_seed: float
    v_query: float
    why: str | None = None

    @property
    def t(self) -> float | None:
        return None if self.se is None or self.se == 0 else (self.effect - self.null) / self.se

    @property
    def half_width(self) -> float | None:
        return None if self.high is None else self.high - self.effect


# the seed part enters the degrees of freedom at its upper 70% confidence limit (module docstring, "Degrees of
# freedom"); calibrated by simulation for 1-8 seed degrees of freedom and every share of seed variance
SEED_DF_QUANTILE = 0.3
MAX_DF = 1e6  # beyond this, t is the normal (and scipy's noncentral t would lose precision)


@dataclass(frozen=True)
class Parts:
    """Variance parts of a difference: the seed part (the runs' pooled variance times 1/S_A + 1/S_B) with its
    degrees of freedom, and the query part with its own."""

    seed: float
    seed_df: float
    query: float
    query_df: float = math.inf

    @property
    def total(self) -> float:
        return self.seed + self.query

    @property
    def df(self) -> float:
        return float(degrees_of_freedom(self.seed, self.seed_df, self.query, self.query_df))


@functools.lru_cache(maxsize=256)
def _chi2_quantile(k: float) -> float:
    return float(scipy_stats.chi2.ppf(SEED_DF_QUANTILE, k))


def degrees_of_freedom(seed: Any, k: float, query: Any, query_df: float = math.inf) -> Any:
    """Satterthwaite's degrees of freedom of seed + query parts (numbers or numpy arrays of them), the seed part
    taken at its upper 70% confidence limit seed * k / chi2(0.3, k) (module docstring)."""
    if k <= 0:
        return np.full_like(np.asarray(query, dtype=np.float64), query_df)
    seed = np.asarray(seed, dtype=np.float64)
    query = np.asarray(query, dtype=np.float64)
    upper = seed * k / _chi2_quantile(k)
    query_term = query**2 / query_df if math.isfinite(query_df) else np.zeros_like(query)
    with np.errstate(divide="ignore", invalid="ignore"):
        df = (upper + query) ** 2 / (upper**2 / k + query_term)
    return np.where(upper > 0, df, query_df)


def run_query_noise(arms: Sequence[ArmSample], strata: np.ndarray) -> dict[str, float]:
    """Var(e) per stratum: the pooled residual mean square of each trained arm's runs x queries table (two-way,
    no replication: df (S - 1)(n - 1)); 0 where no arm has two runs."""
    out: dict[str, float] = {}
    for label in np.unique(strata):
        cols = strata == label
        ss, dof = 0.0, 0
        for arm in arms:
            if arm.fixed or arm.units is None or arm.runs < 2 or cols.sum() < 2:
                continue
            y = arm.units[:, cols]
            resid = y - y.mean(axis=0, keepdims=True) - y.mean(axis=1, keepdims=True) + y.mean()
            ss += float((resid**2).sum())
            dof += (y.shape[0] - 1) * (y.shape[1] - 1)
        out[str(label)] = ss / dof if dof else 0.0
    return out


def _share(arm: ArmSample) -> float:
    """1/S of a trained arm (its run x query noise averages over S runs); 0 for a fixed model."""
    return 0.0 if arm.fixed else 1.0 / arm.runs


def query_part(a: ArmSample, b: ArmSample, strata: np.ndarray) -> tuple[float, float]:
    """(variance, degrees of freedom) of the query-sampling part of D (module docstring); (0, inf) without
    per-query values."""
    if a.units is None or b.units is None or strata.size == 0:
        return 0.0, math.inf
    diff = a.units.mean(axis=0) - b.units.mean(axis=0)
    noise = run_query_noise((a, b), strata)
    labels = np.unique(strata)
    total, dof = 0.0, 0
    for label in labels:
        d = diff[strata == label]
        if d.size < 2:
            continue
        between = float(d.var(ddof=1)) - noise[str(label)] * (_share(a) + _share(b))
        total += between / d.size / len(labels) ** 2
        dof += d.size - 1
    return max(total, 0.0), float(dof) if dof else math.inf


def variance_parts(a: ArmSample, b: ArmSample, strata: np.ndarray) -> Parts:
    """The seed part: the runs' variance pooled over the trained arms (as Student's two-sample t-test), times
    1/S_A + 1/S_B (a fixed model adds nothing); the query part as `query_part`."""
    trained = [arm for arm in (a, b) if not arm.fixed]
    dof = sum(arm.runs - 1 for arm in trained)
    pooled = sum(float(arm.macro.var(ddof=1)) * (arm.runs - 1) for arm in trained) / dof if dof else 0.0
    v_query, df_query = query_part(a, b, strata)
    return Parts(pooled * sum(1.0 / arm.runs for arm in trained), float(dof), v_query, df_query)


def seed_test(
    a: ArmSample, b: ArmSample, strata: Sequence[str] | np.ndarray = (), null: float = 0.0,
    confidence: float = CONFIDENCE,
) -> SeedTest:  # fmt: skip
    """A vs B in one setting (module docstring): effect A - B, two-sided p against `null`, the 95% interval."""
    strata = np.asarray(strata)
    effect = float(a.macro.mean() - b.macro.mean())
    seeds = (a.runs, b.runs)
    queries = int(strata.size)
    if not (a.estimable and b.estimable) or (a.fixed and b.fixed):
        why = "fewer than 2 seeds" if not (a.estimable and b.estimable) else "two fixed models"
        return SeedTest(effect, null, None, None, None, None, None, seeds, queries, 0.0, 0.0, why)
    parts = variance_parts(a, b, strata)
    v_seed = parts.seed
    if parts.total <= 0:
        return SeedTest(effect, null, 0.0, None, None, None, None, seeds, queries, v_seed, parts.query, "no variance")
    se = math.sqrt(parts.total)
    df = min(parts.df, MAX_DF)
    t = (effect - null) / se
    p = float(2 * scipy_stats.t.sf(abs(t), df))
    half = float(scipy_stats.t.ppf(0.5 + confidence / 2, df)) * se
    return SeedTest(effect, null, se, df, p, effect - half, effect + half, seeds, queries, v_seed, parts.query)


# ---- power ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Noise:
    """What a setting's differences vary with, from a grid: the variance of one trained run's macro value around its
    strategy's mean (pooled over strategies, with its degrees of freedom) and the query part of a difference of two
    strategies (mean over the grid's comparisons)."""

    run_var: float
    run_df: int
    query_var: float
    queries: int

    def parts(self, seeds_a: int, seeds_b: int | None) -> Parts:
        """The parts of a difference of two trained strategies with these seeds (seeds_b None: vs a fixed model)."""
        runs = [seeds_a] if seeds_b is None else [seeds_a, seeds_b]
        dof = float(sum(s - 1 for s in runs))
        return Parts(self.run_var * sum(1.0 / s for s in runs), dof, self.query_var, float(max(self.queries - 1, 1)))


def power(effect: float, parts: Parts, alpha: float = ALPHA) -> float:
    """Probability that the two-sided test at level alpha rejects when the true difference is `effect`."""
    if parts.total <= 0:
        return 1.0 if effect else alpha
    df = min(parts.df, MAX_DF)
    crit = float(scipy_stats.t.ppf(1 - alpha / 2, df))
    nc = abs(effect) / math.sqrt(parts.total)
    # rejecting with the wrong sign: a far tail where scipy may return nan for a large nc (it is then ~0)
    wrong_sign = float(scipy_stats.nct.cdf(-crit, df, nc))
    return float(scipy_stats.nct.sf(crit, df, nc)) + (wrong_sign if math.isfinite(wrong_sign) else 0.0)


def minimum_detectable_effect(parts: Parts, alpha: float = ALPHA, target: float = POWER) -> float:
    """The smallest |difference| the test detects with probability `target` (two-sided, level alpha)."""
    if parts.total <= 0:
        return 0.0
    scale = math.sqrt(parts.total)
    high = scale
    while power(high, parts, alpha) < target:
        high *= 2
    return float(optimize.brentq(lambda d: power(d, parts, alpha) - target, 0.0, high, xtol=1e-12 * high))


def seeds_needed(
    effect: float, noise: Noise, alpha: float = ALPHA, target: float = POWER, most: int = 200, fixed_rival: bool = False
) -> int | None:
    """The fewest seeds per strategy (>= 2) with which a difference `effect` is detected with probability `target`;
    None when even `most` seeds are not enough (the query part alone is too large: more queries are needed)."""
    for seeds in range(2, most + 1):
        if power(effect, noise.parts(seeds, None if fixed_rival else seeds), alpha) >= target:
            return seeds
    return None
