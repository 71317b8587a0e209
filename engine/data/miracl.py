"""MIRACL: per language, topics (qid, query), qrels (TREC: qid Q0 docid rel) and a passage corpus.

Local layout: DIR/<lang>/topics.tsv, DIR/<lang>/qrels.tsv, DIR/<lang>/corpus.jsonl ({docid, title, text}).
Relevant = qrels rows with rel > 0. Queries are not parallel: each query is its own group.
"""

from __future__ import annotations

import json
from pathlib import Path

from hbt.engine.data.benchmark import Benchmark, Candidate, Query
from hbt.engine.errors import DataError


def _lines(path: Path) -> list[str]:
    try:
        return [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    except FileNotFoundError:
        raise DataError(f"{path}: file not found (MIRACL needs topics.tsv, qrels.tsv, corpus.jsonl)") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc})") from None


def load_language(root: Path, lang: str) -> tuple[list[Query], list[Candidate], dict[str, set[str]]]:
    folder = root / lang
    topics: dict[str, str] = {}
    for n, line in enumerate(_lines(folder / "topics.tsv"), 1):
        parts = line.split("\t")
        if len(parts) < 2:
            raise DataError(f"{folder / 'topics.tsv'}:{n}: expected 'qid<TAB>query'")
        topics[parts[0]] = parts[1]
    relevant: dict[str, set[str]] = {}
    for n, line in enumerate(_lines(folder / "qrels.tsv"), 1):
        parts = line.split()
        if len(parts) != 4 or not parts[3].lstrip("-").isdigit():
            raise DataError(f"{folder / 'qrels.tsv'}:{n}: expected 'qid Q0 docid relevance'")
        if int(parts[3]) > 0:
            relevant.setdefault(parts[0], set()).add(f"{lang}:{parts[2]}")
    candidates: list[Candidate] = []
    for n, line in enumerate(_lines(folder / "corpus.jsonl"), 1):
        try:
            doc = json.loads(line)
            docid, text = str(doc["docid"]), str(doc["text"])
        except (json.JSONDecodeError, KeyError, TypeError):
            raise DataError(f"{folder / 'corpus.jsonl'}:{n}: expected JSON with 'docid' and 'text'") from None
        candidates.append(Candidate(f"{lang}:{docid}", lang, text, "", str(doc.get("title", ""))))
    known = {c.id for c in candidates}
    queries: list[Query] = []
    qrels: dict[str, set[str]] = {}
    for qid, text in topics.items():
        rel = relevant.get(qid, set()) & known
        if rel:
            queries.append(Query(f"{lang}:{qid}", lang, text, f"{lang}:{qid}"))
            qrels[f"{lang}:{qid}"] = rel
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
