"""LanguagePools and setting_ranks: the one view both search paths share gives the same ranks in memory and in
shards, and those ranks are the hand-countable ones (score descending, equal scores by ascending row)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hbt.engine.data.benchmark import Benchmark, Candidate, Query
from hbt.engine.encoding.shard_files import ShardWriter
from hbt.engine.evaluation.language_pools import LanguagePools, setting_ranks


def _bench() -> tuple[Benchmark, np.ndarray, np.ndarray]:
    cands = [Candidate(f"{lang}:a{g}", lang, f"{lang}{g}", article=f"a{g}") for g in range(4) for lang in ("de", "en")]
    queries = [Query("de:q0", "de", "q0", "0"), Query("en:q1", "en", "q1", "1"), Query("fr:q2", "fr", "q2", "2")]
    qrels = {"de:q0": {"de:a0", "en:a0"}, "en:q1": {"en:a1", "de:a1"}, "fr:q2": {"en:a2"}}
    rng = np.random.default_rng(3)
    q = rng.integers(-2, 3, (3, 4)).astype(np.float32)
    c = rng.integers(-2, 3, (8, 4)).astype(np.float32)
    c[2:4] = c[0]  # ties with the relevant rows of q0
    return Benchmark("t", queries, cands, qrels), q, c


def _hand_rank(q: np.ndarray, rows: np.ndarray, row: int) -> int:
    s = rows @ q
    return 1 + int(np.sum(s > s[row])) + int(np.sum((s == s[row]) & (np.arange(len(rows)) < row)))


def test_in_memory_and_sharded_ranks_are_identical_and_hand_countable(tmp_path: Path) -> None:
    bench, q, c = _bench()
    pools = LanguagePools.of(bench)
    assert pools.langs == ["de", "en", "fr"] and pools.pool_langs == ["de", "en"]
    assert [r.tolist() for r in pools.relevant["de"]] == [[0, 1]]  # rows of de:a0, en:a0 in bench.candidates
    writer = ShardWriter(tmp_path, shard_size=3)
    writer.append(c)
    memory = setting_ranks(pools, q, c, k=5)
    sharded = setting_ranks(pools, q, writer.close(), k=5)
    for x in pools.langs:
        qx = q[pools.query_rows[x]]
        for y in pools.pool_langs:
            got = memory.pair_ranks(x, y)
            assert [r.tolist() for r in got] == [r.tolist() for r in sharded.pair_ranks(x, y)]
            sub = c[pools.pools[y]]
            for qv, rel, ranks in zip(qx, pools.relevant[x], got, strict=True):
                local = [
                    int(np.flatnonzero(pools.pools[y] == g)[0]) for g in rel if pools.cand_lang[g] == pools.code(y)
                ]
                assert ranks.tolist() == [_hand_rank(qv, sub, j) for j in local]
        whole = memory.ranks(x)
        assert [r.tolist() for r in whole] == [r.tolist() for r in sharded.ranks(x)]
        assert [r.tolist() for r in whole] == [
            [_hand_rank(qv, c, g) for g in rel] for qv, rel in zip(qx, pools.relevant[x], strict=True)
        ]
        assert np.array_equal(memory.top_ids(x), sharded.top_ids(x))
