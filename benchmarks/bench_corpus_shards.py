"""Whole-corpus evaluation at MIRACL scale: memory bounded by the shard, resume after kill -9 mid-encode.

Encode half (a tiny model): a synthetic corpus of --passages passages (default 1,000,000), generated as a stream
and never held whole, is encoded by corpus_shards.encode_corpus in a child process with the tiny random
BERT (`tiny-random`, dim 32). After --kill-after shards are on disk the child is killed with SIGKILL; a fresh child
resumes. Checked: the resumed child encodes only the passages of the missing shards, the manifest covers every
passage in order, and a random sample of rows (from shards written before and after the kill) equals a fresh
encoding of their texts. Reported: each child's peak RSS above its start (after model load), beside the size of one
shard and of the whole corpus's texts and vectors.

Search half (random unit vectors): --passages random unit vectors of dim 384 written as shards of two sizes; a child
process per size runs search_pool (exact ranks of one relevant row per query in the whole corpus, and the top-10)
for --queries queries, each a perturbed corpus row. Reported: peak RSS above start per shard size beside the
shard's and the whole pool's float32 size, and that both layouts give identical ranks and top-10.

Usage: nice python benchmarks/bench_corpus_shards.py [--passages 1000000] [--shard-size 50000] [--kill-after 3]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DIM = 384
WORDS = "river stone light north market song garden winter paper bridge glass tower field cloud iron salt".split()  # noqa: SIM905


def _status_mib(field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of this process in MiB (not ru_maxrss: that carries the parent's over fork)."""
    with open("/proc/self/status") as fh:
        line = next(ln for ln in fh if ln.startswith(field + ":"))
    return int(line.split()[1]) / 1024


def passage(i: int) -> str:
    """Passage i of the synthetic corpus: a few words chosen by i (deterministic, short like a title line)."""
    return f"{WORDS[i % 16]} {WORDS[(i // 16) % 16]} {WORDS[(i // 256) % 16]} {i}"


def stream(n: int) -> Iterator[tuple[str, str]]:
    for i in range(n):
        yield f"{i // 8}#{i % 8}", passage(i)


def _encoder() -> Any:
    from hbt.engine.backbones import load_backbone, model_fingerprint
    from hbt.engine.encoding.encode import SentenceTransformerEncoder

    model = load_backbone("tiny-random", device="cpu")
    return SentenceTransformerEncoder(model, model_fingerprint(model), batch_size=512)


# ---------------------------------------------------------------- children ----


def child_encode(root: Path, n: int, shard_size: int) -> None:
    from hbt.engine.encoding.corpus_shards import CorpusOptions, encode_corpus

    enc = _encoder()
    enc.encode([passage(0)], "passage")
    start = _status_mib("VmRSS")
    t0 = time.perf_counter()
    shards, encoded = encode_corpus(enc, stream(n), root, CorpusOptions(shard_size=shard_size), rank=0, world_size=1)
    assert shards is not None
    stats = {"encoded": encoded, "rows": shards.pool.n_rows, "seconds": time.perf_counter() - t0}
    stats |= {"start_mib": start, "peak_above_start_mib": _status_mib("VmHWM") - start}
    print(json.dumps(stats), flush=True)


def child_search(root: Path, job: Path) -> None:
    from hbt.engine.encoding.shard_files import ShardedPool
    from hbt.engine.retrieval.shards import search_pool

    queries = np.load(job / "queries.npy")
    relevant = [np.array([r]) for r in np.load(job / "relevant.npy")]
    pool = ShardedPool.open(root)
    start = _status_mib("VmRSS")
    t0 = time.perf_counter()
    found = search_pool(pool, {"q": queries}, {"q": relevant}, k=10)
    stats = {"seconds": time.perf_counter() - t0, "peak_above_start_mib": _status_mib("VmHWM") - start}
    np.savez(job / f"out-{pool.shard_size}.npz", ranks=np.concatenate(found.ranks["q"]), top=found.top_ids["q"])
    print(json.dumps(stats), flush=True)


def _child(*args: str) -> list[str]:
    return [sys.executable, __file__, "--child", *args]


# ---------------------------------------------------------------- halves (parent) ----


