"""Language bias of multilingual retrieval (all queries against the pool of every language).

Headline: the paper's **rank distance** (arXiv 2408.10536, Tables 2, 7 and 8, "maximum rank distance", after Huang
et al. 2023, SIGIR). In the multilingual pool, each query has one relevant candidate per language that has its
question; its rank distance is max rank - min rank over those relevant candidates (ranks in the full pool, hbt's
total order: score descending, ties by trec_eval's docno rule). Mean over the queries of a query language; the
headline is the unweighted (macro) mean over query languages. Lower = less bias; 0 = every translation of the
answer ranked together. A query with fewer than two relevant candidates has no distance and is left out.

Secondary measures, hbt's own. For each query language X:
- own_share@k: share of the top-k retrieved candidates that are in X, beside pool_share = |pool in X| / |pool|;
  own_excess@k = own_share@k - pool_share (0 = no preference for the query's own language).
- rank_gap: mean over queries of (mean rank of the relevant candidates in X) - (mean rank of the relevant
  candidates in other languages), ranks in the full multilingual pool; negative = own-language answers are
  ranked ahead of equally correct answers in other languages.
Overall: the means of these over query languages, and map_spread = max - min multilingual mAP over query languages.
"""

from __future__ import annotations

import numpy as np

from .results import MAP_SPREAD, OWN_EXCESS, RANK_DISTANCE, RANK_GAP


def rank_distances(ranks: list[np.ndarray]) -> np.ndarray:
    """Per query with at least two relevant candidates: max rank - min rank of them (2408.10536)."""
    return np.array([int(r.max() - r.min()) for r in ranks if len(r) >= 2], dtype=np.float64)


def rank_distance(ranks: list[np.ndarray]) -> float:
    """Mean rank distance over the queries of one query language (0.0 when no query has two relevant items)."""
    d = rank_distances(ranks)
    return float(d.mean()) if len(d) else 0.0


def own_share(top_langs: np.ndarray, lang_code: int) -> float:
    """Share of retrieved items (matrix of candidate-language codes, queries x k) in the query's language."""
    return float(np.mean(top_langs == lang_code)) if top_langs.size else 0.0


def rank_gap(rank_lists: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """Mean over queries of mean(own-language relevant ranks) - mean(other-language relevant ranks)."""
    gaps = [float(own.mean() - other.mean()) for own, other in rank_lists if len(own) and len(other)]
    return float(np.mean(gaps)) if gaps else 0.0


def summarise(per_lang: dict[str, dict[str, float]], multi_map: dict[str, float]) -> dict[str, float]:
    maps = list(multi_map.values())
    out = {k: float(np.mean([v[k] for v in per_lang.values()])) if per_lang else 0.0
           for k in (RANK_DISTANCE, OWN_EXCESS, RANK_GAP)}  # fmt: skip
    return out | {MAP_SPREAD: float(max(maps) - min(maps)) if maps else 0.0}
