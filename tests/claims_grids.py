"""Hand-built grids whose answer is known, for the verdict tests: every number of results.json is computed from the
per-query values written to per_query.json (so the tables, the seed-aware test and a hand computation agree).

An arm's run `seed` has, per query q of language x: value = level[setting] + hardness[q] + run[seed] + noise[q]
(AP clipped to [0, 1]; rank distance = 300 - 400 * level shift, unclipped). No tests here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from hbt.engine.evaluation.results import DatasetSummary
from hbt.engine.report.source import Cell, Source
from hbt.engine.report.table_rows import Group, groups

DATASET = "xquad-r"
LANGS = ("ar", "de", "en")
PER_LANG = 40
METRICS = ("map", "mrr@10", "ndcg@10", "recall@1", "recall@5", "recall@10", "recall@100")


@dataclass
class Arm:
    """An arm's true levels (macro mAP per setting; rank distance follows multi) and its seeds' spread."""

    mono: float = 0.60
    cross: float = 0.50
    multi: float = 0.40
    seeds: tuple[int, ...] = (0, 1, 2)
    run_sd: float = 0.002  # training-run (seed) effect
    noise_sd: float = 0.02  # run x query noise
    alpha: float | None = None  # an alpha sweep's hybrid_p
    extra: dict[str, float] = field(default_factory=dict)


def _hardness(x: str) -> np.ndarray:
    return np.random.default_rng([7, ord(x[0]), ord(x[1])]).uniform(-0.15, 0.15, PER_LANG)


def run_values(
    arm: Arm, name: str, seed: int, rng_seed: int = 0, langs: tuple[str, ...] = LANGS
) -> dict[str, dict[str, float]]:
    """per_query.json's block of one run: mono/x, cross/x-y, multi/x, rankdist/x -> {query id: value}."""
    rng = np.random.default_rng([rng_seed, seed, *(ord(c) for c in name)])
    run = rng.normal(0, arm.run_sd)
    out: dict[str, dict[str, float]] = {}
    for x in langs:
        hard = _hardness(x)
        ids = [f"{x}:q{i}" for i in range(PER_LANG)]

        def values(level: float, h: np.ndarray = hard, names: list[str] = ids) -> dict[str, float]:
            v = np.clip(level + h + run + rng.normal(0, arm.noise_sd, PER_LANG), 0.0, 1.0)
            return dict(zip(names, map(float, v), strict=True))

        out[f"mono/{x}"] = values(arm.mono)
        for y in langs:
            if y != x:
                out[f"cross/{x}-{y}"] = values(arm.cross)
        out[f"multi/{x}"] = multi = values(arm.multi)
        out[f"rankdist/{x}"] = {q: 300.0 - 400.0 * (v - 0.4) for q, v in multi.items()}
    return out


def summary(per_query: dict[str, dict[str, float]]) -> dict[str, Any]:
    """results.json's dataset block computed from the per-query values (macro over languages / pairs)."""
    langs = [key.split("/")[1] for key in per_query if key.startswith("mono/")]

    def block(values: dict[str, float]) -> dict[str, Any]:
        mean = float(np.mean(list(values.values())))
        return {**dict.fromkeys(METRICS, mean), "n_queries": len(values)}

    def macro(blocks: list[dict[str, Any]]) -> dict[str, Any]:
        return {**{m: float(np.mean([b[m] for b in blocks])) for m in METRICS},
                "n_queries": sum(b["n_queries"] for b in blocks)}  # fmt: skip

    mono = {x: block(per_query[f"mono/{x}"]) for x in langs}
    cross = {f"{x}-{y}": block(per_query[f"cross/{x}-{y}"]) for x in langs for y in langs if x != y}
    multi = {x: block(per_query[f"multi/{x}"]) for x in langs}
    dist = {x: float(np.mean(list(per_query[f"rankdist/{x}"].values()))) for x in langs}
    bias = {x: {"rank_distance": dist[x], "own_share@10": 0.5, "pool_share": 1 / 3, "own_excess@10": 0.1,
                "rank_gap": -1.0} for x in langs}  # fmt: skip
    return {
        "languages": langs,
        "n_queries": PER_LANG * len(langs),
        "n_candidates": 3 * PER_LANG * len(langs),
        "monolingual": {"per_language": mono, "macro": macro(list(mono.values()))},
        "cross_lingual": {"per_pair": cross, "macro": macro(list(cross.values()))},
        "multilingual": {
            "per_language": multi,
            "macro": macro(list(multi.values())),
            "all": macro(list(multi.values())),
        },
        "language_bias": {
            "per_language": bias,
            "rank_distance": float(np.mean(list(dist.values()))),
            "own_excess@10": 0.1,
            "rank_gap": -1.0,
            "map_spread": 0.0,
        },
    }


