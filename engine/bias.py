"""Language bias of multilingual retrieval (all queries against the pool of every language).

hbt's measure (arXiv 2408.10536 reports that hybrid batches reduce language bias but its exact formula is not
established here, so this is hbt's own, documented choice). For each query language X:
- own_share@k: share of the top-k retrieved candidates that are in X, beside pool_share = |pool in X| / |pool|;
  own_excess@k = own_share@k - pool_share (0 = no preference for the query's own language).
- rank_gap: mean over queries of (mean rank of the relevant candidates in X) - (mean rank of the relevant
  candidates in other languages), ranks in the full multilingual pool; negative = own-language answers are
  ranked ahead of equally correct answers in other languages.
Overall: the means of both over query languages, and map_spread = max - min multilingual mAP over query languages.
"""

from __future__ import annotations

import numpy as np


def own_share(top_langs: np.ndarray, lang_code: int) -> float:
    """Share of retrieved items (matrix of candidate-language codes, queries x k) in the query's language."""
    return float(np.mean(top_langs == lang_code)) if top_langs.size else 0.0


def rank_gap(rank_lists: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """Mean over queries of mean(own-language relevant ranks) - mean(other-language relevant ranks)."""
    gaps = [float(own.mean() - other.mean()) for own, other in rank_lists if len(own) and len(other)]
    return float(np.mean(gaps)) if gaps else 0.0


def summarise(per_lang: dict[str, dict[str, float]], multi_map: dict[str, float]) -> dict[str, float]:
    maps = list(multi_map.values())
    return {
        "own_excess@10": float(np.mean([v["own_excess@10"] for v in per_lang.values()])) if per_lang else 0.0,
        "rank_gap": float(np.mean([v["rank_gap"] for v in per_lang.values()])) if per_lang else 0.0,
        "map_spread": float(max(maps) - min(maps)) if maps else 0.0,
    }
