"""A group's cells as samples of the seed-aware test: per arm (strategy, or one alpha of a sweep) and setting, each
run's macro value and its per-query values over the queries every run of the two compared arms has.

Settings: mono, cross, multi (mAP; a query's cross value is its AP averaged over the candidate languages), rankdist
(the paper's rank distance, lower is better) and overall (the mean of mono, cross and multi mAP: the alpha claim's
"best overall"). A run's macro value is the number its summary shows (macro over query languages / pairs); per-query
values come from per_query.json, stratified by query language. The untrained baseline (`none`) is one fixed model.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import numpy as np

from ..common.vocabulary import BASELINE
from ..evaluation.results import RANK_DISTANCE, RANKDIST, SETTINGS, DatasetSummary, parse_query_key
from .seed_test import ArmSample, Noise, SeedTest, query_part, seed_test

if TYPE_CHECKING:
    from .source import Cell
    from .table_rows import Group

OVERALL = "overall"
MAP_SETTINGS = tuple(SETTINGS)  # mono, cross, multi
TESTED = (*MAP_SETTINGS, RANKDIST, OVERALL)
SETTING_LABEL = {"mono": "mono mAP", "cross": "cross mAP", "multi": "multi mAP", RANKDIST: "rank distance",
                 OVERALL: "overall mAP"}  # fmt: skip


def run_value(summary: DatasetSummary, setting: str) -> float | None:
    """A run's macro value in a setting (what the tables show); None when the run lacks it."""
    try:
        if setting == RANKDIST:
            value: Any = summary.bias.overall.get(RANK_DISTANCE)
            return float(value) if value is not None else None
        if setting == OVERALL:
            parts = [summary.macro(s, "map") for s in MAP_SETTINGS]
            known = [float(p) for p in parts if p is not None]
            return float(np.mean(known)) if len(known) == len(parts) else None
        value = summary.macro(setting, "map")  # type: ignore[arg-type]
        return None if value is None else float(value)
    except (KeyError, TypeError, ValueError):
        return None


def _units_by_setting(per_query: Any, langs: list[str]) -> dict[str, dict[str, float]] | None:
    """{setting: {"<lang>/<query id>": value}} of one run's per_query.json block; cross averaged over candidates."""
    if not isinstance(per_query, dict):
        return None
    acc: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    try:
        for key, values in per_query.items():
            kind, x, _ = parse_query_key(str(key), langs)
            if not isinstance(values, dict):
                continue
            for qid, value in values.items():
                acc[kind][f"{x}/{qid}"].append(float(value))
    except (TypeError, ValueError):
        return None
    out = {kind: {q: sum(v) / len(v) for q, v in units.items()} for kind, units in acc.items()}
    if all(s in out for s in MAP_SETTINGS):
        common = set(out["mono"]) & set(out["cross"]) & set(out["multi"])
        out[OVERALL] = {q: float(np.mean([out[s][q] for s in MAP_SETTINGS])) for q in out["mono"] if q in common}
    return out


class Comparisons:
    """The seed-aware tests of one group, computed once per (a, b, setting, null)."""

    def __init__(self, group: Group) -> None:
        self.group = group
        self._units: dict[str, dict[str, dict[str, float]] | None] = {}
        self._cache: dict[tuple[str, str, str, float], SeedTest | None] = {}

    def _cell_units(self, cell: Cell, setting: str) -> dict[str, float] | None:
        if cell.id not in self._units:
            doc = cell.per_query
            self._units[cell.id] = _units_by_setting(doc.get(self.group.dataset) if doc else None, self.group.languages)
        units = self._units[cell.id]
        return units.get(setting) if units else None

    def runs(self, arm: str, setting: str) -> list[tuple[float, dict[str, float] | None]]:
        """(macro value, per-query values or None) of each run of `arm` that has the setting."""
        out = []
        for cell in self.group.by_strategy.get(arm, []):
            summary = self.group.summary(cell)
            value = run_value(summary, setting) if summary is not None else None
            if value is not None and math.isfinite(value):
                out.append((value, self._cell_units(cell, setting)))
        return out

    def samples(self, a: str, b: str, setting: str) -> tuple[ArmSample, ArmSample, np.ndarray] | None:
        """Both arms' samples on the queries every run of both has (no per-query values: the seed part only)."""
        runs_a, runs_b = self.runs(a, setting), self.runs(b, setting)
        if not runs_a or not runs_b:
            return None
        every = [u for _, u in (*runs_a, *runs_b) if u is not None]
        ids: list[str] = []
        if len(every) == len(runs_a) + len(runs_b):
            ids = sorted(set.intersection(*(set(u) for u in every)))

        def sample(runs: list[tuple[float, dict[str, float] | None]], arm: str) -> ArmSample:
            macro = np.asarray([v for v, _ in runs], dtype=np.float64)
            units = np.asarray([[u[q] for q in ids] for _, u in runs if u is not None], dtype=np.float64)
            return ArmSample(macro, units if ids else None, fixed=arm == BASELINE)

        strata = np.asarray([q.split("/", 1)[0] for q in ids])
        return sample(runs_a, a), sample(runs_b, b), strata

    def __call__(self, a: str, b: str, setting: str, null: float = 0.0) -> SeedTest | None:
        """The seed-aware test of a - b in `setting` against `null`; None when an arm has no run with the setting."""
        key = (a, b, setting, null)
        if key not in self._cache:
            drawn = self.samples(a, b, setting)
            self._cache[key] = seed_test(*drawn, null=null) if drawn is not None else None
        return self._cache[key]

    def noise(self, setting: str, arms: list[str]) -> Noise | None:
        """What a difference of two of `arms` (trained) varies with in `setting`, for power and planning: the run
        variance pooled over the arms with >= 2 runs, and the mean query part over their pairs."""
        ss, dof = 0.0, 0
        queries = 0
        for arm in arms:
            values = np.asarray([v for v, _ in self.runs(arm, setting)], dtype=np.float64)
            if values.size >= 2:
                ss += float(values.var(ddof=1)) * (values.size - 1)
                dof += values.size - 1
        if dof == 0:
            return None
        parts = []
        for i, a in enumerate(arms):
            for b in arms[i + 1 :]:
                drawn = self.samples(a, b, setting)
                if drawn is not None:
                    parts.append(query_part(*drawn)[0])
                    queries = max(queries, int(drawn[2].size))
        return Noise(ss / dof, dof, float(np.mean(parts)) if parts else 0.0, queries)
