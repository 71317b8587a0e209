"""Synthetic run and grid directories with known numbers (exact hbt.results/1 schema) for the report/store tests.

No tests here: test_report.py and test_store.py import the builders.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

BACKBONE = "org/tiny_enc"
DATASET = "xquad-r"
LANGS = ("ar", "de", "en")
STRATEGIES = ("none", "xx", "xy", "hybrid")
BASE = {"none": 0.30, "xx": 0.40, "xy": 0.45, "hybrid": 0.50}
SEED_OFF = {0: 0.0, 1: 0.01, 2: 0.03}
LANG_OFF = {"ar": -0.02, "de": 0.0, "en": 0.05}
N_QUERIES = 20  # per language
METRIC_OFF = {"map": 0.0, "mrr@10": 0.05, "ndcg@10": 0.03, "recall@1": -0.1, "recall@5": 0.1, "recall@10": 0.15,
              "recall@100": 0.3}  # fmt: skip


def metrics(value: float, n: int = N_QUERIES) -> dict[str, Any]:
    return {**{m: value + off for m, off in METRIC_OFF.items()}, "n_queries": n}


def macro(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    out = {m: float(np.mean([b[m] for b in blocks])) for m in METRIC_OFF}
    out["n_queries"] = sum(b["n_queries"] for b in blocks)
    return out


def mono_value(strategy: str, seed: int, x: str) -> float:
    return BASE[strategy] + LANG_OFF.get(x, 0.01) + SEED_OFF[seed]


def cross_value(strategy: str, seed: int, x: str, y: str) -> float:
    return BASE[strategy] - 0.1 + (LANG_OFF.get(x, 0.01) + LANG_OFF.get(y, 0.01)) / 2 + SEED_OFF[seed]


def multi_value(strategy: str, seed: int, x: str) -> float:
    return BASE[strategy] - 0.05 + LANG_OFF.get(x, 0.01) + SEED_OFF[seed]


def dataset_summary(strategy: str, seed: int, langs: tuple[str, ...] = LANGS) -> dict[str, Any]:
    mono = {x: metrics(mono_value(strategy, seed, x)) for x in langs}
    cross = {f"{x}-{y}": metrics(cross_value(strategy, seed, x, y)) for x in langs for y in langs if x != y}
    multi = {x: metrics(multi_value(strategy, seed, x)) for x in langs}
    bias = {
        x: {
            "rank_distance": 400 * (1 - BASE[strategy]) + 10 * LANG_OFF.get(x, 0.01) + 50 * SEED_OFF[seed],
            "own_share@10": 0.5,
            "pool_share": 1 / len(langs),
            "own_excess@10": 0.5 - BASE[strategy] + LANG_OFF.get(x, 0.01) + SEED_OFF[seed],
            "rank_gap": -10 * (0.6 - BASE[strategy]) + 2 * SEED_OFF[seed],
        }
        for x in langs
    }
    multi_maps = [m["map"] for m in multi.values()]
    return {
        "languages": list(langs),
        "n_queries": N_QUERIES * len(langs),
        "n_candidates": 3 * N_QUERIES * len(langs),
        "monolingual": {"per_language": mono, "macro": macro(list(mono.values()))},
        "cross_lingual": {"per_pair": cross, "macro": macro(list(cross.values()))},
        "multilingual": {
            "per_language": multi,
            "macro": macro(list(multi.values())),
            "all": macro(list(multi.values())),
        },
        "language_bias": {
            "per_language": bias,
            "rank_distance": float(np.mean([b["rank_distance"] for b in bias.values()])),
            "own_excess@10": float(np.mean([b["own_excess@10"] for b in bias.values()])),
            "rank_gap": float(np.mean([b["rank_gap"] for b in bias.values()])),
            "map_spread": max(multi_maps) - min(multi_maps),
        },
        "encoded": {"queries": N_QUERIES * len(langs), "candidates": 3 * N_QUERIES * len(langs)},
        "timings": {"encode_s": 0.1, "search_s": 0.1},
    }


def per_query(strategy: str, seed: int, langs: tuple[str, ...] = LANGS) -> dict[str, dict[str, float]]:
    """Per-query AP: a query-specific difficulty shared by all strategies, shifted by the strategy's level."""
    out: dict[str, dict[str, float]] = {}
    for x in langs:
        hardness = np.random.default_rng(len(x) * 7 + ord(x[0])).uniform(-0.2, 0.2, N_QUERIES)
        jitter = np.random.default_rng(1000 + seed).normal(0, 0.01, N_QUERIES)
        for y in langs:
            key = f"mono/{x}" if x == y else f"cross/{x}-{y}"
            level = mono_value(strategy, seed, x) if x == y else cross_value(strategy, seed, x, y)
            out[key] = {
                f"{x}:q{i}": float(np.clip(level + h + j, 0, 1))
                for i, (h, j) in enumerate(zip(hardness, jitter, strict=True))
            }
        level = multi_value(strategy, seed, x)
        out[f"multi/{x}"] = {
            f"{x}:q{i}": float(np.clip(level + h + j, 0, 1))
            for i, (h, j) in enumerate(zip(hardness, jitter, strict=True))
        }
        # per-query rank distance around the cell's language mean (dataset_summary's rank_distance)
        dist = 400 * (1 - BASE[strategy]) + 10 * LANG_OFF.get(x, 0.01) + 50 * SEED_OFF[seed]
        out[f"rankdist/{x}"] = {
            f"{x}:q{i}": float(dist + 100 * h + 10 * j) for i, (h, j) in enumerate(zip(hardness, jitter, strict=True))
        }
    return out


