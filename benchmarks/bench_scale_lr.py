"""The bundled model's training defaults, measured: MNRL scale (20 = sentence-transformers' default, 100 = the E5
recipe's temperature 0.01) x learning rate, each cell trained the same number of steps with the same seed and
batches, then evaluated zero-shot on XQuAD-R against the untrained baseline (monolingual and multilingual mAP).

Training uses the CPU setting the quick/study presets use (top N layers trainable, frozen bottom cached); the
evaluation texts' bottom outputs are shared by every cell.

Usage: nice -n 5 python benchmarks/bench_scale_lr.py --data-dir ../shared/data [--steps 60] [--lrs 2e-5,1e-4]
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from _common import bundled_model, start_offline, xquad_subset
from hbt.engine.backbones.partial import share_for_evaluation
from hbt.engine.common.events import EventBus
from hbt.engine.common.run_config import RunConfig
from hbt.engine.encoding.encode import SentenceTransformerEncoder
from hbt.engine.evaluation.evaluate import evaluate_benchmark
from hbt.engine.evaluation.results import SETTINGS
from hbt.engine.runs.run import build_training_table
from hbt.engine.training.train import build_trainer


def _maps(model: Any, bench: Any, n_top: int) -> dict[str, float]:
    share_for_evaluation(model, n_top)
    s = evaluate_benchmark(bench, SentenceTransformerEncoder(model, "bench")).summary
    return {setting: s.block(setting).macro["map"] for setting in SETTINGS}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default="../shared/data")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--scales", default="20,100")
    ap.add_argument("--lrs", default="2e-5,1e-4")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--strategy", default="hybrid")
    ap.add_argument("--max-train-pairs", type=int, default=400)
    ap.add_argument("--langs", default="ar,de,en,hi,zh")
    ap.add_argument("--max-queries", type=int, default=100)
    args = ap.parse_args()
    start_offline()
    base_cfg = RunConfig(strategy=args.strategy, data_dir=args.data_dir, steps=args.steps, batch_size=16,
                         max_train_pairs=args.max_train_pairs, max_seq_length=96, seed=0,
                         train_top_layers=args.layers, lr=2e-5, scale=20.0)  # fmt: skip
    table = build_training_table(base_cfg)
    bench = xquad_subset(args.data_dir, args.langs, args.max_queries)
    base = bundled_model(96)
    print(f"bundled model, top {args.layers} layers trainable (cached bottom), {args.strategy}, {args.steps} x 16, "
          f"MLQA-R pool {table.counts()}; XQuAD-R {args.langs}: {len(bench.queries)} queries")  # fmt: skip
    t0 = time.perf_counter()
    rows = [("untrained", "", "", _maps(copy.deepcopy(base), bench, args.layers), None)]
    print(f"  baseline evaluated in {time.perf_counter() - t0:.0f} s", flush=True)
    with tempfile.TemporaryDirectory() as d:
        for scale in (float(x) for x in args.scales.split(",")):
            for lr in (float(x) for x in args.lrs.split(",")):
                model = copy.deepcopy(base)
                cfg = replace(base_cfg, scale=scale, lr=lr)
                bundle = build_trainer(model, table, cfg, Path(d) / f"{scale}-{lr}", EventBus())
                bundle.trainer.train()
                curve = bundle.callback.curve
                maps = _maps(model, bench, args.layers)
                rows.append((f"{scale:g}", f"{lr:g}", f"{curve[0][1]:.3f} -> {curve[-1][1]:.3f}", maps, None))
                print(f"  scale {scale:g} lr {lr:g}: {maps}", flush=True)
                del model, bundle
    print()
    print(f"{'scale':>6} {'lr':>7} {'loss':>16} {'mono mAP':>9} {'cross mAP':>9} {'multi mAP':>9}")
    for scale_s, lr_s, loss, m, _ in rows:
        print(f"{scale_s:>6} {lr_s:>7} {loss:>16} {m['mono']:>9.4f} {m['cross']:>9.4f} {m['multi']:>9.4f}")


if __name__ == "__main__":
    main()
