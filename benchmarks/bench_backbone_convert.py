"""Sanity benchmark for the bundled backbone: conversion time, peak memory, size on disk, encode throughput.

    python benchmarks/bench_backbone_convert.py [--n 1000] [--batch-size 64] [--cache-dir DIR] [--json]

The conversion runs in a fresh child process into a temporary cache (or `--cache-dir`, which is then kept), so
its peak RSS is measured on its own. Encoding uses XQuAD-R English sentences when the data directory exists
(`--data`, default ../shared/data/xquad-r), else synthetic sentences. Figures are for the 4-bit weights
dequantised to float32 (quality versus the fp32 original is not measured).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _convert_child(cache_dir: str) -> None:
    start = time.perf_counter()
    from hbt.engine.backbones.bundled import ensure_bundled_model

    path = ensure_bundled_model(Path(cache_dir))
    seconds = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"path": str(path), "seconds": seconds, "peak_rss_mib": peak_kib / 1024}))


def _folder_mib(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def _sentences(data_dir: Path, n: int) -> list[str]:
    texts: list[str] = []
    source = data_dir / "en.json"
    if source.is_file():
        data = json.loads(source.read_text(encoding="utf-8"))
        texts = [s for art in data["data"] for p in art["paragraphs"] for s in p["sentences"]]
    if not texts:
        texts = [f"Sentence number {i} talks about topic {i % 17} in a short example." for i in range(n)]
    while len(texts) < n:
        texts = texts + texts
    return texts[:n]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="sentences to encode")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--cache-dir", type=Path, default=None, help="convert here and keep it (default: temp)")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "xquad-r")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.add_argument("--_convert-child", dest="child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _convert_child(args.child)
        return 0

    temp = None
    cache_dir = args.cache_dir
    if cache_dir is None:
        temp = tempfile.mkdtemp(prefix="hbt-bench-")
        cache_dir = Path(temp)
    try:
        env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        proc = subprocess.run(
            [sys.executable, __file__, "--_convert-child", str(cache_dir)],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if proc.returncode != 0:
            print(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "conversion failed")
            return 1
        conversion = json.loads(proc.stdout.strip().splitlines()[-1])
        model_dir = Path(conversion["path"])

        os.environ.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        import torch
        from sentence_transformers import SentenceTransformer

        start = time.perf_counter()
        model = SentenceTransformer(str(model_dir), device="cpu")
        load_seconds = time.perf_counter() - start
        texts = _sentences(args.data, args.n)
        model.encode(texts[: args.batch_size], prompt_name="passage", batch_size=args.batch_size)  # warm-up
        n_tokens = sum(len(ids) for ids in model.tokenizer(["passage: " + t for t in texts])["input_ids"])
        start = time.perf_counter()
        model.encode(texts, prompt_name="passage", batch_size=args.batch_size)
        encode_seconds = time.perf_counter() - start
        result = {
            "conversion_seconds": round(conversion["seconds"], 2),
            "conversion_peak_rss_mib": round(conversion["peak_rss_mib"], 1),
            "folder_mib": round(_folder_mib(model_dir), 1),
            "load_seconds": round(load_seconds, 2),
            "encode_sentences": len(texts),
            "encode_seconds": round(encode_seconds, 2),
            "sentences_per_second": round(len(texts) / encode_seconds, 1),
            "tokens_per_second": round(n_tokens / encode_seconds, 1),
            "mean_tokens_per_sentence": round(n_tokens / len(texts), 1),
            "batch_size": args.batch_size,
            "torch_threads": torch.get_num_threads(),
            "process_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }
    finally:
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>26}: {value}")
        print("(bundled multilingual-e5-small: 4-bit weights dequantised to float32)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
