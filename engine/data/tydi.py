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
from hbt.engine.data.benchmark import Benchmark, Candidate, Query
from hbt.engine.data.lareqa import read_json_file

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
            if name not in row:
                raise DataError(f"{where}: missing field {name!r}")
            if not isinstance(row[name], str):
                raise DataError(f"{where}: field {name!r} should be str, got {_type_name(row[name])}")
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


def _type_name(value: Any) -> str:
    return {dict: "object", list: "list", str: "str", bool: "bool", int: "int", float: "float"}.get(
        type(value), "null" if value is None else type(value).__name__
    )


def squad_rows(doc: Any, source: str) -> list[dict[str, Any]]:
    """Flatten SQuAD v1.1 JSON into rows, each remembering its place (`_where`) for error messages."""
    if not isinstance(doc, dict) or "data" not in doc:
        raise DataError(f"{source}: missing field 'data' (expected SQuAD v1.1 JSON)")
    if not isinstance(doc["data"], list):
        raise DataError(f"{source}: field 'data' should be list, got {_type_name(doc['data'])}")
    rows: list[dict[str, Any]] = []
    for a_i, article in enumerate(doc["data"]):
        a_where = f"{source}: data[{a_i}]"
        if not isinstance(article, dict):
            raise DataError(f"{a_where}: expected an object, got {_type_name(article)}")
        paragraphs = article.get("paragraphs")
        if not isinstance(paragraphs, list):
            raise DataError(f"{a_where}: missing field 'paragraphs' (a list)")
        for p_i, para in enumerate(paragraphs):
            p_where = f"data[{a_i}].paragraphs[{p_i}]"
            if not isinstance(para, dict) or not isinstance(para.get("qas"), list):
                raise DataError(f"{source}: {p_where}: missing field 'qas' (a list)")
            if not isinstance(para.get("context"), str):
                raise DataError(f"{source}: {p_where}: missing or non-string field 'context'")
            for q_i, qa in enumerate(para["qas"]):
                if not isinstance(qa, dict):
                    raise DataError(f"{source}: {p_where}.qas[{q_i}]: expected an object, got {_type_name(qa)}")
                rows.append(
                    {
                        **qa,
                        "context": para["context"],
                        "title": article.get("title", ""),
                        "_where": f"{p_where}.qas[{q_i}]",
                    }
                )
    return rows


def load_file(path: Path) -> Benchmark:
    return from_rows(squad_rows(read_json_file(path), str(path)), str(path))
