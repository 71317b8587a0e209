"""Set-up the benchmarks share: offline start with the frozen-cache budget, the XQuAD-R evaluation subset, the
benchmarks' hybrid training configuration and a per-step timer. Run a benchmark as `python benchmarks/bench_x.py`
(its folder is then on the import path)."""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

from hbt.engine.backbones import load_backbone
from hbt.engine.backbones.frozen_cache import SHARED
from hbt.engine.common.hub import go_offline_if_unreachable
from hbt.engine.common.run_config import RunConfig
from hbt.engine.data.benchmark import Benchmark
from hbt.engine.data.registry import load_benchmark
from hbt.engine.runs.run import build_training_table
from hbt.engine.training.pairs import PairTable
from transformers import TrainerCallback


def start_offline() -> None:
    """Go offline when the hub is unreachable; give the frozen-bottom cache HBT_FROZEN_CACHE_MB (default 4096 MiB)."""
    os.environ.setdefault("HBT_FROZEN_CACHE_MB", "4096")
    SHARED.max_bytes = int(os.environ["HBT_FROZEN_CACHE_MB"]) * 2**20
    go_offline_if_unreachable()


def xquad_subset(data_dir: str, langs: str, max_queries: int) -> Benchmark:
    """XQuAD-R in the comma-separated `langs`, `max_queries` queries drawn with seed 0."""
    return load_benchmark("xquad-r", data_dir, langs.split(",")).subset(max_queries=max_queries, seed=0)


def bundled_model(max_seq_length: int) -> Any:
    """The bundled multilingual-e5-small, texts cut at `max_seq_length` tokens."""
    model = load_backbone(None)
    model.max_seq_length = max_seq_length
    return model


def hybrid_training(args: argparse.Namespace, **overrides: Any) -> tuple[RunConfig, PairTable]:
    """A hybrid run from the flags --backbone, --data-dir, --steps and --batch-size (texts cut at 96 tokens), and
    its training table."""
    config = RunConfig(
        backbone=args.backbone,
        strategy="hybrid",
        data_dir=args.data_dir,
        steps=args.steps,
        batch_size=args.batch_size,
        max_seq_length=96,
        **overrides,
    )
    return config, build_training_table(config)


class StepTimer(TrainerCallback):
    """Seconds of each training step, in order."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._t = 0.0

    def on_step_begin(self, *a: Any, **k: Any) -> None:
        self._t = time.perf_counter()

    def on_step_end(self, *a: Any, **k: Any) -> None:
        self.times.append(time.perf_counter() - self._t)