def encode_half(work: Path, n: int, shard_size: int, kill_after: int) -> None:
    from hbt.engine.encoding.corpus_shards import CorpusShards, complete_shards

    root = work / "encoded"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.Popen(_child("encode", str(root), str(n), str(shard_size)), env=env, stdout=subprocess.PIPE)
    t0 = time.perf_counter()
    while not root.exists() or len(complete_shards(root)) < kill_after:
        time.sleep(0.2)
        if proc.poll() is not None:
            raise SystemExit("the encode child ended before it could be killed")
    time.sleep(0.5 * (time.perf_counter() - t0) / kill_after)  # about half-way through the next shard
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = sorted(complete_shards(root))
    t_kill = time.perf_counter() - t0
    partial = sorted(p.name for p in root.glob(".*.tmp"))
    print(f"encode: killed -9 after {t_kill:.0f}s with shards {before} complete, leftovers {partial or 'none'}")
    out = subprocess.run(_child("encode", str(root), str(n), str(shard_size)), env=env, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(out.stderr)
    stats = json.loads(out.stdout.strip().splitlines()[-1])
    expected = n - len(before) * shard_size
    corpus = CorpusShards.open(root)
    ids_ok = all(pid == f"{i // 8}#{i % 8}" for i, pid in enumerate(corpus.iter_ids()))
    rng = np.random.default_rng(0)
    sample = np.sort(rng.choice(n, size=2000, replace=False))
    enc = _encoder()
    fresh = enc.encode([passage(int(i)) for i in sample], "passage")
    got = corpus.pool.rows(sample)
    in_before = int(np.isin(sample // shard_size, before).sum())
    text_mib = sum(len(passage(i)) + 49 for i in range(shard_size)) / 2**20  # str objects (CPython: 49 B + chars)
    print(
        f"encode: resumed child encoded {stats['encoded']:,} passages (expected {expected:,} = {n:,} - "
        f"{len(before)} x {shard_size:,}) in {stats['seconds']:.0f}s ({stats['encoded'] / stats['seconds']:.0f}/s); "
        f"manifest rows {stats['rows']:,}; ids in corpus order: {ids_ok}"
    )
    print(
        f"encode: {len(sample)} sampled rows ({in_before} from shards written before the kill) vs fresh encoding: "
        f"max |diff| {float(np.abs(got - fresh).max()):.2e}"
    )
    dim = got.shape[1]
    print(
        f"encode: peak RSS above start {stats['peak_above_start_mib']:.0f} MiB; one shard = {shard_size:,} texts "
        f"(~{text_mib:.0f} MiB) + vectors {shard_size * dim * 4 / 2**20:.1f} MiB; whole corpus = texts "
        f"~{text_mib * n / shard_size:.0f} MiB + vectors {n * dim * 4 / 2**20:.0f} MiB"
    )
    if stats["encoded"] != expected or stats["rows"] != n or not ids_ok or not np.allclose(got, fresh, atol=1e-6):
        raise SystemExit("encode half: FAILED")


def search_half(work: Path, n: int, sizes: list[int], n_queries: int) -> None:
    from hbt.engine.encoding.shard_files import ShardWriter

    rng = np.random.default_rng(1)
    job = work / "job"
    job.mkdir()
    relevant = rng.choice(n, size=n_queries, replace=False)
    queries = np.empty((n_queries, DIM), np.float32)
    writers = [ShardWriter(work / f"vec-{s}", s) for s in sizes]
    block = 50_000
    for start in range(0, n, block):
        x = np.random.default_rng(start).standard_normal((min(block, n - start), DIM)).astype(np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        hit = (relevant >= start) & (relevant < start + len(x))
        noisy = x[relevant[hit] - start] + 0.04 * rng.standard_normal((int(hit.sum()), DIM)).astype(np.float32)
        queries[hit] = noisy / np.linalg.norm(noisy, axis=1, keepdims=True)
        for w in writers:
            w.append(x)
    for w in writers:
        w.close()
    np.save(job / "queries.npy", queries)
    np.save(job / "relevant.npy", relevant)
    outs = {}
    for s in sizes:
        out = subprocess.run(_child("search", str(work / f"vec-{s}"), str(job)), capture_output=True, text=True)
        if out.returncode:
            raise SystemExit(out.stderr)
        stats = json.loads(out.stdout.strip().splitlines()[-1])
        outs[s] = np.load(job / f"out-{s}.npz")
        print(
            f"search: {n:,} x {DIM} float32 ({n * DIM * 4 / 2**20:.0f} MiB whole), shard {s:,} rows "
            f"({s * DIM * 4 / 2**20:.0f} MiB): peak RSS above start {stats['peak_above_start_mib']:.0f} MiB "
            f"= {stats['peak_above_start_mib'] / (s * DIM * 4 / 2**20):.2f} x shard, "
            f"{stats['peak_above_start_mib'] / (n * DIM * 4 / 2**20):.3f} x whole pool; {stats['seconds']:.0f}s "
            f"for {n_queries} queries"
        )
    a, b = (outs[s] for s in sizes[:2])
    same = bool(np.array_equal(a["ranks"], b["ranks"]) and np.array_equal(a["top"], b["top"]))
    ranks = a["ranks"]
    print(
        f"search: shard sizes {sizes[0]:,} and {sizes[1]:,} give identical ranks and top-10: {same}; "
        f"relevant row at rank 1 for {float(np.mean(ranks == 1)):.3f} of queries, median rank {np.median(ranks):.0f}"
    )
    if not same:
        raise SystemExit("search half: FAILED")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        sys.path.insert(0, str(REPO))
        kind, root = sys.argv[2], Path(sys.argv[3])
        if kind == "encode":
            child_encode(root, int(sys.argv[4]), int(sys.argv[5]))
        else:
            child_search(root, Path(sys.argv[4]))
        return
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--passages", type=int, default=1_000_000)
    p.add_argument("--shard-size", type=int, default=50_000)
    p.add_argument("--kill-after", type=int, default=3, help="complete shards before the kill -9")
    p.add_argument("--search-shards", default="25000,100000", help="two shard sizes for the search half")
    p.add_argument("--queries", type=int, default=256)
    p.add_argument("--skip", choices=["encode", "search"], help="run one half only")
    p.add_argument("--work", type=Path, help="scratch folder (default: a temporary one, removed)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="hbt-bench-corpus-", dir=args.work) as tmp:
        work = Path(tmp)
        if args.skip != "encode":
            encode_half(work, args.passages, args.shard_size, args.kill_after)
        if args.skip != "search":
            search_half(work, args.passages, [int(s) for s in args.search_shards.split(",")], args.queries)


if __name__ == "__main__":
    main()
