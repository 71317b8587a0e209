"""Statistics for reports: mean and 95% confidence interval over seeds, paired significance on per-query AP.

Confidence interval (`mean_ci`): the Student t interval of the mean over seeds,
``mean ± t(0.975, n - 1) * s / sqrt(n)`` with ``s`` the sample standard deviation (ddof = 1). With one seed there
is no spread to estimate, so the interval is None (shown as the bare mean).

Significance (`paired_permutation_test`): a paired randomization test with sign flips, two-sided.
- Pairs are aligned by query id over the intersection of the two strategies' queries (a query missing on
  either side is dropped). When a strategy has several seeds, each query's AP is first averaged over the seeds
  (`average_over_seeds`, over the queries that every seed has), so the unit of the test is the query, not the run.
- Statistic: T = |mean_i (a_i - b_i)|. Under the null hypothesis that the two systems are exchangeable on every
  query, each difference is equally likely to have either sign; the null distribution is obtained by flipping
  the sign of every difference independently with probability 1/2.
- With n differences and 2^n <= `resamples`, all 2^n sign patterns are enumerated and the p-value is exact:
  p = #{T* >= T} / 2^n. Otherwise `resamples` random sign patterns are drawn from `numpy.random.default_rng(seed)`
  and p = (1 + #{T* >= T}) / (1 + resamples) (the observed statistic counts as one resample, so p > 0).
- Identical systems give T = 0 and p = 1; with no aligned query the p-value is None.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95
DEFAULT_RESAMPLES = 10_000

# t(0.975, df) for df = 1..30, used only when scipy is not installed
_T975 = (
    12.706204736174698, 4.302652729749462, 3.182446305284263, 2.7764451051977987, 2.5705818356363146,
    2.4469118511449692, 2.3646242515927844, 2.306004135204166, 2.2621571628540993, 2.2281388519649385,
    2.200985160082949, 2.1788128296634177, 2.1603686564610127, 2.1447866879169273, 2.131449545559323,
    2.1199052992210112, 2.1098155778331806, 2.10092204024096, 2.093024054408263, 2.0859634472658364,
    2.079613844727662, 2.0738730679040147, 2.0686576104190406, 2.0638985616280205, 2.059538552753294,
    2.055529438642871, 2.0518305164802833, 2.048407141795244, 2.0452296421327034, 2.0422724563012373,
)  # fmt: skip


def t_quantile(q: float, df: int) -> float:
    """The q-quantile of Student's t with df degrees of freedom (scipy; a table for q = 0.975 without it)."""
    try:
        from scipy import stats as _stats
    except ImportError:  # pragma: no cover - scipy comes with the training stack
        if not math.isclose(q, 0.975):
            raise
        if df <= len(_T975):
            return _T975[df - 1]
        z = 1.959963984540054  # Cornish-Fisher expansion of t around the normal quantile
        return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
    return float(_stats.t.ppf(q, df))


@dataclass(frozen=True)
class MeanCI:
    """The mean of a value over seeds, with the half-width of its confidence interval (None when n < 2)."""

    mean: float
    ci: float | None
    n: int
    std: float | None = None

    @property
    def low(self) -> float | None:
        return None if self.ci is None else self.mean - self.ci

    @property
    def high(self) -> float | None:
        return None if self.ci is None else self.mean + self.ci

    def format(self, decimals: int | None = 4) -> str:
        """'0.4123 ± 0.0101' (or '0.4123' without an interval); decimals=None keeps full precision."""

        def fmt(x: float) -> str:
            return repr(float(x)) if decimals is None else f"{x:.{decimals}f}"

        return fmt(self.mean) if self.ci is None else f"{fmt(self.mean)} ± {fmt(self.ci)}"

    def to_dict(self) -> dict[str, float | int | None]:
        return {"mean": self.mean, "ci95": self.ci, "n": self.n}


def mean_ci(values: Iterable[float], confidence: float = CONFIDENCE) -> MeanCI:
    """Mean and Student t confidence half-width over seeds; ci is None for a single value."""
    xs = np.asarray([float(v) for v in values], dtype=np.float64)
    if xs.size == 0:
        raise ValueError("mean_ci needs at least one value")
    mean = float(xs.mean())
    if xs.size < 2:
        return MeanCI(mean, None, int(xs.size))
    std = float(xs.std(ddof=1))
    half = t_quantile(0.5 + confidence / 2, int(xs.size) - 1) * std / math.sqrt(xs.size)
    return MeanCI(mean, float(half), int(xs.size), std)


