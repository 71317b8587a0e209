"""Training pairs from parallel QA: X-X (question and answer in one language) and X-Y (in two)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
from hbt.engine.data.lareqa import LareqaLanguage


@dataclass(frozen=True, slots=True)
class Pair:
    q_lang: str
    a_lang: str
    question: str
    answer: str
    group: str  # parallel question group: translations of one question

    @property
    def is_xx(self) -> bool:
        return self.q_lang == self.a_lang


def conflict_sets(group: np.ndarray, a_text: np.ndarray) -> np.ndarray:
    """Per pair, the id of its conflict set: the parallel groups linked by sharing an answer sentence text
    (union-find; transitive). Two questions answered by one sentence (16 MLQA-R groups) are each other's false
    negatives in a batch, in every language: a pair of one is relevant to the question of the other."""
    parent = np.arange(int(group.max()) + 1 if len(group) else 0)

    def find(g: int) -> int:
        while parent[g] != g:
            parent[g] = parent[parent[g]]
            g = int(parent[g])
        return g

    first: dict[int, int] = {}
    for g, t in zip(group.tolist(), a_text.tolist(), strict=True):
        other = first.setdefault(t, g)
        a, b = find(g), find(other)
        if a != b:
            parent[max(a, b)] = min(a, b)
    return np.array([find(g) for g in group.tolist()], dtype=np.int64)


@dataclass
class PairTable:
    """Pairs plus integer columns the batch sampler needs (language codes, group, conflict set and text ids)."""

    pairs: list[Pair]
    langs: list[str]
    q_lang: np.ndarray
    a_lang: np.ndarray
    group: np.ndarray
    q_text: np.ndarray
    a_text: np.ndarray
    conflict: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # see conflict_sets

    def __post_init__(self) -> None:
        if len(self.conflict) != len(self.group):
            self.conflict = conflict_sets(self.group, self.a_text)

    @classmethod
    def from_pairs(cls, pairs: list[Pair]) -> PairTable:
        langs = sorted({p.q_lang for p in pairs} | {p.a_lang for p in pairs})
        code = {lang: i for i, lang in enumerate(langs)}
        groups: dict[str, int] = {}
        texts: dict[str, int] = {}
        return cls(
            pairs,
            langs,
            np.array([code[p.q_lang] for p in pairs], dtype=np.int32),
            np.array([code[p.a_lang] for p in pairs], dtype=np.int32),
            np.array([groups.setdefault(p.group, len(groups)) for p in pairs], dtype=np.int64),
            np.array([texts.setdefault(p.question, len(texts)) for p in pairs], dtype=np.int64),
            np.array([texts.setdefault(p.answer, len(texts)) for p in pairs], dtype=np.int64),
        )

    def __len__(self) -> int:
        return len(self.pairs)

    @property
    def is_xx(self) -> np.ndarray:
        return self.q_lang == self.a_lang

    def counts(self) -> dict[str, int]:
        xx = int(self.is_xx.sum())
        return {
            "pairs": len(self),
            "xx": xx,
            "xy": len(self) - xx,
            "groups": len(np.unique(self.group)),
            "conflict_sets": len(np.unique(self.conflict)),
        }


def build_pairs(parts: list[LareqaLanguage], max_groups: int | None = None, seed: int = 0) -> list[Pair]:
    """Every (question in Li, answer sentence in Lj) for each question id present in both Li and Lj.

    The answer text is the first sentence containing the answer. `max_groups` keeps a seeded sample of groups.
    """
    by_group: dict[str, dict[str, tuple[str, str]]] = defaultdict(dict)
    for part in parts:
        for q in part.questions:
            by_group[q.qid][part.lang] = (q.text, q.answer_sentences[0])
    groups = sorted(g for g, langs in by_group.items() if langs)
    if max_groups is not None and max_groups < len(groups):
        rng = np.random.default_rng(seed)
        groups = sorted(rng.choice(groups, size=max_groups, replace=False).tolist())
    pairs: list[Pair] = []
    for g in groups:
        items = by_group[g]
        for qi in sorted(items):
            for ai in sorted(items):
                pairs.append(Pair(qi, ai, items[qi][0], items[ai][1], g))
    return pairs
