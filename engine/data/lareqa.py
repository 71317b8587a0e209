"""LAReQA (XQuAD-R, MLQA-R): SQuAD v1.1 JSON with `sentence_breaks` + `sentences` per paragraph.

Relevance (Roy et al. 2020): the candidates are all sentences of all paragraphs in the pool's languages; the
relevant candidates of a question are the sentences containing its answer (`answer_start` inside a sentence's
[start, end)) in every language where that question id exists.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..common.errors import DataError
from ..common.io import read_text
from . import files_read, squad
from .benchmark import Benchmark, Candidate, Query
from .squad import field, type_name


@dataclass(frozen=True)
class LareqaQuestion:
    """One question in one language with the candidate ids of its answer sentence(s) in that language."""

    qid: str
    lang: str
    text: str
    answer_ids: tuple[str, ...]
    answer_sentences: tuple[str, ...]
    article: str


@dataclass
class LareqaLanguage:
    lang: str
    candidates: list[Candidate]
    questions: list[LareqaQuestion]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_language(doc: Any, lang: str, source: str) -> LareqaLanguage:
    """Parse one LAReQA language file (already JSON-decoded). Raises DataError naming the file and place."""
    candidates: list[Candidate] = []
    questions: list[LareqaQuestion] = []
    seen: dict[str, str] = {}  # question id -> where it was first seen
    for para in squad.paragraphs(doc, source):
        a_i, p_i, context = para.article_index, para.paragraph_index, para.context
        title = para.article.get("title", str(a_i))
        where = f"{source}: {para.place}"
        breaks = field(para.raw, "sentence_breaks", list, where)
        sentences = field(para.raw, "sentences", list, where)
        if len(breaks) != len(sentences):
            raise DataError(f"{where}: {len(breaks)} sentence_breaks but {len(sentences)} sentences")
        spans: list[tuple[int, int]] = []
        for s_i, span in enumerate(breaks):
            ok = isinstance(span, list) and len(span) == 2 and all(_is_int(x) for x in span)
            if not ok:
                raise DataError(f"{where}: sentence_breaks[{s_i}] should be [start, end] integers")
            if not 0 <= span[0] <= span[1] <= len(context):
                raise DataError(
                    f"{where}: sentence_breaks[{s_i}] = {span!r} lies outside the context (length {len(context)})"
                )
            spans.append((span[0], span[1]))
        ids = [f"{lang}:{a_i}:{p_i}:{s_i}" for s_i in range(len(sentences))]
        for s_i, (cid, sentence) in enumerate(zip(ids, sentences, strict=True)):
            if not isinstance(sentence, str):
                raise DataError(f"{where}: sentences[{s_i}] should be str, got {type_name(sentence)}")
            candidates.append(Candidate(cid, lang, sentence, context, str(title)))
        for q_i, qa in enumerate(para.qas):
            q_where = f"{where}.qas[{q_i}]"
            qid = field(qa, "id", str, q_where)
            if qid in seen:
                raise DataError(f"{q_where}: field 'id' {qid!r} repeats the question id of {seen[qid]}")
            seen[qid] = f"{para.place}.qas[{q_i}]"
            text = field(qa, "question", str, q_where)
            answers = field(qa, "answers", list, q_where)
            if not answers:
                raise DataError(f"{q_where}: field 'answers' is empty (no answers)")
            hits: list[int] = []
            for n_i, ans in enumerate(answers):
                a_where = f"{q_where}.answers[{n_i}]"
                start = field(ans, "answer_start", int, a_where)
                answer = ans.get("text", "")
                if not isinstance(answer, str):
                    raise DataError(f"{a_where}: field 'text' should be str, got {type_name(answer)}")
                if not 0 <= start < max(len(context), 1) or start + len(answer) > len(context):
                    raise DataError(
                        f"{a_where}: answer_start {start} (text length {len(answer)}) lies outside the context "
                        f"(length {len(context)})"
                    )
                hits += [s for s, (b, e) in enumerate(spans) if b <= start < e and s not in hits]
            if not hits:
                raise DataError(f"{q_where}: the answer falls in no sentence of sentence_breaks")
            questions.append(
                LareqaQuestion(
                    qid,
                    lang,
                    text,
                    tuple(ids[s] for s in hits),
                    tuple(sentences[s] for s in hits),
                    str(title),
                )
            )
    if not questions:
        raise DataError(f"{source}: no questions (the file holds {len(candidates)} sentences and no qas)")
    return LareqaLanguage(lang, candidates, questions)


def read_json_file(path: Path) -> Any:
    """Decode a JSON data file; every way it can be unreadable becomes a one-line DataError naming it."""
    files_read.note(path)
    text = read_text(path)
    if not text.strip():
        raise DataError(f"{path}: the file is empty (expected JSON)")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except RecursionError:
        raise DataError(f"{path}: not valid JSON (nested too deeply)") from None


def read_language_file(path: Path, lang: str) -> LareqaLanguage:
    return parse_language(read_json_file(path), lang, str(path))


def build_benchmark(name: str, languages: list[LareqaLanguage]) -> Benchmark:
    """Assemble the multilingual pool and LAReQA qrels from per-language parses."""
    answers_by_qid: dict[str, set[str]] = defaultdict(set)
    for part in languages:
        for q in part.questions:
            answers_by_qid[q.qid].update(q.answer_ids)
    queries: list[Query] = []
    qrels: dict[str, set[str]] = {}
    for part in languages:
        for q in part.questions:
            query = Query(f"{q.lang}:{q.qid}", q.lang, q.text, q.qid)
            if query.id in qrels:
                raise DataError(f"{name}: question id {q.qid!r} appears twice in language {q.lang!r}")
            queries.append(query)
            qrels[query.id] = set(answers_by_qid[q.qid])
    candidates = [c for part in languages for c in part.candidates]
    return Benchmark(name, queries, candidates, qrels)
