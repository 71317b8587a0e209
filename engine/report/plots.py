"""PNG plots of a run or grid directory (matplotlib, Agg backend, written atomically).

- loss_<backbone>.png: training loss curves, one line per trained cell (results.json training.loss_curve, or the
  TrainStep events of events.jsonl for a run that has not finished);
- settings_<backbone>_<dataset>.png: mono / cross / multi macro mAP per strategy, 95% CI error bars over seeds;
- pairs_<backbone>_<dataset>_<strategy>.png: the language-pair mAP heatmap (query language rows, candidate
  language columns, diagonal = monolingual), mean over seeds, one colour scale shared by the strategies;
- bias_<backbone>_<dataset>.png: rank_distance (2408.10536), own_excess@10, rank_gap and map_spread per strategy
  with 95% CI error bars;
- alpha_<backbone>_<dataset>.png (an alpha sweep): mono / cross / multi macro mAP and rank distance against hybrid_p
  (alpha), mean over seeds with 95% CI error bars; the untrained baseline as a dashed line.
`write_plots(..., kind=...)` writes one kind only (`hbt-bench plot GRID --kind alpha`).
Names drawn in a plot come from results and grid files: control characters are drawn escaped (common.text.safe).
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np
from matplotlib.figure import Figure

from ..common.errors import UserError
from ..common.io import write_bytes
from ..common.text import safe
from ..common.vocabulary import BASELINE, PAPER_ALPHA, PLOT_KINDS, STRATEGY_ORDER, parse_arm, strategy_key
from ..evaluation.results import BIAS_KEYS, RANK_DISTANCE, SETTING_NAME, SETTINGS, as_setting
from .source import Cell, load_source, require_results
from .stats import MeanCI
from .table_rows import Group, groups

DPI = 100
_LINESTYLES = ("-", "--", ":", "-.")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "x"


def _save(fig: Figure, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    write_bytes(path, buf.getvalue())
    return path


def _colour(strategy: str, strategies: Sequence[str]) -> str:
    """The same colour for a strategy in every plot: none, xx, xy, hybrid first, then the others by name."""
    if strategy in STRATEGY_ORDER:
        return f"C{STRATEGY_ORDER.index(strategy)}"
    others = sorted(s for s in strategies if s not in STRATEGY_ORDER)
    return f"C{(len(STRATEGY_ORDER) + others.index(strategy)) % 10}"


def _mean(v: MeanCI | None) -> float:
    return math.nan if v is None else v.mean


def _err(v: MeanCI | None) -> float:
    return 0.0 if v is None or v.ci is None else v.ci


def plot_loss(cells: Sequence[Cell], backbone: str, path: Path) -> Path:
    """Loss curves of the trained cells of one backbone: colour per strategy, line style per seed."""
    strategies = sorted({c.arm for c in cells}, key=strategy_key)
    fig = Figure(layout="constrained", figsize=(8, 5))
    ax = fig.add_subplot()
    seeds = sorted({c.seed for c in cells})
    for cell in sorted(cells, key=lambda c: (strategy_key(c.arm), c.seed)):
        steps, losses = zip(*cell.loss_curve, strict=True)
        ax.plot(
            steps,
            losses,
            color=_colour(cell.arm, strategies),
            linestyle=_LINESTYLES[seeds.index(cell.seed) % len(_LINESTYLES)],
            linewidth=1.4,
            label=safe(f"{cell.arm} s{cell.seed}"),
        )
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_title(safe(f"Training loss: {backbone}"))
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", ncol=max(1, len(cells) // 12 + 1))
    return _save(fig, path)


def plot_settings(group: Group, path: Path) -> Path:
    """Grouped bars: one group per setting, one bar per strategy, 95% CI error bars."""
    strategies = group.strategies
    fig = Figure(layout="constrained", figsize=(max(6.0, 1.2 * len(strategies) + 4), 4.5))
    ax = fig.add_subplot()
    x = np.arange(len(SETTINGS))
    width = 0.8 / max(1, len(strategies))
    for i, strategy in enumerate(strategies):
        values = [group.setting(strategy, s) for s in SETTINGS]
        ax.bar(
            x + (i - (len(strategies) - 1) / 2) * width,
            [_mean(v) for v in values],
            width,
            yerr=[_err(v) for v in values],
            capsize=3,
            color=_colour(strategy, strategies),
            label=safe(f"{strategy} (n={group.n_seeds(strategy)})"),
        )
    ax.set_xticks(x, [SETTING_NAME[s] for s in SETTINGS])
    ax.set_ylabel("macro mAP")
    ax.set_ylim(bottom=0)
    ax.set_title(safe(f"mAP by setting: {group.backbone} on {group.dataset}"))
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize="small")
    return _save(fig, path)


def _pair_matrix(group: Group, strategy: str) -> np.ndarray:
    langs = group.languages
    return np.array([[_mean(group.pair(strategy, x, y)) for y in langs] for x in langs], dtype=np.float64)


def plot_pairs(group: Group, strategy: str, path: Path, vmin: float, vmax: float) -> Path:
    """Heatmap of the language-pair mAP matrix of one strategy (query rows x candidate columns)."""
    langs = group.languages
    matrix = _pair_matrix(group, strategy)
    side = max(4.5, 0.55 * len(langs) + 2.5)
    fig = Figure(layout="constrained", figsize=(side + 1, side))
    ax = fig.add_subplot()
    image = ax.imshow(np.ma.masked_invalid(matrix), cmap="viridis", vmin=vmin, vmax=vmax)
    ax.set_xticks(range(len(langs)), [safe(x) for x in langs])
    ax.set_yticks(range(len(langs)), [safe(x) for x in langs])
    ax.set_xlabel("candidate language")
    ax.set_ylabel("query language")
    ax.set_title(safe(f"{strategy}: pair mAP, {group.backbone} on {group.dataset}"), fontsize="medium")
    if len(langs) <= 12:
        mid = (vmin + vmax) / 2
        for i in range(len(langs)):
            for j in range(len(langs)):
                if math.isfinite(matrix[i, j]):
                    colour = "black" if matrix[i, j] > mid else "white"
                    ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=8, color=colour)
    fig.colorbar(image, ax=ax, label="mAP")
    return _save(fig, path)


def plot_bias(group: Group, path: Path) -> Path:
    """One panel per bias measure (rank_distance, own_excess@10, rank_gap, map_spread): a bar per strategy, 95% CI."""
    strategies = group.strategies
    fig = Figure(layout="constrained", figsize=(max(12.0, 3.6 * len(strategies)), 4))
    axes = fig.subplots(1, len(BIAS_KEYS))
    x = np.arange(len(strategies))
    for ax, key in zip(axes, BIAS_KEYS, strict=True):
        values = [group.bias(s, key) for s in strategies]
        ax.bar(
            x,
            [_mean(v) for v in values],
            yerr=[_err(v) for v in values],
            capsize=3,
            color=[_colour(s, strategies) for s in strategies],
        )
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xticks(x, [safe(name) for name in strategies])
        ax.set_title(key)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(safe(f"Language bias: {group.backbone} on {group.dataset}"))
    return _save(fig, path)


def alpha_series(group: Group) -> dict[str, list[tuple[float, MeanCI]]]:
    """Per measure (mono, cross, multi mAP, rank_distance): (alpha, mean ± CI over seeds) of each sweep arm."""
    arms = sorted((alpha, arm) for arm in group.strategies if (alpha := parse_arm(arm)[1]) is not None)
    out: dict[str, list[tuple[float, MeanCI]]] = {}
    for key in (*SETTINGS, RANK_DISTANCE):
        points = []
        for alpha, arm in arms:
            value = group.bias(arm, key) if key == RANK_DISTANCE else group.setting(arm, as_setting(key))
            if value is not None:
                points.append((alpha, value))
        out[key] = points
    return out


def plot_alpha(group: Group, path: Path) -> Path:
    """One panel per measure: its value against alpha, 95% CI over seeds; alpha = 0.5 and [0.4, 0.6] marked."""
    series = alpha_series(group)
    fig = Figure(layout="constrained", figsize=(13, 3.8))
    axes = fig.subplots(1, len(series))
    for ax, (key, points) in zip(axes, series.items(), strict=True):
        xs = [a for a, _ in points]
        ax.errorbar(xs, [_mean(v) for _, v in points], yerr=[_err(v) for _, v in points], marker="o", capsize=3,
                    color="C3", label="hybrid (mean ± 95% CI over seeds)")  # fmt: skip
        base = group.bias(BASELINE, key) if key == RANK_DISTANCE else group.setting(BASELINE, as_setting(key))
        if base is not None:
            ax.axhline(base.mean, color="C0", linestyle="--", linewidth=1, label="untrained")
        ax.axvspan(0.4, 0.6, color="grey", alpha=0.12, label="α in [0.4, 0.6]")
        ax.axvline(PAPER_ALPHA, color="grey", linewidth=0.8)
        ax.set_xlabel("α (0: X-Y, 1: X-X-mono)")
        title = "rank distance (lower: less bias)" if key == RANK_DISTANCE else f"{SETTING_NAME[as_setting(key)]} mAP"
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize="small")
    fig.suptitle(safe(f"α sweep: {group.backbone} on {group.dataset}"))
    return _save(fig, path)


def _is_sweep(group: Group) -> bool:
    return sum(parse_arm(s)[1] is not None for s in group.strategies) >= 2


def write_plots(path: str | Path, out_dir: str | Path | None = None, kind: str = "all") -> list[Path]:
    """Write the plots of a run or grid directory into out_dir (default <path>/plots); returns the files. `kind`:
    all (alpha only for a sweep), or one of loss, settings, pairs, bias, alpha."""
    if kind not in PLOT_KINDS:
        raise UserError(f"unknown plot kind {kind!r} (allowed: {', '.join(PLOT_KINDS)})")
    source = load_source(path)
    out = Path(out_dir) if out_dir is not None else source.path / "plots"
    written: list[Path] = []
    for backbone in source.backbones() if kind in ("all", "loss") else []:
        trained = [c for c in source.cells if c.backbone == backbone and c.strategy != BASELINE and c.loss_curve]
        if trained:
            written.append(plot_loss(trained, backbone, out / f"loss_{_slug(backbone)}.png"))
    if not source.complete:
        if written:
            return written
        require_results(source)  # raises the one-line UserError
    for group in groups(source):
        stem = f"{_slug(group.backbone)}_{_slug(group.dataset)}"
        if kind in ("all", "settings"):
            written.append(plot_settings(group, out / f"settings_{stem}.png"))
        if kind in ("all", "pairs"):
            matrices = [_pair_matrix(group, s) for s in group.strategies]
            finite = np.concatenate([m[np.isfinite(m)] for m in matrices]) if matrices else np.array([])
            vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
            if vmax - vmin < 1e-9:
                vmin, vmax = vmin - 0.05, vmax + 0.05
            for strategy in group.strategies:
                written.append(plot_pairs(group, strategy, out / f"pairs_{stem}_{_slug(strategy)}.png", vmin, vmax))
        if kind in ("all", "bias"):
            written.append(plot_bias(group, out / f"bias_{stem}.png"))
        if kind in ("all", "alpha") and _is_sweep(group):
            written.append(plot_alpha(group, out / f"alpha_{stem}.png"))
    if kind == "alpha" and not written:
        raise UserError(f"{source.path}: not an alpha sweep (run a preset with a list hybrid_p, e.g. alpha-cpu)")
    return written
