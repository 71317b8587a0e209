"""Train and evaluate on one parallel QA dataset without overlap: split it by article.

An article spans languages: question groups (the same question in several languages) that share an article in any
language form one unit (MLQA-R translates article titles, XQuAD-R keeps them, so units are found through the groups,
not the titles). Each unit goes to evaluation or training by a hash of its smallest group id, so the split is
deterministic and does not depend on which languages a run uses. Sentences of articles without questions stay in
the evaluation pool as distractors; they are never training text.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

from .benchmark import Benchmark
from .lareqa import LareqaLanguage

EVAL_SHARE = 0.5  # share of article units held out for evaluation


@dataclass(frozen=True)
class ArticleSplit:
    train_groups: frozenset[str]
    eval_groups: frozenset[str]
    train_articles: frozenset[tuple[str, str]]  # (language, article) pairs whose questions train

    def check_disjoint(self, train: list[LareqaLanguage], bench: Benchmark) -> None:
        """Assert the invariant a zero-shot claim rests on: no shared group, no shared (language, article)."""
        used = {(q.lang, q.article) for part in train for q in part.questions}
        shown = {(c.lang, c.article) for c in bench.candidates}
        assert not {q.qid for part in train for q in part.questions} & {q.group for q in bench.queries}
        assert not used & shown, f"articles in both training and evaluation: {sorted(used & shown)[:3]}"


def _unit_of(parts: list[LareqaLanguage]) -> dict[str, str]:
    """Group id -> its unit's representative (union-find over groups that share a (language, article))."""
    parent: dict[str, str] = {}

    def find(g: str) -> str:
        while parent.setdefault(g, g) != g:
            parent[g] = parent[parent[g]]
            g = parent[g]
        return g

    for part in parts:
        first_of_article: dict[str, str] = {}
        for q in part.questions:
            root = find(q.qid)
            other = find(first_of_article.setdefault(q.article, q.qid))
            if root != other:
                parent[max(root, other)] = min(root, other)
    return {g: find(g) for g in list(parent)}


def _held_out(unit: str, eval_share: float) -> bool:
    digest = hashlib.blake2b(unit.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % 10_000 < eval_share * 10_000


def split_by_article(parts: list[LareqaLanguage], eval_share: float = EVAL_SHARE) -> ArticleSplit:
    """The split of a dataset, from the parses of ALL its languages (so every run sees the same split)."""
    unit = _unit_of(parts)
    eval_groups = frozenset(g for g, u in unit.items() if _held_out(u, eval_share))
    train_groups = frozenset(unit) - eval_groups
    train_articles = frozenset((q.lang, q.article) for p in parts for q in p.questions if q.qid in train_groups)
    return ArticleSplit(train_groups, eval_groups, train_articles)


def training_side(parts: list[LareqaLanguage], split: ArticleSplit) -> list[LareqaLanguage]:
    return [replace(p, questions=[q for q in p.questions if q.qid in split.train_groups]) for p in parts]


def evaluation_side(bench: Benchmark, split: ArticleSplit) -> Benchmark:
    queries = [q for q in bench.queries if q.group in split.eval_groups]
    candidates = [c for c in bench.candidates if (c.lang, c.article) not in split.train_articles]
    kept = {c.id for c in candidates}
    qrels = {q.id: bench.qrels[q.id] & kept for q in queries}
    return Benchmark(bench.name, queries, candidates, qrels)
