"""In-memory vs sharded exact search, and IVF / HNSW recall, measured side by side in one run.

Corpora, each written once to float32 shards, then searched by fresh subprocesses (one per method) so that
each method's peak RSS is its own ("above start": minus the RSS after imports and BLAS warm-up):
  real:      every XQuAD-R candidate in all 11 languages, every question; vectors from the tests' CountingEncoder
             at dim 384 (the bundled model's width). The work is evaluate_benchmark's search: per query language,
             ranks of the 11 relevant rows in each language pool and in the whole pool, plus the top-10.
  synthetic: --rows random unit vectors of dim 384 drawn around 2000 centres; --queries queries, each a perturbed
             corpus row (that row relevant): whole-pool ranks and top-10. IVF / HNSW run on a second
             synthetic corpus of --ann-rows rows (building HNSW over 500k rows takes long on a few cores).
in-memory = hbt.engine.retrieval.search (the pool loaded whole); sharded = shards.search_pool (one shard at a time).
Both must give identical top-10 ids, scores and ranks; the script checks. IVF / HNSW indexes are built from the
shards and their recall@10 and query speed are set against exact flat search.

Usage: python benchmarks/bench_sharded_search.py --data-dir ../shared/data [--rows 500000] [--shard-size 50000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
LANGS = ["ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh"]
DIM = 384


def _status_mib(field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of this process in MiB. Not ru_maxrss: Linux carries that over from the
    parent across fork + exec, so a child would report at least the parent's RSS."""
    with open("/proc/self/status") as fh:
        line = next(ln for ln in fh if ln.startswith(field + ":"))
    return int(line.split()[1]) / 1024


# ---------------------------------------------------------------- corpora (parent) ----


def _write_job(root: Path, queries: np.ndarray, sets: dict[str, list[int]], rel: list[np.ndarray], groups: Any) -> Path:
    np.save(root / "queries.npy", queries)
    np.savez(root / "relevant.npz", flat=np.concatenate(rel), lengths=np.array([len(r) for r in rel]))
    if groups is not None:
        np.save(root / "groups.npy", groups)
    job = root / "job.json"
    job.write_text(json.dumps({"sets": sets, "groups": groups is not None}))
    return job


def real_corpus(data_dir: str, root: Path, shard_size: int) -> Path:
    sys.path.insert(0, str(REPO))
    from hbt.engine.data.registry import load_benchmark
    from hbt.engine.encoding.shard_files import encode_to_shards

    from tests.conftest import CountingEncoder

    bench = load_benchmark("xquad-r", data_dir, LANGS)
    enc = CountingEncoder(dim=DIM)
    encode_to_shards(enc, [c.sentence for c in bench.candidates], root / "shards", shard_size=shard_size)
    order = sorted(range(len(bench.queries)), key=lambda i: bench.queries[i].lang)  # query sets contiguous
    queries = [bench.queries[i] for i in order]
    q_emb = enc.encode([q.text for q in queries], "query")
    pos = {c.id: i for i, c in enumerate(bench.candidates)}
    rel = [np.array(sorted(pos[c] for c in bench.qrels[q.id]), dtype=np.int64) for q in queries]
    sets = {x: [min(i for i, q in enumerate(queries) if q.lang == x), 0] for x in LANGS}
    for x in LANGS:
        sets[x][1] = sets[x][0] + sum(1 for q in queries if q.lang == x)
    groups = np.array([LANGS.index(c.lang) for c in bench.candidates], dtype=np.int64)
    return _write_job(root, q_emb, sets, rel, groups)


