"""The Results screen's model: the engine's report tables of a run or grid directory, grouped for display.

Tables come from `hbt.engine.report.tables.build_tables` (the same numbers as `hbt-bench report`); loss curves and
per-language bias come straight from each cell's results.json (`hbt.engine.report.source`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..engine.common.errors import UserError
from ..engine.common.text import safe
from ..engine.common.vocabulary import strategy_key
from ..engine.evaluation.results import BIAS_LANGUAGE_KEYS
from ..engine.report.source import Cell, Source, load_source
from ..engine.report.stats import MeanCI
from ..engine.report.table_rows import Table
from ..engine.report.tables import build_tables


def number(value: Any) -> float | None:
    """The number behind a table value (a MeanCI's mean), or None."""
    if isinstance(value, MeanCI):
        return value.mean
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) and math.isfinite(float(value)):
        return float(value)
    return None


@dataclass
class CellInfo:
    id: str
    backbone: str
    strategy: str
    seed: int
    status: str
    path: Path
    ok: bool
    problem: str | None
    loss_curve: list[tuple[int, float]]


@dataclass
class GroupView:
    """The tables of one backbone on one evaluation dataset."""

    backbone: str
    dataset: str
    summary: Table | None = None
    significance: Table | None = None
    per_language: dict[str, Table] = field(default_factory=dict)  # mono | multi
    pairs: dict[str, Table] = field(default_factory=dict)  # strategy -> language-pair table
    bias: Table | None = None
    claims: Table | None = None  # verdicts on 2408.10536's claims (xx, xy and hybrid present)
    power: Table | None = None  # what the grid could detect (minimum detectable effects)
    alpha: Table | None = None  # an alpha sweep: metrics per alpha
    compare: Table | None = None  # the cells beside 2408.10536's published numbers (hbt-bench compare)

    @property
    def title(self) -> str:
        return f"{self.backbone} · {self.dataset}"

    @property
    def strategies(self) -> list[str]:
        return list(self.pairs)


@dataclass
class Report:
    path: Path
    kind: str  # grid | run
    name: str
    cells: list[CellInfo]
    groups: list[GroupView]
    source: Source | None = None
    message: str = ""  # why there are no tables yet (no finished cell)

    @property
    def complete(self) -> list[CellInfo]:
        return [c for c in self.cells if c.ok]

    def loss_curves(self, backbone: str | None = None) -> dict[str, list[tuple[float, float]]]:
        """One curve per strategy (mean loss over the seeds at each step)."""
        sums: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
        for cell in self.cells:
            if backbone is not None and cell.backbone != backbone:
                continue
            for step, loss in cell.loss_curve:
                sums[cell.strategy][step].append(loss)
        out: dict[str, list[tuple[float, float]]] = {}
        for strategy in sorted(sums, key=strategy_key):
            steps = sums[strategy]
            out[strategy] = [(float(s), sum(v) / len(v)) for s, v in sorted(steps.items())]
        return out

    def bias_per_language(self, group: GroupView, strategy: str) -> tuple[list[str], list[list[Any]]]:
        """Per query language bias of `strategy` (mean over its seeds): columns and rows."""
        acc: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        cells = self.source.complete if self.source else []
        for cell in cells:
            if cell.backbone != group.backbone or cell.arm != strategy:
                continue
            summary = cell.datasets.get(group.dataset)
            for lang, values in (summary.bias.per_language if summary else {}).items():
                for key in BIAS_LANGUAGE_KEYS:
                    v = number(values.get(key))
                    if v is not None:
                        acc[lang][key].append(v)
        rows: list[list[Any]] = []
        for lang, seeds in acc.items():
            means = [sum(xs) / len(xs) if (xs := seeds.get(k)) else None for k in BIAS_LANGUAGE_KEYS]
            rows.append([lang, *means])
        return ["language", *BIAS_LANGUAGE_KEYS], rows


def _group_tables(tables: list[Table]) -> list[GroupView]:
    groups: dict[tuple[str, str], GroupView] = {}
    for t in tables:
        key = (str(t.meta.get("backbone", "")), str(t.meta.get("dataset", "")))
        group = groups.setdefault(key, GroupView(*key))
        if t.key == "summary":
            group.summary = t
        elif t.key == "significance":
            group.significance = t
        elif t.key == "per_language":
            group.per_language[str(t.meta.get("setting", "mono"))] = t
        elif t.key == "pairs":
            group.pairs[str(t.meta.get("strategy", ""))] = t
        elif t.key == "bias":
            group.bias = t
        elif t.key == "claims":
            group.claims = t
        elif t.key == "power":
            group.power = t
        elif t.key == "alpha":
            group.alpha = t
    return list(groups.values())


def _cell_info(cell: Cell) -> CellInfo:
    started = cell.path.is_dir()  # a planned cell without a run directory has not run yet (not "missing")
    problem = cell.problem if started else "not run yet"
    if started and not cell.ok and problem:
        try:
            reason = cell.run.status().get("error")  # why it failed, as run.json recorded it
        except (OSError, ValueError, AttributeError):
            reason = None
        problem = f"{problem}: {reason}" if reason else problem
    return CellInfo(  # strings read from files: control characters escaped for the terminal
        id=safe(cell.id),
        backbone=safe(cell.backbone),
        strategy=safe(cell.arm),  # an alpha sweep's cells: 'hybrid-a0.25'
        seed=cell.seed,
        status=safe(cell.status) if started else "pending",
        path=cell.path,
        ok=cell.ok,
        problem=safe(problem) if problem else problem,
        loss_curve=list(cell.loss_curve),
    )


def load_report(path: Path) -> Report:
    """Load a grid or run directory (a UserError when it is neither, or when no cell has results)."""
    source = load_source(path)
    message = ""
    try:
        tables = build_tables(source)  # the engine's defaults: the same numbers as `hbt-bench report` and export
    except UserError as exc:
        if source.complete:
            raise
        tables, message = [], str(exc)
    groups = _group_tables(tables)
    if tables:
        # (start-up: scipy)
        from ..engine.report.published import compare_tables

        try:
            published = compare_tables(source)
        except UserError:  # the paper has no numbers for these datasets
            published = []
        by_key = {(g.backbone, g.dataset): g for g in groups}
        for t in published:
            if (group := by_key.get((str(t.meta["backbone"]), str(t.meta["dataset"])))) is not None:
                group.compare = t
    return Report(
        path=Path(path),
        kind=source.kind,
        name=safe(source.name),
        cells=[_cell_info(c) for c in source.cells],
        groups=groups,
        source=source,
        message=message,
    )