def loss_curve(strategy: str, seed: int) -> list[list[float]]:
    return [[s, round(2.0 * np.exp(-s / 20) + 0.1 * BASE[strategy] + 0.01 * seed, 6)] for s in range(5, 55, 5)]


def write_run(
    path: Path,
    strategy: str,
    seed: int,
    *,
    backbone: str = BACKBONE,
    langs: tuple[str, ...] = LANGS,
    loss_in_events: bool = False,
    status: str = "complete",
) -> dict[str, Any]:
    """One complete run directory; returns its results document."""
    path.mkdir(parents=True, exist_ok=True)
    config = {"backbone": backbone, "strategy": strategy, "seed": seed, "eval_data": [DATASET], "langs": list(langs),
              "train_data": "mlqa-r", "steps": 50}  # fmt: skip
    curve = loss_curve(strategy, seed) if strategy != "none" else []
    training = None
    if strategy != "none":
        training = {"steps": 50, "final_loss": curve[-1][1], "loss_curve": [] if loss_in_events else curve,
                    "composition": {"xx": 5, "xy": 5, "mix": 0}}  # fmt: skip
    results = {
        "schema": "hbt.results/1",
        "run_id": path.name,
        "config": config,
        "environment": {"python": "3.11"},
        "timings": {"total_s": 1.0},
        "training": training,
        "datasets": {DATASET: dataset_summary(strategy, seed, langs)},
    }
    events = [{"type": "run_started", "t": 1.0, "cell": path.name, "run_dir": str(path), "config": config}]
    events += [
        {"type": "train_step", "t": 2.0 + i, "cell": path.name, "step": int(s), "total_steps": 50, "epoch": 0.1,
         "loss": v, "lr": 2e-5, "batches": {"xx": i, "xy": i}, "samples_per_s": 10.0, "strategy": strategy}
        for i, (s, v) in enumerate(curve)
    ]  # fmt: skip
    (path / "config.json").write_text(json.dumps(config), encoding="utf-8")
    (path / "run.json").write_text(json.dumps({"status": status, "started": 100.0 + seed, "updated": 200.0}))
    (path / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    (path / "results.json").write_text(json.dumps(results), encoding="utf-8")
    (path / "per_query.json").write_text(json.dumps({DATASET: per_query(strategy, seed, langs)}), encoding="utf-8")
    return results


def make_grid(root: Path, seeds: tuple[int, ...] = (0, 1, 2), *, xy_loss_in_events: bool = True) -> Path:
    """A grid directory: 1 backbone; none (once) and xx / xy / hybrid x seeds; 3 languages."""
    root.mkdir(parents=True, exist_ok=True)
    cells = []
    for strategy in STRATEGIES:
        for seed in seeds[:1] if strategy == "none" else seeds:
            cell_id = f"{BACKBONE.replace('/', '-')}__{strategy}__s{seed}"
            cells.append({"id": cell_id, "backbone": BACKBONE, "strategy": strategy, "seed": seed,
                          "dir": f"cells/{cell_id}"})  # fmt: skip
            write_run(root / "cells" / cell_id, strategy, seed, loss_in_events=xy_loss_in_events and strategy == "xy")
    grid = {"schema": "hbt.grid/1", "preset": "synthetic", "created": 1.0, "cells": cells}
    (root / "grid.json").write_text(json.dumps(grid), encoding="utf-8")
    return root


def cell_dir(grid: Path, strategy: str, seed: int) -> Path:
    return grid / "cells" / f"{BACKBONE.replace('/', '-')}__{strategy}__s{seed}"


def read_results(grid: Path, strategy: str, seed: int) -> dict[str, Any]:
    return dict(json.loads((cell_dir(grid, strategy, seed) / "results.json").read_text(encoding="utf-8")))
