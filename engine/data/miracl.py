"""MIRACL: per language, topics (qid, query), qrels (TREC: qid Q0 docid rel) and a passage corpus.

Local layout: DIR/<lang>/topics.tsv, DIR/<lang>/qrels.tsv, DIR/<lang>/corpus.jsonl ({docid, title, text}).
Relevant = qrels rows with rel > 0. Queries are not parallel: each query is its own group.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from hbt.engine.data.benchmark import Benchmark, Candidate, Query
from hbt.engine.errors import DataError


def _lines(path: Path) -> list[tuple[int, str]]:
    """(line number, line) for every non-blank line of a UTF-8 text file; DataError naming the file otherwise."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"{path}: file not found (MIRACL needs topics.tsv, qrels.tsv, corpus.jsonl)") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or type(exc).__name__})") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    return [(n, ln) for n, ln in enumerate(text.split("\n"), 1) if ln.strip()]


def _docid(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def load_language(root: Path, lang: str) -> tuple[list[Query], list[Candidate], dict[str, set[str]]]:
    folder = root / lang
    topics: dict[str, str] = {}
    path = folder / "topics.tsv"
    for n, line in _lines(path):
        parts = line.rstrip("\r").split("\t")
        if len(parts) < 2 or not parts[0].strip() or not parts[1].strip():
            raise DataError(f"{path}:{n}: expected 'qid<TAB>query'")
        qid = parts[0].strip()
        if qid in topics:
            raise DataError(f"{path}:{n}: query id {qid!r} appears twice")
        topics[qid] = parts[1]
    relevant: dict[str, set[str]] = {}
    path = folder / "qrels.tsv"
    for n, line in _lines(path):
        parts = line.split()
        if len(parts) != 4 or not re.fullmatch(r"-?[0-9]+", parts[3]):
            raise DataError(f"{path}:{n}: expected 'qid Q0 docid relevance' (relevance an integer)")
        if int(parts[3]) > 0:
            relevant.setdefault(parts[0], set()).add(f"{lang}:{parts[2]}")
    candidates: list[Candidate] = []
    known: set[str] = set()
    path = folder / "corpus.jsonl"
    for n, line in _lines(path):
        try:
            doc = json.loads(line)
        except (ValueError, RecursionError):
            raise DataError(f"{path}:{n}: not valid JSON (expected an object with 'docid' and 'text')") from None
        if not isinstance(doc, dict):
            raise DataError(f"{path}:{n}: expected an object with 'docid' and 'text', got {type(doc).__name__}")
        for name in ("docid", "text"):
            if name not in doc:
                raise DataError(f"{path}:{n}: missing field {name!r}")
        docid = _docid(doc["docid"])
        if docid is None:
            raise DataError(f"{path}:{n}: field 'docid' should be a non-empty string or an integer")
        for name in ("text", "title"):
            if not isinstance(doc.get(name, ""), str):
                raise DataError(f"{path}:{n}: field {name!r} should be str, got {type(doc[name]).__name__}")
        cid = f"{lang}:{docid}"
        if cid in known:
            raise DataError(f"{path}:{n}: docid {docid!r} appears twice")
        known.add(cid)
        candidates.append(Candidate(cid, lang, doc["text"], "", doc.get("title", "")))
    queries: list[Query] = []
    qrels: dict[str, set[str]] = {}
    for qid, text in topics.items():
        rel_ids = relevant.get(qid, set()) & known
        if rel_ids:
            queries.append(Query(f"{lang}:{qid}", lang, text, f"{lang}:{qid}"))
            qrels[f"{lang}:{qid}"] = rel_ids
    if not queries:
        raise DataError(f"{folder}: no topic has a relevant passage in corpus.jsonl")
    return queries, candidates, qrels


def load_dir(root: Path, langs: list[str]) -> Benchmark:
    queries: list[Query] = []
    candidates: list[Candidate] = []
    qrels: dict[str, set[str]] = {}
    for lang in langs:
        q, c, r = load_language(root, lang)
        queries += q
        candidates += c
        qrels.update(r)
    return Benchmark("miracl", queries, candidates, qrels)


def load_hub(langs: list[str]) -> Benchmark:
    """From `miracl/miracl` (dev): the pool is every judged passage (positive and negative) of the language."""
    import datasets

    queries: list[Query] = []
    candidates: dict[str, Candidate] = {}
    qrels: dict[str, set[str]] = {}
    for lang in langs:
        for row in datasets.load_dataset("miracl/miracl", lang, split="dev"):
            qid = f"{lang}:{row['query_id']}"
            for p in row["positive_passages"] + row["negative_passages"]:
                cid = f"{lang}:{p['docid']}"
                candidates.setdefault(cid, Candidate(cid, lang, p["text"], "", p.get("title", "")))
            rel = {f"{lang}:{p['docid']}" for p in row["positive_passages"]}
            if rel:
                queries.append(Query(qid, lang, row["query"], qid))
                qrels[qid] = rel
    return Benchmark("miracl", queries, list(candidates.values()), qrels)
