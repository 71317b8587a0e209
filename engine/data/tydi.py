"""TyDi QA GoldP (the secondary task) as passage retrieval.

Format: SQuAD v1.1 JSON (`tydiqa-goldp-v1.1-dev.json`) or hub rows (id, title, context, question, answers); the
language is the id prefix ("arabic-123..."). Candidates are the distinct gold passages of a language; a question's
relevant candidate is the passage it was asked on. Questions are not parallel: each query is its own group.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hbt.engine.data.benchmark import Benchmark, Candidate, Query
from hbt.engine.errors import DataError

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
    """Build the benchmark from flat rows: {id, title, context, question}."""
    passage_ids: dict[tuple[str, str], str] = {}
    candidates: list[Candidate] = []
    queries: list[Query] = []
    qrels: dict[str, set[str]] = {}
    for i, row in enumerate(rows):
        where = f"{source}: row {i}"
        for name in ("id", "context", "question"):
            if not isinstance(row.get(name), str):
                raise DataError(f"{where}: missing or non-string field {name!r}")
        lang = _lang_of(row["id"], where)
        key = (lang, row["context"])
        if key not in passage_ids:
            passage_ids[key] = f"{lang}:p{len(candidates)}"
            title = str(row.get("title", ""))
            candidates.append(Candidate(passage_ids[key], lang, row["context"], "", title))
        qid = f"{lang}:{row['id']}"
        queries.append(Query(qid, lang, row["question"], row["id"]))
        qrels[qid] = {passage_ids[key]}
    if not queries:
        raise DataError(f"{source}: no questions found")
    return Benchmark("tydi", queries, candidates, qrels)


def squad_rows(doc: Any, source: str) -> list[dict[str, Any]]:
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise DataError(f"{source}: missing field 'data' (expected SQuAD v1.1 JSON)")
    rows: list[dict[str, Any]] = []
    for a_i, article in enumerate(doc["data"]):
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            raise DataError(f"{source}: data[{a_i}]: missing field 'paragraphs'")
        for p_i, para in enumerate(paragraphs):
            if not isinstance(para, dict) or not isinstance(para.get("qas"), list):
                raise DataError(f"{source}: data[{a_i}].paragraphs[{p_i}]: missing field 'qas'")
            for qa in para["qas"]:
                if not isinstance(qa, dict):
                    raise DataError(f"{source}: data[{a_i}].paragraphs[{p_i}]: a qas entry is not an object")
                rows.append({**qa, "context": para.get("context"), "title": article.get("title", "")})
    return rows


def load_file(path: Path) -> Benchmark:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None
    return from_rows(squad_rows(doc, str(path)), str(path))
