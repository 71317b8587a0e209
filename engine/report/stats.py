"""Mean and 95% confidence interval over seeds (the ± of every table).

`mean_ci`: the Student t interval of the mean over seeds, ``mean ± t(0.975, n - 1) * s / sqrt(n)`` with ``s`` the
sample standard deviation (ddof = 1; the quantile from scipy.stats.t). With one seed there is no spread to estimate,
so the interval is None (shown as the bare mean).

Comparisons of strategies (p-values, verdicts, power) are in `hbt.engine.report.seed_test`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

CONFIDENCE = 0.95


def t_quantile(q: float, df: float) -> float:
    """The q-quantile of Student's t with df degrees of freedom (scipy.stats.t)."""
    return float(scipy_stats.t.ppf(q, df))


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