def _strategy(name: str, arm: Arm) -> str:
    return "hybrid" if arm.alpha is not None else name


def write_grid(
    root: Path, arms: dict[str, Arm], *, margin: float | None = None, rng_seed: int = 0, langs: tuple[str, ...] = LANGS
) -> Path:
    """A grid directory of these arms (the key `none` is the untrained baseline); returns its path."""
    cells = []
    for name, arm in arms.items():
        for seed in arm.seeds:
            strategy = _strategy(name, arm)
            cid = f"org-enc__{name}__s{seed}"
            entry: dict[str, Any] = {"id": cid, "backbone": "org/enc", "strategy": strategy, "seed": seed,
                                     "dir": f"cells/{cid}"}  # fmt: skip
            if arm.alpha is not None:
                entry["hybrid_p"] = arm.alpha
            cells.append(entry)
            path = root / "cells" / cid
            path.mkdir(parents=True)
            per_query = run_values(arm, name, seed, rng_seed, langs)
            config = {"backbone": "org/enc", "strategy": strategy, "seed": seed, "eval_data": [DATASET],
                      "langs": list(langs), "train_data": "mlqa-r", "steps": 50, "batch_size": 16, "lr": 2e-5,
                      "hybrid_p": arm.alpha if arm.alpha is not None else 0.5, "xx_langs": "proportional",
                      "hybrid_mix": "batch", "eval_max_seq_length": 512, "max_seq_length": 96, "scale": 100.0,
                      "weight_decay": 0.0, "train_top_layers": 4, "freeze_embeddings": None, "hard_negatives": False,
                      "warmup_ratio": 0.1}  # fmt: skip
            results = {"schema": "hbt.results/1", "run_id": cid, "config": config, "timings": {"total_s": 1.0},
                       "evaluation": {"max_seq_length": 512}, "training": None,
                       "datasets": {DATASET: summary(per_query)}}  # fmt: skip
            (path / "config.json").write_text(json.dumps(config), encoding="utf-8")
            (path / "run.json").write_text(json.dumps({"status": "complete"}), encoding="utf-8")
            (path / "results.json").write_text(json.dumps(results), encoding="utf-8")
            (path / "per_query.json").write_text(json.dumps({DATASET: per_query}), encoding="utf-8")
    grid: dict[str, Any] = {"schema": "hbt.grid/1", "preset": "hand-built", "created": 1.0, "cells": cells}
    if margin is not None:
        grid["noninferiority_margin"] = margin
    (root / "grid.json").write_text(json.dumps(grid), encoding="utf-8")
    return root


def memory_group(arms: dict[str, Arm], rng_seed: int = 0) -> Group:
    """The same grid as a report Group held in memory (no files): for simulations over many grids."""
    cells = []
    for name, arm in arms.items():
        for seed in arm.seeds:
            per_query = run_values(arm, name, seed, rng_seed)
            doc = summary(per_query)
            cell = Cell(id=f"{name}-{seed}", path=Path("/nonexistent"), backbone="org/enc",
                        strategy=_strategy(name, arm), seed=seed, status="complete", results={"datasets": {}},
                        summaries={DATASET: DatasetSummary.from_json(doc)}, hybrid_p=arm.alpha)  # fmt: skip
            cell.__dict__["per_query"] = {DATASET: per_query}  # the cached property, without a file
            cells.append(cell)
    (group,) = groups(Source(Path("/nonexistent"), "grid", "memory", cells))
    return group
