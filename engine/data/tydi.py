"""TyDi QA GoldP (the secondary task) as passage retrieval.

Format: SQuAD v1.1 JSON (`tydiqa-goldp-v1.1-dev.json`) or hub rows (id, title, context, question, answers); the
language is the id prefix ("arabic-123..."). Candidates are the distinct gold passages of a language; a question's
relevant candidate is the passage it was asked on. Questions are not parallel: each query is its own group.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hbt.engine.common.errors import DataError
from hbt.engine.data import squad
from hbt.engine.data.benchmark import Benchmark, Candidate, Query
from hbt.engine.data.lareqa import read_json_file
from hbt.engine.data.squad import field, type_name

TYDI_LANGS = {
    "arabic": "ar", "bengali": "bn", "english": "en", "finnish": "fi", "indonesian": "id", "japanese": "ja",
    "korean": "ko", "russian": "ru", "swahili": "sw", "telugu": "te", "thai": "th",
}  # fmt: skip


def _lang_of(qid: str, where: str) -> str:
    prefix = qid.split("-", 1)[0].lower()
    if prefix not in TYDI_LANGS:
        raise DataError(f"{where}: id {qid!r} does not start with a TyDi language name ({', '.join(TYDI_LANGS)})")
    return TYDI_LANGS[prefix]


def from_rows(rows: Iterable[dict[str, Any]], source: str) -> Benchmark:
    """Build the benchmark from flat rows: {id, title, context, question} (optionally `_where`: the row's place)."""
    passage_ids: dict[tuple[str, str], str] = {}
    candidates: list[Candidate] = []
    queries: list[Query] = []
    qrels: dict[str, set[str]] = {}
    for i, row in enumerate(rows):
        where = f"{source}: {row.get('_where', f'row {i}')}" if isinstance(row, dict) else f"{source}: row {i}"
        if not isinstance(row, dict):
            raise DataError(f"{where}: expected an object, got {type(row).__name__}")
        for name in ("id", "context", "question"):
            field(row, name, str, where)
        lang = _lang_of(row["id"], where)
        key = (lang, row["context"])
        if key not in passage_ids:
            passage_ids[key] = f"{lang}:p{len(candidates)}"
            title = str(row.get("title", ""))
            candidates.append(Candidate(passage_ids[key], lang, row["context"], "", title))
        qid = f"{lang}:{row['id']}"
        if qid in qrels:
            raise DataError(f"{where}: field 'id' {row['id']!r} repeats an earlier question id")
        queries.append(Query(qid, lang, row["question"], row["id"]))
        qrels[qid] = {passage_ids[key]}
    if not queries:
        raise DataError(f"{source}: no questions found")
    return Benchmark("tydi", queries, candidates, qrels)


def squad_rows(doc: Any, source: str) -> list[dict[str, Any]]:
    """Flatten SQuAD v1.1 JSON into rows, each remembering its place (`_where`) for error messages."""
    rows: list[dict[str, Any]] = []
    for para in squad.paragraphs(doc, source):
        for q_i, qa in enumerate(para.qas):
            if not isinstance(qa, dict):
                raise DataError(f"{source}: {para.place}.qas[{q_i}]: expected an object, got {type_name(qa)}")
            rows.append(
                {
                    **qa,
                    "context": para.context,
                    "title": para.article.get("title", ""),
                    "_where": f"{para.place}.qas[{q_i}]",
                }
            )
    return rows


def load_file(path: Path) -> Benchmark:
    return from_rows(squad_rows(read_json_file(path), str(path)), str(path))
