"""Training pairs from parallel QA: X-X (question and answer in one language) and X-Y (in two).

Optionally each pair carries one hard negative (2408.10536 trains with "one hard negative per pair"): another
sentence of the answer's own paragraph, in the answer's language: the natural hard negative for sentence-level answer
retrieval (same topic, same article, not the answer). A single-sentence paragraph lends a sentence of another
paragraph of the same article; a pair with neither has no negative and is dropped.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from ..data.lareqa import LareqaLanguage


@dataclass(frozen=True, slots=True)
class Pair:
    q_lang: str
    a_lang: str
    question: str
    answer: str
    group: str  # parallel question group: translations of one question
    negative: str | None = None  # hard negative: a non-answer sentence of the answer's paragraph

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
    n_text: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # negative's text id, -1: none
    n_conflict: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # conflict set it answers, or -1

    def __post_init__(self) -> None:
        if len(self.conflict) != len(self.group):
            self.conflict = conflict_sets(self.group, self.a_text)
        if len(self.n_text) != len(self.group):
            self.n_text = np.full(len(self.group), -1, np.int64)
        if len(self.n_conflict) != len(self.group):
            # a negative that is another question's answer text is relevant to that question: its pairs and this
            # one must not share a batch
            answered = dict(zip(self.a_text.tolist(), self.conflict.tolist(), strict=True))
            self.n_conflict = np.array([answered.get(t, -1) if t >= 0 else -1 for t in self.n_text.tolist()], np.int64)

    @property
    def has_negatives(self) -> bool:
        return bool(len(self.n_text)) and bool((self.n_text >= 0).all())

    @classmethod
    def from_pairs(cls, pairs: list[Pair]) -> PairTable:
        langs = sorted({p.q_lang for p in pairs} | {p.a_lang for p in pairs})
        code = {lang: i for i, lang in enumerate(langs)}
        groups: dict[str, int] = {}
        texts: dict[str, int] = {}
        q_text = np.array([texts.setdefault(p.question, len(texts)) for p in pairs], dtype=np.int64)
        a_text = np.array([texts.setdefault(p.answer, len(texts)) for p in pairs], dtype=np.int64)
        n_text = [-1 if p.negative is None else texts.setdefault(p.negative, len(texts)) for p in pairs]
        return cls(
            pairs,
            langs,
            np.array([code[p.q_lang] for p in pairs], dtype=np.int32),
            np.array([code[p.a_lang] for p in pairs], dtype=np.int32),
            np.array([groups.setdefault(p.group, len(groups)) for p in pairs], dtype=np.int64),
            q_text,
            a_text,
            n_text=np.array(n_text, dtype=np.int64),
        )

    def select(self, rows: np.ndarray) -> PairTable:
        """The table of the given rows (language codes kept; ids re-derived)."""
        return PairTable.from_pairs([self.pairs[i] for i in rows.tolist()])

    def __len__(self) -> int:
        return len(self.pairs)

    @property
    def is_xx(self) -> np.ndarray:
        same: np.ndarray = self.q_lang == self.a_lang
        return same

    def counts(self) -> dict[str, int]:
        xx = int(self.is_xx.sum())
        return {
            "pairs": len(self),
            "xx": xx,
            "xy": len(self) - xx,
            "groups": len(np.unique(self.group)),
            "conflict_sets": len(np.unique(self.conflict)),
            "hard_negatives": int((self.n_text >= 0).sum()),
        }


def split_validation(table: PairTable, fraction: float, seed: int = 0) -> tuple[PairTable, PairTable]:
    """(training, validation) tables: a seeded `fraction` of the conflict sets (whole parallel groups, plus the
    groups they share answers with) is held out, so no question, translation or answer is on both sides."""
    sets = np.unique(table.conflict)
    rng = np.random.default_rng([seed, 7919])
    n_val = max(1, round(fraction * len(sets)))
    held = np.isin(table.conflict, rng.choice(sets, size=min(n_val, len(sets) - 1), replace=False))
    return table.select(np.flatnonzero(~held)), table.select(np.flatnonzero(held))


def _negative_sources(part: LareqaLanguage) -> tuple[dict[str, list[str]], dict[str, list[str]], dict[str, str]]:
    """Candidate ids per paragraph and per article, and each candidate's text."""
    by_para: dict[str, list[str]] = defaultdict(list)
    by_article: dict[str, list[str]] = defaultdict(list)
    text: dict[str, str] = {}
    for c in part.candidates:
        by_para[c.id.rsplit(":", 1)[0]].append(c.id)
        by_article[c.id.split(":", 2)[1]].append(c.id)
        text[c.id] = c.sentence
    return by_para, by_article, text


def hard_negative(
    answer_ids: tuple[str, ...], sources: tuple[dict[str, list[str]], dict[str, list[str]], dict[str, str]], key: str
) -> str | None:
    """A sentence of the first answer's paragraph that is none of the answers (by id or text), chosen by a hash of
    `key` (stable across runs); else one of the same article; None if the article has no other sentence."""
    by_para, by_article, text = sources
    first = answer_ids[0]
    banned = {text[a] for a in answer_ids}
    pick = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")
    for pool in (by_para[first.rsplit(":", 1)[0]], by_article[first.split(":", 2)[1]]):
        options = [c for c in pool if c not in answer_ids and text[c] not in banned and text[c].strip()]
        if options:
            return text[options[pick % len(options)]]
    return None


def build_pairs(
    parts: list[LareqaLanguage], max_groups: int | None = None, seed: int = 0, hard_negatives: bool = False
) -> list[Pair]:
    """Every (question in Li, answer sentence in Lj) for each question id present in both Li and Lj.

    The answer text is the first sentence containing the answer. `max_groups` keeps a seeded sample of groups.
    `hard_negatives`: each pair gets a negative from the answer's paragraph in Lj (pairs without one are dropped).
    """
    by_group: dict[str, dict[str, tuple[str, str]]] = defaultdict(dict)
    negatives: dict[tuple[str, str], str | None] = {}
    for part in parts:
        sources = _negative_sources(part) if hard_negatives else None
        for q in part.questions:
            by_group[q.qid][part.lang] = (q.text, q.answer_sentences[0])
            if sources is not None:
                negatives[q.qid, part.lang] = hard_negative(q.answer_ids, sources, f"{seed}:{q.qid}:{part.lang}")
    groups = sorted(g for g, langs in by_group.items() if langs)
    if max_groups is not None and max_groups < len(groups):
        rng = np.random.default_rng(seed)
        groups = sorted(rng.choice(groups, size=max_groups, replace=False).tolist())
    pairs: list[Pair] = []
    for g in groups:
        items = by_group[g]
        answers = {answer for _, answer in items.values()}
        for qi in sorted(items):
            for ai in sorted(items):
                negative = negatives.get((g, ai)) if hard_negatives else None
                negative = None if negative in answers else negative  # its text answers the question elsewhere
                if hard_negatives and negative is None:
                    continue
                pairs.append(Pair(qi, ai, items[qi][0], items[ai][1], g, negative))
    return pairs