def synthetic_corpus(rows: int, n_queries: int, root: Path, shard_size: int, seed: int = 0) -> Path:
    from hbt.engine.encoding.shard_files import ShardWriter

    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((2000, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    writer = ShardWriter(root / "shards", shard_size)
    picks = np.sort(rng.choice(rows, n_queries, replace=False))
    queries = np.empty((n_queries, DIM), np.float32)
    for start in range(0, rows, 65536):  # streamed: the corpus is never whole in this process either
        n = min(65536, rows - start)
        block = centres[rng.integers(0, len(centres), n)] + 0.05 * rng.standard_normal((n, DIM)).astype(np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        writer.append(block)
        mine = picks[(picks >= start) & (picks < start + n)]
        q = block[mine - start] + 0.03 * rng.standard_normal((len(mine), DIM)).astype(np.float32)
        queries[np.searchsorted(picks, mine)] = q / np.linalg.norm(q, axis=1, keepdims=True)
    writer.close()
    return _write_job(root, queries, {"all": [0, n_queries]}, [np.array([p]) for p in picks], None)


# ---------------------------------------------------------------- methods (child) ----


def _load_job(job: Path) -> tuple[dict[str, Any], np.ndarray, list[np.ndarray], np.ndarray | None]:
    spec = json.loads(job.read_text())
    queries = np.load(job.parent / "queries.npy")
    r = np.load(job.parent / "relevant.npz")
    rel = np.split(r["flat"], np.cumsum(r["lengths"])[:-1])
    groups = np.load(job.parent / "groups.npy") if spec["groups"] else None
    return spec, queries, rel, groups


def child(method: str, job: Path, out: Path, k: int) -> None:
    import faiss
    from hbt.engine.encoding import shard_files
    from hbt.engine.retrieval import ann, search, shards

    warm = np.ones((64, DIM), np.float32)  # BLAS thread buffers (numpy's and faiss's) count as fixed cost
    _ = warm @ np.ones((4096, DIM), np.float32).T
    flat = faiss.IndexFlatIP(DIM)
    flat.add(np.ones((1024, DIM), np.float32))
    flat.search(warm, 10)
    del flat
    base = _status_mib("VmRSS")
    spec, queries, rel, groups = _load_job(job)
    pool = shard_files.ShardedPool.open(job.parent / "shards")
    sets = {name: (a, b) for name, (a, b) in spec["sets"].items()}
    t0 = time.perf_counter()
    stats: dict[str, float] = {}
    top: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # (scores, ids)
    ranks: list[np.ndarray] = []
    group_ranks: list[np.ndarray] = []
    if method == "in-memory":
        emb = pool.to_array()
        stats["load_s"] = time.perf_counter() - t0
        for name, (a, b) in sets.items():
            q, r = queries[a:b], rel[a:b]
            if groups is not None:  # evaluate_benchmark's per-language pools
                per = [np.zeros(len(x), np.int64) for x in r]
                for code in np.unique(groups):
                    rows = np.flatnonzero(groups == code)
                    local = [np.searchsorted(rows, x[groups[x] == code]) for x in r]
                    for p, x, got in zip(per, r, search.relevant_ranks(q, emb[rows], local), strict=True):
                        p[groups[x] == code] = got
                group_ranks += per
            ranks += search.relevant_ranks(q, emb, r)
            t = time.perf_counter()
            top[name] = search.top_k(q, emb, k)
            stats["topk_s"] = stats.get("topk_s", 0.0) + time.perf_counter() - t
    elif method == "sharded":
        found = shards.search_pool(
            pool, {n: queries[a:b] for n, (a, b) in sets.items()}, {n: rel[a:b] for n, (a, b) in sets.items()},
            k=k, groups=groups,
        )  # fmt: skip
        top = {name: (found.top_scores[name], found.top_ids[name]) for name in sets}
        for name in sets:
            ranks += found.ranks[name]
            group_ranks += found.group_ranks[name] if groups is not None else []
    else:
        index = ann.build_index(method, pool)
        stats["build_s"] = time.perf_counter() - t0
        t = time.perf_counter()
        for name, (a, b) in sets.items():
            top[name] = ann.search(index, queries[a:b], k)
        stats["topk_s"] = time.perf_counter() - t
        if method == "ivf":
            ivf: Any = index  # an IndexIVF (ann.build_index("ivf", ...)); typed as the faiss base Index
            stats["nlist"], stats["nprobe"] = ivf.nlist, ivf.nprobe
    stats["total_s"] = time.perf_counter() - t0
    stats["peak_rss_mib"] = _status_mib("VmHWM")
    stats["base_rss_mib"] = base
    save: dict[str, Any] = {
        "top": np.concatenate([top[n][1] for n in sets]),
        "top_scores": np.concatenate([top[n][0] for n in sets]),
    }
    if ranks:
        save["ranks"] = np.concatenate(ranks)
    if group_ranks:
        save["group_ranks"] = np.concatenate(group_ranks)
    np.savez(out, **save)
    print(json.dumps(stats))


# ---------------------------------------------------------------- report (parent) ----


def run_child(method: str, job: Path, k: int) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    out = job.parent / f"{method}.npz"
    cmd = [sys.executable, __file__, "--child", method, "--job", str(job), "--out", str(out), "--k", str(k)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise SystemExit(f"{method} failed:\n{proc.stderr}")
    with np.load(out) as data:
        arrays = {name: data[name] for name in data.files}
    return json.loads(proc.stdout.strip().splitlines()[-1]), arrays


def compare(title: str, job: Path, k: int, approximate: bool) -> None:
    n_rows = json.loads((job.parent / "shards" / "manifest.json").read_text())["rows"]
    shard_size = json.loads((job.parent / "shards" / "manifest.json").read_text())["shard_size"]
    n_q = len(np.load(job.parent / "queries.npy", mmap_mode="r"))
    print(f"\n== {title}: {n_rows:,} rows x {DIM} float32 ({n_rows * DIM * 4 / 2**20:,.0f} MiB), {n_q:,} queries, "
          f"shard_size {shard_size:,} ==")  # fmt: skip
    mem, mem_out = run_child("in-memory", job, k)
    sh, sh_out = run_child("sharded", job, k)
    same = all(np.array_equal(mem_out[key], sh_out[key]) for key in mem_out)
    print(f"{'':24}{'in-memory':>12}{'sharded':>12}{'sharded/in-memory':>20}")
    for label, key in (("wall time (s)", "total_s"), ("peak RSS (MiB)", "peak_rss_mib")):
        print(f"{label:24}{mem[key]:12.1f}{sh[key]:12.1f}{sh[key] / mem[key]:20.2f}")
    above_m, above_s = mem["peak_rss_mib"] - mem["base_rss_mib"], sh["peak_rss_mib"] - sh["base_rss_mib"]
    print(f"{'peak RSS above start':24}{above_m:12.1f}{above_s:12.1f}{above_s / above_m:20.2f}")
    what = f"top-{k} ids and scores, ranks" + (", per-language ranks" if "group_ranks" in mem_out else "")
    print(f"identical {what}: {same}")
    if not approximate:
        return
    exact_s = mem["topk_s"]
    head = f"{'top-' + str(k):14}{'recall@' + str(k):>10}{'build (s)':>11}{'search (s)':>12}{'speed-up':>10}"
    print(head + f"{'peak RSS':>10}")
    print(f"{'exact (flat)':14}{1.0:10.4f}{0.0:11.1f}{exact_s:12.2f}{1.0:10.1f}{'':>10}")
    from hbt.engine.retrieval.ann import recall_at_k

    for method in ("ivf", "hnsw"):
        st, out = run_child(method, job, k)
        recall = recall_at_k(out["top"], mem_out["top"], k)
        name = f"ivf {int(st['nprobe'])}/{int(st['nlist'])}" if method == "ivf" else "hnsw M=32"
        print(f"{name:14}{recall:10.4f}{st['build_s']:11.1f}{st['topk_s']:12.2f}{exact_s / st['topk_s']:10.1f}"
              f"{st['peak_rss_mib']:10.0f}")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default="../shared/data")
    ap.add_argument("--rows", type=int, default=500_000, help="synthetic corpus rows")
    ap.add_argument("--queries", type=int, default=1000, help="synthetic corpus queries")
    ap.add_argument("--ann-rows", type=int, default=100_000, help="synthetic corpus rows for the IVF / HNSW part")
    ap.add_argument("--shard-size", type=int, default=50_000)
    ap.add_argument("--real-shard-size", type=int, default=2_000)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--job", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.job, args.out, args.k)
        return
    import faiss

    print(f"faiss {faiss.__version__}, {faiss.omp_get_max_threads()} threads; numpy {np.__version__}")
    with tempfile.TemporaryDirectory(prefix="hbt-bench-shards-") as tmp:
        root = Path(tmp)
        (root / "real").mkdir()
        t = time.perf_counter()
        job = real_corpus(args.data_dir, root / "real", args.real_shard_size)
        print(f"real corpus encoded to shards in {time.perf_counter() - t:.1f} s")
        compare("XQuAD-R, all 11 languages (CountingEncoder, dim 384)", job, args.k, approximate=True)
        (root / "synthetic").mkdir()
        t = time.perf_counter()
        job = synthetic_corpus(args.rows, args.queries, root / "synthetic", args.shard_size)
        print(f"\nsynthetic corpus written to shards in {time.perf_counter() - t:.1f} s")
        compare("synthetic clustered unit vectors", job, args.k, approximate=False)
        (root / "ann").mkdir()
        job = synthetic_corpus(args.ann_rows, args.queries, root / "ann", args.shard_size, seed=1)
        compare("synthetic clustered unit vectors, IVF / HNSW", job, args.k, approximate=True)


if __name__ == "__main__":
    main()
