"""Evaluation cost of a grid: every cell re-encoding every text (today's full path) vs cells that share a frozen
bottom (the baseline computes the evaluation texts' bottom outputs once, each trained cell runs only its top N
layers); and the int8 ONNX Runtime encoder's speed ratio and mAP difference against torch float32, one run.

The "trained cells" here are the bundled model with its top N layers perturbed (a few per mille of noise): the
encoding cost does not depend on the weights' values, and a top-only change is exactly what a top-N cell is.

Usage: nice -n 5 python benchmarks/bench_eval_speed.py --data-dir ../shared/data [--cells 3] [--layers 4]
"""

from __future__ import annotations

import argparse
import copy
import time
from typing import Any

import torch
from _common import bundled_model, start_offline, xquad_subset
from hbt.engine.backbones import model_fingerprint
from hbt.engine.backbones.frozen_cache import SHARED
from hbt.engine.backbones.partial import share_for_evaluation
from hbt.engine.encoding.encode import SentenceTransformerEncoder
from hbt.engine.encoding.onnx_encode import OnnxEncoder
from hbt.engine.evaluation.evaluate import evaluate_benchmark
from hbt.engine.evaluation.results import SETTINGS, DatasetSummary


def _maps(summary: DatasetSummary) -> dict[str, float]:
    return {setting: summary.block(setting).macro["map"] for setting in SETTINGS}


def _cell(base: Any, n_top: int, seed: int) -> Any:
    model = copy.deepcopy(base)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in model[0].auto_model.encoder.layer[-n_top:]:
            for p in layer.parameters():
                p.mul_(1 + 0.003 * torch.randn(p.shape, generator=gen))
    return model


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default="../shared/data")
    ap.add_argument("--langs", default="ar,de,en,hi,zh")
    ap.add_argument("--max-queries", type=int, default=200)
    ap.add_argument("--cells", type=int, default=3, help="grid cells evaluated: the baseline + cells-1 trained")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--skip-grid", action="store_true")
    args = ap.parse_args()
    start_offline()
    bench = xquad_subset(args.data_dir, args.langs, args.max_queries)
    base = bundled_model(128)
    print(f"bundled model, XQuAD-R {args.langs}: {len(bench.queries)} queries, {len(bench.candidates)} candidates, "
          f"torch threads {torch.get_num_threads()}")  # fmt: skip

    # int8 ONNX Runtime vs torch float32 on the same model and texts
    t0 = time.perf_counter()
    torch_sum = evaluate_benchmark(bench, SentenceTransformerEncoder(base, "fp32")).summary
    t_torch = time.perf_counter() - t0
    print(f"  torch float32: {t_torch:.1f} s", flush=True)
    t0 = time.perf_counter()
    onnx = OnnxEncoder(base, "fp32", "onnx-int8")
    t_export = time.perf_counter() - t0
    t0 = time.perf_counter()
    int8_sum = evaluate_benchmark(bench, onnx).summary
    t_int8 = time.perf_counter() - t0
    onnx.close()
    a, b = _maps(torch_sum), _maps(int8_sum)
    print(f"  onnx int8: export+quantise {t_export:.1f} s, encode+search {t_int8:.1f} s", flush=True)
    print()
    print(f"{'runtime':<16} {'eval s':>7} {'speed':>6} {'mono mAP':>9} {'cross mAP':>9} {'multi mAP':>9}")
    print(f"{'torch float32':<16} {t_torch:>7.1f} {1:>5.2f}x {a['mono']:>9.4f} {a['cross']:>9.4f} {a['multi']:>9.4f}")
    print(f"{'onnx int8':<16} {t_int8:>7.1f} {t_torch / t_int8:>5.2f}x {b['mono']:>9.4f} {b['cross']:>9.4f} "
          f"{b['multi']:>9.4f}")  # fmt: skip
    diff = {k: b[k] - a[k] for k in a}
    print(f"{'difference':<16} {'':>7} {'':>6} {diff['mono']:>+9.4f} {diff['cross']:>+9.4f} {diff['multi']:>+9.4f}")
    worst = max(abs(v) for v in diff.values())
    print(
        f"default-on rule (|mAP difference| < 0.002 on XQuAD-R): {'met' if worst < 0.002 else 'NOT met'} "
        f"(largest {worst:.4f}); export+quantise once per model: {t_export:.1f} s"
    )
    if args.skip_grid:
        return

    # a grid's evaluation: full re-encoding per cell vs shared bottom outputs
    cells = [base] + [_cell(base, args.layers, s) for s in range(1, args.cells)]
    full_s, shared_s = [], []
    for i, model in enumerate(cells):
        t0 = time.perf_counter()
        evaluate_benchmark(bench, SentenceTransformerEncoder(model, model_fingerprint(model)))
        full_s.append(time.perf_counter() - t0)
        print(f"  full path, cell {i}: {full_s[-1]:.1f} s", flush=True)
    for i, model in enumerate(cells):
        share_for_evaluation(model, args.layers)
        t0 = time.perf_counter()
        evaluate_benchmark(bench, SentenceTransformerEncoder(model, f"shared-{i}"))
        shared_s.append(time.perf_counter() - t0)
        print(f"  shared bottom, cell {i}: {shared_s[-1]:.1f} s", flush=True)
    print()
    print(f"grid of {args.cells} cells (baseline + {args.cells - 1} top-{args.layers} cells), evaluation seconds:")
    print(f"{'cell':<10} {'full':>8} {'shared':>8}")
    for i, (f, s) in enumerate(zip(full_s, shared_s, strict=True)):
        print(f"{'baseline' if i == 0 else f'cell {i}':<10} {f:>8.1f} {s:>8.1f}")
    print(f"{'total':<10} {sum(full_s):>8.1f} {sum(shared_s):>8.1f}   ratio {sum(full_s) / sum(shared_s):.2f}x")
    print(f"frozen store: {len(SHARED)} entries, {SHARED.nbytes / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
