"""Full-size check: every number evaluate_benchmark reports equals pytrec_eval's, on full XQuAD-R and MLQA-R.

For each dataset: the bundled model (or --backbone) encodes every unique text once (an embedding cache in a temporary
folder serves the second read), evaluate_benchmark scores every setting (mono, cross, multi), and
evaluation.trec_reference recomputes them with pytrec_eval from the same scores. Prints the largest |hbt - pytrec_eval|
per metric (target < 1e-6), and how many queries have identical relevant texts (the ties that used to break AP).

Usage: nice -n 5 python benchmarks/bench_trec_equality.py --data-dir ../shared/data [--datasets xquad-r,mlqa-r]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from pathlib import Path

from hbt.engine.backbones import load_backbone, model_fingerprint
from hbt.engine.common.hub import go_offline_if_unreachable
from hbt.engine.data.registry import load_benchmark
from hbt.engine.encoding.encode import EmbeddingCache, SentenceTransformerEncoder, encode_unique
from hbt.engine.evaluation.evaluate import evaluate_benchmark
from hbt.engine.evaluation.results import SETTINGS
from hbt.engine.evaluation.trec_reference import compare, reference


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default="../shared/data")
    ap.add_argument("--backbone", default=None)
    ap.add_argument("--datasets", default="xquad-r,mlqa-r")
    ap.add_argument("--batch-size", type=int, default=64)
    args = ap.parse_args()
    go_offline_if_unreachable()
    model = load_backbone(args.backbone)
    encoder = SentenceTransformerEncoder(model, model_fingerprint(model), batch_size=args.batch_size)
    failed = False
    with tempfile.TemporaryDirectory(prefix="hbt-trec-") as tmp:
        cache = EmbeddingCache(Path(tmp) / "emb.sqlite")
        for name in args.datasets.split(","):
            bench = load_benchmark(name, args.data_dir)
            text = {c.id: c.sentence for c in bench.candidates}
            dup = sum(
                1 for q in bench.queries if max(Counter(text[c] for c in bench.qrels[q.id]).values(), default=0) > 1
            )
            t = time.perf_counter()
            result = evaluate_benchmark(bench, encoder, cache=cache)
            t_eval = time.perf_counter() - t
            q_emb, _ = encode_unique(encoder, [q.text for q in bench.queries], "query", cache=cache)
            c_emb, _ = encode_unique(encoder, [c.sentence for c in bench.candidates], "passage", cache=cache)
            t = time.perf_counter()
            worst = compare(result.summary, result.per_query_ap, reference(bench, q_emb, c_emb))
            t_ref = time.perf_counter() - t
            s = result.summary
            print(
                f"{name}: {len(bench.queries)} queries, {len(bench.candidates)} candidates, {dup} queries with "
                f"identical relevant texts; hbt eval {t_eval:.0f}s, pytrec_eval {t_ref:.0f}s"
            )
            maps = " / ".join(f"{s.block(k).macro['map']:.4f}" for k in SETTINGS)
            print(f"  mAP mono/cross/multi {maps}; rank distance {s.bias.overall['rank_distance']:.1f}")
            for key, value in sorted(worst.items()):
                print(f"  max |hbt - pytrec_eval| {key:<14} {value:.2e}")
            failed |= max(worst.values()) >= 1e-6
        cache.close()
    print("EQUAL (all < 1e-6)" if not failed else "DIFFERENT")
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
