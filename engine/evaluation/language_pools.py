"""One benchmark's pool split by language, and the ranks every setting reads from it.

`LanguagePools` holds what the three settings share: the queries of each language, each query's relevant candidates
as rows of the whole pool, each candidate's language and the rows of each language's sub-pool. `setting_ranks` gives
the ranks of those relevant rows (in one language's sub-pool, or in the whole pool) and each query's exact top-k,
from candidate embeddings in memory (searched per call) or in on-disk shards (one pass over the shards up front,
retrieval.shards.search_pool); both give bit-identical ranks, so evaluate's per-setting loop does not care which.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..common.events import NULL_BUS, EventBus
from ..data.benchmark import Benchmark
from ..encoding.shard_files import ShardedPool
from ..retrieval.search import relevant_ranks, top_k
from ..retrieval.shards import PoolSearch, search_pool


@dataclass(frozen=True)
class LanguagePools:
    """A benchmark's queries and candidates grouped by language (candidate rows as in `bench.candidates`)."""

    langs: list[str]  # query languages, sorted
    pool_langs: list[str]  # candidate languages, sorted
    query_rows: dict[str, list[int]]  # query language -> its queries' rows in bench.queries
    relevant: dict[str, list[np.ndarray]]  # query language -> per query, its relevant candidate rows (ascending)
    cand_lang: np.ndarray  # candidate row -> index of its language in pool_langs
    pools: dict[str, np.ndarray]  # candidate language -> its candidate rows (ascending)

    @classmethod
    def of(cls, bench: Benchmark) -> LanguagePools:
        langs = sorted({q.lang for q in bench.queries})
        pool_langs = sorted({c.lang for c in bench.candidates})
        cand_pos = {c.id: i for i, c in enumerate(bench.candidates)}
        query_rows = {x: [i for i, q in enumerate(bench.queries) if q.lang == x] for x in langs}
        relevant = {
            x: [np.array(sorted(cand_pos[c] for c in bench.qrels[bench.queries[i].id]), dtype=np.int64) for i in idx]
            for x, idx in query_rows.items()
        }
        return cls(
            langs=langs,
            pool_langs=pool_langs,
            query_rows=query_rows,
            relevant=relevant,
            cand_lang=np.array([pool_langs.index(c.lang) for c in bench.candidates], dtype=np.int64),
            pools={y: np.asarray(bench.candidate_indices(y), dtype=np.int64) for y in pool_langs},
        )

    def code(self, lang: str) -> int:
        """The candidate language's index in pool_langs (cand_lang's values)."""
        return self.pool_langs.index(lang)


class SettingRanks(Protocol):
    """Ranks (1-based, search.relevant_ranks' total order) of the relevant rows of query language x's queries."""

    def pair_ranks(self, x: str, y: str) -> list[np.ndarray]:
        """Per query: the ranks of its relevant candidates in language y, within y's sub-pool (mono / cross)."""
        ...

    def ranks(self, x: str) -> list[np.ndarray]:
        """Per query: the ranks of all its relevant candidates in the whole pool (multilingual)."""
        ...

    def top_ids(self, x: str) -> np.ndarray:
        """Queries x k: the rows of the exact top-k in the whole pool (canonical ties)."""
        ...


class _InMemory:
    """Candidate embeddings in memory: each call searches the (sub-)pool it needs."""

    def __init__(self, pools: LanguagePools, q_emb: np.ndarray, c_emb: np.ndarray, k: int) -> None:
        self.p, self.q_emb, self.c_emb, self.k = pools, q_emb, c_emb, k
        self._local: dict[str, dict[int, int]] = {}  # candidate language -> whole-pool row -> row in its sub-pool

    def pair_ranks(self, x: str, y: str) -> list[np.ndarray]:
        if y not in self._local:
            self._local[y] = {int(g): j for j, g in enumerate(self.p.pools[y])}
        local = self._local[y]
        rel_local = [np.array([local[g] for g in r if g in local], dtype=np.int64) for r in self.p.relevant[x]]
        return relevant_ranks(self.q_emb[self.p.query_rows[x]], self.c_emb[self.p.pools[y]], rel_local)

    def ranks(self, x: str) -> list[np.ndarray]:
        return relevant_ranks(self.q_emb[self.p.query_rows[x]], self.c_emb, self.p.relevant[x])

    def top_ids(self, x: str) -> np.ndarray:
        return top_k(self.q_emb[self.p.query_rows[x]], self.c_emb, self.k)[1]


class _Sharded:
    """Candidate embeddings in shards: one search_pool pass for every query language, read back per call (a rank
    within a language's sub-pool is search_pool's rank within the relevant row's own group)."""

    def __init__(self, pools: LanguagePools, found: PoolSearch) -> None:
        self.p, self.found = pools, found

    def pair_ranks(self, x: str, y: str) -> list[np.ndarray]:
        code = self.p.code(y)
        return [
            g[self.p.cand_lang[r] == code] for g, r in zip(self.found.group_ranks[x], self.p.relevant[x], strict=True)
        ]

    def ranks(self, x: str) -> list[np.ndarray]:
        return self.found.ranks[x]

    def top_ids(self, x: str) -> np.ndarray:
        return self.found.top_ids[x]


def setting_ranks(
    pools: LanguagePools, q_emb: np.ndarray, candidates: np.ndarray | ShardedPool, *, k: int, bus: EventBus = NULL_BUS
) -> SettingRanks:
    """The ranks of every setting from the candidates in memory or in shards (the same numbers either way)."""
    if isinstance(candidates, ShardedPool):
        sets = {x: q_emb[idx] for x, idx in pools.query_rows.items()}
        return _Sharded(pools, search_pool(candidates, sets, pools.relevant, k=k, groups=pools.cand_lang, bus=bus))
    return _InMemory(pools, q_emb, candidates, k)
