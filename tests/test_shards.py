"""Sharded (on-disk, shard-by-shard) search gives exactly the in-memory results; approximate indexes report recall."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from hbt.engine.cli.main import _run_config, build_parser
from hbt.engine.common.errors import ConfigError
from hbt.engine.common.io import read_json
from hbt.engine.common.run_config import RunConfig
from hbt.engine.data.benchmark import Benchmark
from hbt.engine.data.registry import load_benchmark
from hbt.engine.encoding.shard_files import MANIFEST, ShardedPool, ShardWriter, encode_to_shards
from hbt.engine.evaluation.evaluate import evaluate_benchmark
from hbt.engine.evaluation.results import SETTINGS, DatasetSummary
from hbt.engine.retrieval import ann
from hbt.engine.retrieval.search import relevant_ranks, scores, top_k
from hbt.engine.retrieval.shards import search_pool

from tests.conftest import CountingEncoder

LANGS = ["de", "en", "zh"]


class MemoEncoder:
    """CountingEncoder's vectors, computed once per text for the whole module (keeps the tests fast)."""

    _memo: ClassVar[dict[tuple[str, str], np.ndarray]] = {}
    fingerprint = "counting"

    def __init__(self, fp16_passages: bool = False) -> None:
        self.base = CountingEncoder()
        self.fp16_passages = fp16_passages

    def encode(self, texts: Sequence[str], role: str) -> np.ndarray:
        rows = []
        for t in texts:
            if (role, t) not in self._memo:
                self._memo[role, t] = self.base.encode([t], role)[0]
            rows.append(self._memo[role, t])
        out = np.stack(rows) if rows else np.zeros((0, self.base.dim), np.float32)
        if self.fp16_passages and role == "passage":  # what a float16 shard stores, widened back
            out = out.astype(np.float16).astype(np.float32)
        return out


@functools.cache
def _bench(data_dir: Path) -> Benchmark:
    return load_benchmark("xquad-r", data_dir, LANGS).subset(max_queries=60, seed=0)


@functools.cache
def _in_memory(data_dir: Path, fp16: bool) -> tuple[DatasetSummary, dict[str, Any]]:
    result = evaluate_benchmark(_bench(data_dir), MemoEncoder(fp16_passages=fp16))
    return result.summary, result.per_query_ap


def _comparable(summary: DatasetSummary) -> dict[str, Any]:
    return {k: v for k, v in summary.to_json().items() if k not in ("timings", "search")}


@functools.cache
def _vectors(data_dir: Path) -> tuple[np.ndarray, np.ndarray, list[np.ndarray], np.ndarray]:
    """Real-subset queries, candidates, relevant rows and candidate language codes."""
    bench = _bench(data_dir)
    enc = MemoEncoder()
    q = enc.encode([x.text for x in bench.queries], "query")
    c = enc.encode([x.sentence for x in bench.candidates], "passage")
    pos = {x.id: i for i, x in enumerate(bench.candidates)}
    rel = [np.array(sorted(pos[c] for c in bench.qrels[x.id]), dtype=np.int64) for x in bench.queries]
    lang = np.array([LANGS.index(x.lang) for x in bench.candidates], dtype=np.int64)
    return q, c, rel, lang


def _write(root: Path, rows: np.ndarray, shard_size: int, dtype: str = "float32") -> ShardedPool:
    writer = ShardWriter(root, shard_size, dtype)
    for s in range(0, len(rows), 777):  # appends that straddle shard boundaries
        writer.append(rows[s : s + 777])
    return writer.close()


def test_scores_do_not_depend_on_the_other_rows(data_dir: Path) -> None:
    q, c, _, _ = _vectors(data_dir)
    full = scores(q, c)
    for a, b in [(0, 1), (5, 7), (100, 1124), (1000, 3001), (len(c) - 1, len(c))]:
        assert (scores(q, c[a:b]) == full[:, a:b]).all(), (a, b)
    idx = np.array([17, 3, 2500, 999])
    assert (scores(q[:1], c[idx]) == full[:1, idx]).all()


