"""Time per training step: hbt's hybrid sampler + event stream (events.jsonl) vs sentence-transformers' default
batch sampler with no callback, same model, data, batch size and steps, measured alternately in one run.

Also prints the sampler's own cost per batch (building hybrid batches), the cleanest measure of its overhead.
Target: overhead <= 3 %.

Usage: python benchmarks/bench_train_overhead.py --data-dir ../shared/data [--steps 12] [--rounds 2]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from pathlib import Path

from _common import StepTimer, hybrid_training, start_offline
from hbt.engine.backbones import load_backbone
from hbt.engine.common.events import EventBus, JsonlSink
from hbt.engine.training.sampler import StrategyBatchSampler, make_strategy
from hbt.engine.training.train import build_trainer
from sentence_transformers.base.sampler import BatchSamplers


def timed_run(base_model, table, config, hbt_sampler: bool, tmp: Path) -> list[float]:  # type: ignore[no-untyped-def]
    model = copy.deepcopy(base_model)
    bus = EventBus()
    sink = JsonlSink(tmp / "events.jsonl") if hbt_sampler else None
    if sink:
        bus.subscribe(sink)
    bundle = build_trainer(
        model, table, config, tmp / "ckpt", bus, batch_sampler=None if hbt_sampler else BatchSamplers.BATCH_SAMPLER
    )
    if not hbt_sampler:
        bundle.trainer.remove_callback(bundle.callback)
    timer = StepTimer()
    bundle.trainer.add_callback(timer)
    t0 = time.perf_counter()
    bundle.trainer.train()
    wall = time.perf_counter() - t0
    if sink:
        sink.close()
    return [wall / config.steps, *timer.times[2:]]  # drop 2 warm-up steps from the per-step list


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default="../shared/data")
    ap.add_argument("--backbone", default=None)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=16)
    args = ap.parse_args()
    start_offline()
    config, table = hybrid_training(args, max_train_pairs=300, train_langs=["de", "en", "es", "zh"])
    base = load_backbone(args.backbone)
    # the sampler's own cost, per batch
    sampler = StrategyBatchSampler(
        list(range(len(table))), args.batch_size, True, table=table, strategy=make_strategy("hybrid", p=0.5)
    )
    t = time.perf_counter()
    n = sum(1 for _ in sampler)
    per_batch = (time.perf_counter() - t) / n
    hbt_steps: list[float] = []
    st_steps: list[float] = []
    with tempfile.TemporaryDirectory() as d:
        for r in range(args.rounds):
            for hbt_first in (r % 2 == 0,):
                order = [True, False] if hbt_first else [False, True]
                for use_hbt in order:
                    times = timed_run(base, table, config, use_hbt, Path(d) / f"r{r}{use_hbt}")
                    (hbt_steps if use_hbt else st_steps).extend(times[1:])
    med_hbt, med_st = statistics.median(hbt_steps), statistics.median(st_steps)
    print(f"pairs: {table.counts()}, batch {args.batch_size}, {args.steps} steps x {args.rounds} rounds each")
    print(f"sentence-transformers default sampler: median {med_st:.3f} s/step")
    print(f"hbt hybrid sampler + event stream:    median {med_hbt:.3f} s/step")
    print(f"overhead (median step time):          {100 * (med_hbt / med_st - 1):+.2f} %   (target <= 3 %)")
    print(
        f"sampler cost per batch:               {per_batch * 1e3:.3f} ms = {100 * per_batch / med_st:.3f} % of a step"
    )


if __name__ == "__main__":
    main()
