"""One in-memory form for a retrieval benchmark: queries, candidates, qrels."""

from __future__ import annotations

import random
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
        """The text to encode (vocabulary.TEXT_MODES, after `resolve_text_mode`): the sentence alone, sentence +
        paragraph context (LAReQA's answer input), or the article title then the sentence (title+text)."""
        if mode == "sentence+context" and self.context:
            return f"{self.sentence}\n{self.context}"
        if mode == "title+text" and self.article:
            return f"{self.article} {self.sentence}"
        return self.sentence


AUTO = "auto"


def passage_text(title: str, text: str, mode: str) -> str:
    """What is encoded for a titled passage (MIRACL, XOR-Retrieve), as Candidate.text with the title as both the
    context and the article: title+text = "<title> <text>", sentence+context = "<text>\n<title>", else the text."""
    return Candidate("", "", text, title, title).text(mode)


def resolve_text_mode(mode: str, auto: str) -> str:
    """The text mode really used: `auto` becomes the dataset's own convention (`auto`), any other mode stays."""
    return auto if mode == AUTO else mode


@dataclass
class Benchmark:
    """A retrieval benchmark over a multilingual pool. qrels: query id -> relevant candidate ids (any language)."""

    name: str
    queries: list[Query]
    candidates: list[Candidate]
    qrels: dict[str, set[str]]
    _by_lang: dict[str, list[int]] = field(default_factory=dict, repr=False)
    answers: dict[str, list[str]] = field(default_factory=dict, repr=False)  # query id -> short answers (XOR R@kt)
    auto_text_mode: str = "sentence"  # what text mode `auto` means here (MIRACL: title+text)
    pool: str = ""  # the pool, where the dataset names one (shown in every table)
    keep_empty: bool = False  # a query with no relevant candidate in its own language scores 0 (trec_eval) vs skipped
    macro_excludes: tuple[str, ...] = ()  # query languages left out of the macro means (TyDi QA: English)
    notes: dict[str, object] = field(default_factory=dict, repr=False)  # carried into the results block

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
        return Benchmark(
            self.name, queries, candidates, qrels, answers=answers, auto_text_mode=self.auto_text_mode,
            pool=self.pool, keep_empty=self.keep_empty, macro_excludes=self.macro_excludes, notes=dict(self.notes),
        )  # fmt: skip