@pytest.mark.parametrize("shard_size", [1000, 913, 10_000])  # divides into equal shards / leaves a remainder / one
def test_sharded_search_equals_in_memory(data_dir: Path, tmp_path: Path, shard_size: int) -> None:
    q, c, rel, lang = _vectors(data_dir)
    pool = _write(tmp_path, c, shard_size)
    assert pool.n_rows == len(c) and (pool.to_array() == c).all()
    found = search_pool(pool, {"all": q, "few": q[:7]}, {"all": rel, "few": rel[:7]}, k=10, groups=lang)
    for name, n in (("all", len(q)), ("few", 7)):
        ref_scores, ref_ids = top_k(q[:n], c, 10)
        assert (found.top_ids[name] == ref_ids).all()
        assert (found.top_scores[name] == ref_scores).all()
    ref = relevant_ranks(q, c, rel)
    assert all((a == b).all() for a, b in zip(found.ranks["all"], ref, strict=True))
    for code in range(len(LANGS)):  # rank within the own-language pool = relevant_ranks on that sub-pool
        rows = np.flatnonzero(lang == code)
        local = [np.searchsorted(rows, r[lang[r] == code]) for r in rel]
        ref = relevant_ranks(q, c[rows], local)
        mine = [g[lang[r] == code] for g, r in zip(found.group_ranks["all"], rel, strict=True)]
        assert all((a == b).all() for a, b in zip(mine, ref, strict=True))


def test_ties_follow_the_in_memory_rule(tmp_path: Path) -> None:
    """Duplicate rows tie exactly: top-k takes them by ascending row id, on disk as in memory."""
    rng = np.random.default_rng(0)
    base = rng.standard_normal((5, 16)).astype(np.float32)
    pool_rows = base[rng.integers(0, 5, 2000)]
    queries = base[rng.integers(0, 5, 30)] + 0.01 * rng.standard_normal((30, 16)).astype(np.float32)
    ref_scores, ref_ids = top_k(queries, pool_rows, 10)
    full = scores(queries, pool_rows)
    canonical = np.lexsort((np.broadcast_to(np.arange(2000), full.shape), -full), axis=1)[:, :10]
    assert (ref_ids == canonical).all()
    found = search_pool(_write(tmp_path, pool_rows, 300), {"q": queries}, k=10)
    assert (found.top_ids["q"] == ref_ids).all() and (found.top_scores["q"] == ref_scores).all()


@pytest.mark.parametrize("shard_size", [1000, 913])
def test_sharded_evaluation_has_identical_metrics(data_dir: Path, tmp_path: Path, shard_size: int) -> None:
    summary, per_query = _in_memory(data_dir, False)
    encoder = CountingEncoder() if shard_size == 913 else MemoEncoder()
    result = evaluate_benchmark(_bench(data_dir), encoder, shard_size=shard_size, shard_dir=tmp_path)
    assert _comparable(result.summary) == _comparable(summary)  # mono/cross/multi, every metric, bias
    assert result.per_query_ap == per_query
    search = {"shard_size": shard_size, "shard_dtype": "float32", "index": "exact", "recall@10": 1.0}
    assert result.summary.search == search
    if isinstance(encoder, CountingEncoder):  # streaming still encodes each unique text exactly once
        assert max(Counter(encoder.calls).values()) == 1
        assert {t for r, t in encoder.calls if r == "passage"} == {c.sentence for c in _bench(data_dir).candidates}


def test_sharded_evaluation_of_partly_parallel_data(data_dir: Path) -> None:
    """MLQA-R: some queries have no relevant row in some language pools; they drop out the same way."""
    bench = load_benchmark("mlqa-r", data_dir, ["de", "es"]).subset(max_queries=80, seed=0)
    memory = evaluate_benchmark(bench, MemoEncoder())
    sharded = evaluate_benchmark(bench, MemoEncoder(), shard_size=1500)
    assert _comparable(sharded.summary) == _comparable(memory.summary)
    assert sharded.per_query_ap == memory.per_query_ap
    assert sharded.summary.cross.per_pair["es", "de"]["n_queries"] < len(bench.queries_in("es"))