def average_over_seeds(runs: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Per-query AP averaged over seeds, over the query ids that every seed has."""
    if not runs:
        return {}
    common = set(runs[0])
    for run in runs[1:]:
        common &= set(run)
    return {q: float(np.mean([float(run[q]) for run in runs])) for q in runs[0] if q in common}


@dataclass(frozen=True)
class PairedTest:
    """The outcome of a paired test of a against b: mean difference (a - b) over n aligned queries."""

    p_value: float | None
    mean_diff: float
    n: int
    resamples: int
    exact: bool


def _tolerance(diffs: np.ndarray) -> float:
    """Slack for float rounding when comparing a resampled statistic with the observed one (ties count)."""
    return 1e-9 * max(1.0, float(np.abs(diffs).sum()))


def _exact_hits(diffs: np.ndarray, observed: float, chunk: int = 4096) -> tuple[int, int]:
    """#{|sum(s * d)| >= observed} over all 2^n sign vectors s."""
    n = len(diffs)
    codes = np.arange(2**n, dtype=np.int64)
    tol = _tolerance(diffs)
    hits = 0
    for start in range(0, len(codes), chunk):
        signs = 1.0 - 2.0 * ((codes[start : start + chunk, None] >> np.arange(n)) & 1)
        hits += int(np.count_nonzero(np.abs(signs @ diffs) >= observed - tol))
    return hits, len(codes)


_BYTE_BITS = ((np.arange(256)[:, None] >> np.arange(8)) & 1).astype(np.float64)  # 256 x 8: the bits of each byte


def _random_hits(diffs: np.ndarray, observed: float, resamples: int, seed: int) -> int:
    """#{|sum(s * d)| >= observed} over `resamples` random sign vectors s (each sign -1 with probability 1/2).

    The signs come as random bytes, 8 queries per byte: with F the set of flipped queries,
    sum(s * d) = sum(d) - 2 * sum_{i in F} d_i, and the inner sum is read from a 256-entry table of partial sums
    per block of 8 queries (a gather per byte instead of 8 multiply-adds).
    """
    n_blocks = (len(diffs) + 7) // 8
    padded = np.zeros(n_blocks * 8)
    padded[: len(diffs)] = diffs
    tables = (padded.reshape(n_blocks, 8) @ _BYTE_BITS.T).ravel()  # block b, byte v -> tables[b * 256 + v]
    offsets = np.arange(n_blocks, dtype=np.intp) * 256
    total = float(diffs.sum())
    tol = _tolerance(diffs)
    rng = np.random.default_rng(seed)
    chunk = max(1, 2_000_000 // n_blocks)
    hits, left = 0, resamples
    while left > 0:
        rows = min(chunk, left)
        flips = rng.integers(0, 256, size=(rows, n_blocks), dtype=np.uint8)
        flipped = tables[flips + offsets].sum(axis=1)
        hits += int(np.count_nonzero(np.abs(total - 2.0 * flipped) >= observed - tol))
        left -= rows
    return hits


def paired_permutation_test(
    a: Mapping[str, float],
    b: Mapping[str, float],
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> PairedTest:
    """Two-sided paired sign-flip randomization test of per-query AP `a` vs `b` (see the module docstring)."""
    if resamples < 1:
        raise ValueError("resamples must be at least 1")
    common = [q for q in a if q in b]
    diffs = np.asarray([float(a[q]) - float(b[q]) for q in common], dtype=np.float64)
    n = int(diffs.size)
    if n == 0:
        return PairedTest(None, 0.0, 0, 0, False)
    mean_diff = float(diffs.mean())
    observed = abs(float(diffs.sum()))
    if n < 63 and 2**n <= resamples:
        hits, total = _exact_hits(diffs, observed)
        return PairedTest(hits / total, mean_diff, n, total, True)
    hits = _random_hits(diffs, observed, resamples, seed)
    return PairedTest((1 + hits) / (1 + resamples), mean_diff, n, resamples, False)
