"""One in-memory form for a retrieval benchmark: queries, candidates, qrels."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Query:
    id: str  # unique: "<lang>:<question id>"
    lang: str
    text: str
    group: str  # parallel-group id: the same question in every language


@dataclass(frozen=True, slots=True)
class Candidate:
    id: str  # unique: "<lang>:<article>:<paragraph>:<sentence>"
    lang: str
    sentence: str
    context: str = ""
    article: str = ""  # article title/id, for disjointness checks

    def text(self, mode: str) -> str:
        """The text to encode: the sentence alone, or sentence + paragraph context (LAReQA's answer input)."""
        if mode == "sentence+context" and self.context:
            return f"{self.sentence}\n{self.context}"
        return self.sentence


@dataclass
class Benchmark:
    """A retrieval benchmark over a multilingual pool. qrels: query id -> relevant candidate ids (any language)."""

    name: str
    queries: list[Query]
    candidates: list[Candidate]
    qrels: dict[str, set[str]]
    _by_lang: dict[str, list[int]] = field(default_factory=dict, repr=False)
    answers: dict[str, list[str]] = field(default_factory=dict, repr=False)  # query id -> short answers (XOR R@kt)

    @property
    def languages(self) -> list[str]:
        return sorted({q.lang for q in self.queries} | {c.lang for c in self.candidates})

    def queries_in(self, lang: str) -> list[Query]:
        return [q for q in self.queries if q.lang == lang]

    def candidate_indices(self, lang: str) -> list[int]:
        if not self._by_lang:
            grouped: dict[str, list[int]] = defaultdict(list)
            for i, c in enumerate(self.candidates):
                grouped[c.lang].append(i)
            self._by_lang = dict(grouped)
        return self._by_lang.get(lang, [])

    def stats(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for lang in self.languages:
            out[lang] = {
                "queries": sum(1 for q in self.queries if q.lang == lang),
                "candidates": len(self.candidate_indices(lang)),
            }
        return out

    def subset(self, langs: list[str] | None = None, max_queries: int | None = None, seed: int = 0) -> Benchmark:
        """Keep `langs` (queries and candidates) and at most `max_queries` parallel groups, chosen by `seed`.

        Sampling by group keeps the subset parallel: the same questions in every language.
        """
        import random

        keep = set(langs) if langs else set(self.languages)
        queries = [q for q in self.queries if q.lang in keep]
        if max_queries is not None:
            groups = sorted({q.group for q in queries})
            rng = random.Random(seed)
            chosen = set(rng.sample(groups, min(max_queries, len(groups))))
            queries = [q for q in queries if q.group in chosen]
        candidates = [c for c in self.candidates if c.lang in keep]
        cand_ids = {c.id for c in candidates}
        qrels = {q.id: self.qrels[q.id] & cand_ids for q in queries}
        answers = {q.id: self.answers[q.id] for q in queries if q.id in self.answers}
        return Benchmark(self.name, queries, candidates, qrels, answers=answers)