def test_float16_shards_equal_in_memory_search_on_float16_vectors(data_dir: Path, tmp_path: Path) -> None:
    summary, per_query = _in_memory(data_dir, True)
    result = evaluate_benchmark(
        _bench(data_dir), MemoEncoder(), shard_size=1000, shard_dtype="float16", shard_dir=tmp_path
    )
    assert _comparable(result.summary) == _comparable(summary)
    assert result.per_query_ap == per_query
    assert np.load(tmp_path / "shard-00000.npy", mmap_mode="r").dtype == np.float16
    # and float16 storage moves mAP by little against float32 (measured <= 4e-6 on this subset)
    exact = _in_memory(data_dir, False)[0]
    for setting in SETTINGS:
        assert result.summary.macro(setting) == pytest.approx(exact.macro(setting), abs=1e-4)


def test_manifest_and_streaming_encode(tmp_path: Path, counting_encoder: CountingEncoder) -> None:
    texts = [f"sentence number {i % 7}" for i in range(23)] + ["a late new one"]  # repeats across shards
    pool, n_encoded = encode_to_shards(counting_encoder, texts, tmp_path, shard_size=5, dtype="float16")
    assert n_encoded == 8 and max(Counter(counting_encoder.calls).values()) == 1
    manifest = read_json(tmp_path / MANIFEST)
    assert manifest == {
        "format": "hbt-shards/1",
        "rows": 24,
        "dim": 32,
        "dtype": "float16",
        "shard_size": 5,
        "shards": [{"file": f"shard-{i:05d}.npy", "rows": 5 if i < 4 else 4} for i in range(5)],
        "encoder": "counting",
        "role": "passage",
        "text_mode": "sentence",  # the encoding parameters (encode.encoding_params)
        "prefix": "",
        "max_length": None,
        "languages": False,
    }
    reopened = ShardedPool.open(tmp_path)
    assert reopened == pool and reopened.bounds()[-1] == (20, 24)
    rows = reopened.to_array()
    expected = np.stack([counting_encoder._vec(t) for t in texts]).astype(np.float16).astype(np.float32)
    assert (rows == expected).all()
    assert (reopened.rows(np.array([23, 0, 7])) == rows[[23, 0, 7]]).all()


def test_incomplete_shard_directory_is_refused(tmp_path: Path) -> None:
    writer = ShardWriter(tmp_path, 4)
    writer.append(np.eye(8, dtype=np.float32))  # two shards flushed, no manifest yet
    with pytest.raises(ConfigError, match="no complete shard set"):
        ShardedPool.open(tmp_path)


def test_approximate_indexes_report_recall(data_dir: Path, tmp_path: Path) -> None:
    q, c, _, _ = _vectors(data_dir)
    _, exact = top_k(q, c, 10)
    pool = _write(tmp_path, c, 1000)
    measured = {}
    for kind in ann.APPROXIMATE:
        _, approx = ann.search(ann.build_index(kind, pool), q, 10)
        measured[kind] = ann.recall_at_k(approx, exact)
        assert 0.0 <= measured[kind] <= 1.0
    assert measured["hnsw"] >= 0.95, measured  # measured 0.99 on this subset (HNSW build is multi-threaded)
    assert measured["ivf"] >= 0.7, measured  # measured 0.85 (default nlist 91, nprobe 19)
    assert ann.recall_at_k(exact, exact) == 1.0
    assert ann.recall_at_k(np.full_like(exact, -1), exact) == 0.0


def test_evaluation_with_hnsw_keeps_exact_metrics(data_dir: Path) -> None:
    summary, _ = _in_memory(data_dir, False)
    result = evaluate_benchmark(_bench(data_dir), MemoEncoder(), index="hnsw").summary
    assert result.search is not None and 0.95 <= result.search["recall@10"] <= 1.0
    for setting in SETTINGS:
        assert result.block(setting) == summary.block(setting)  # ranks stay exact; only the top-k is approximate


def test_config_and_cli_options() -> None:
    with pytest.raises(ConfigError, match=r"unknown index 'annoy' \(allowed: exact, ivf, hnsw\)"):
        RunConfig(index="annoy").validate()
    with pytest.raises(ConfigError, match="shard_size must be a positive number of rows, got 0"):
        RunConfig(shard_size=0).validate()
    args = build_parser().parse_args(["eval", "--shard-size", "50000", "--index", "hnsw"])
    config = _run_config(args)
    assert (config.shard_size, config.index) == (50000, "hnsw")
    default = _run_config(build_parser().parse_args(["eval"]))
    assert (default.shard_size, default.index) == (None, "exact")
