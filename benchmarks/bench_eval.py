"""Evaluation speed, measured side by side in one run on the same subset and machine.

Prints:
  (all-settings eval time) / (time to encode the unique texts once)          target <= 1.15
  (pair-by-pair InformationRetrievalEvaluator time) / (all-settings eval)    target >= 8
and checks that both give the same monolingual/cross-lingual mAP (ours is exact over the pool; the evaluator's
map@k is set to the pool size so it is exact too).

Usage: python benchmarks/bench_eval.py --data-dir ../shared/data [--langs ...] [--max-queries 50]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
from _common import xquad_subset
from hbt.engine.backbones import load_backbone, model_fingerprint
from hbt.engine.common.hub import go_offline_if_unreachable
from hbt.engine.encoding.encode import SentenceTransformerEncoder
from hbt.engine.evaluation.evaluate import evaluate_benchmark


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default="../shared/data")
    ap.add_argument("--backbone", default=None)
    ap.add_argument("--langs", default="ar,de,el,en,es,hi,ru,th,tr,vi,zh")
    ap.add_argument("--max-queries", type=int, default=50)
    ap.add_argument("--batch-size", type=int, default=64)
    args = ap.parse_args()
    go_offline_if_unreachable()
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    model = load_backbone(args.backbone)
    langs = args.langs.split(",")
    bench = xquad_subset(args.data_dir, args.langs, args.max_queries)
    encoder = SentenceTransformerEncoder(model, model_fingerprint(model), batch_size=args.batch_size)
    uq = list(dict.fromkeys(q.text for q in bench.queries))
    uc = list(dict.fromkeys(c.sentence for c in bench.candidates))
    print(
        f"subset: {len(langs)} languages, {len(bench.queries)} queries, {len(bench.candidates)} candidates "
        f"({len(uq)} + {len(uc)} unique texts)"
    )

    encoder.encode(uq[:64], "query")  # warm-up
    t = time.perf_counter()
    encoder.encode(sorted(uq, key=len), "query")
    encoder.encode(sorted(uc, key=len), "passage")
    t_encode = time.perf_counter() - t

    t = time.perf_counter()
    ours = evaluate_benchmark(bench, encoder).summary
    t_ours = time.perf_counter() - t

    prompts = getattr(model, "prompts", {}) or {}
    qp = "query" if prompts.get("query") else None
    cp = "passage" if prompts.get("passage") else None
    t = time.perf_counter()
    diffs = []
    for x in langs:
        queries = {q.id: q.text for q in bench.queries if q.lang == x}
        for y in langs:
            corpus: dict[str, Any] = {c.id: c.sentence for c in bench.candidates if c.lang == y}
            rel = {qid: bench.qrels[qid] & corpus.keys() for qid in queries}
            rel = {k: v for k, v in rel.items() if v}
            ev = InformationRetrievalEvaluator(
                {k: queries[k] for k in rel},
                corpus,
                rel,
                map_at_k=[len(corpus)],
                batch_size=args.batch_size,
                write_csv=False,
                query_prompt_name=qp,
                corpus_prompt_name=cp,
                name=f"{x}-{y}",
            )
            scores = ev(model)
            key = next(k for k in scores if k.endswith(f"map@{len(corpus)}"))
            ref = ours.pair(x, y) or {}
            diffs.append(abs(scores[key] - ref["map"]))
    t_ir = time.perf_counter() - t

    print(f"encode unique texts once:           {t_encode:8.1f} s")
    print(
        f"hbt all settings (mono+cross+multi): {t_ours:8.1f} s   ({len(langs)} mono, "
        f"{len(ours.cross.per_pair)} cross, multilingual pool)"
    )
    print(f"IR evaluator pair by pair (no multi): {t_ir:7.1f} s   ({len(langs) ** 2} pairs)")
    print(f"ratio hbt / encode-once:             {t_ours / t_encode:8.3f}   (target <= 1.15)")
    print(f"ratio IR-evaluator / hbt:            {t_ir / t_ours:8.2f}x  (target >= 8x)")
    print(f"max |mAP difference| over {len(diffs)} pairs: {max(diffs):.2e} (mean {np.mean(diffs):.2e})")


if __name__ == "__main__":
    main()
