"""XOR-TyDi's XOR-Retrieve (Asai et al., NAACL 2021): TyDi QA questions in ar, bn, fi, ja, ko, ru, te answered from
English Wikipedia passages. The cross-lingual retrieval setting hbt's TyDi GoldP data lacks.

Files, as published (github.com/AkariAsai/XORQA, README "Download the Dataset"):

- questions, JSON Lines, one object per line: `id`, `question`, `lang` (ar bn fi ja ko ru te) and, on dev,
  `answers` (short answer strings; "yes"/"no" answers are skipped by the official evaluation);
  `xor_dev_retrieve_eng_span_v1_1.jsonl`, `xor_test_retrieve_eng_span_q_only_v1_1.jsonl` (no answers);
  DPR-style files (`positive_ctxs`: [{"passage_id", "title", "text"}]) and Tevatron-style files
  (`query_id`, `query`, `positive_passages`: [{"docid", ...}]) are read too: their positives are the gold passages;
- the passage collection, DPR's TSV form: a header `id<TAB>text<TAB>title`, then one 100-word passage per line
  (`enwiki_20190201_w100.tsv`, English Wikipedia 2019-02-01; DPR quotes fields as csv does).

Layout under --data-dir: `xor-retrieve/*.jsonl` (a file whose name holds "dev" is preferred, else "test", else the
only one) and `xor-retrieve/*.tsv` (the collection). Online: the same files from nlp.cs.washington.edu.

Pools. `corpus_limit=N` keeps every gold passage plus N others (a seeded uniform sample, streamed: memory O(N)) and
evaluates in memory (hbt's rank metrics where gold passages are known, plus R@2kt/R@5kt). Without it the whole
collection is the pool: `XorTask`, streamed into on-disk shards by evaluation.xor_eval (rank-sliced, resumable).
"""

from __future__ import annotations

import csv
import json
import random
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..common.checksums import file_sha256
from ..common.errors import DataError
from ..common.io import open_input, read_text
from . import files_read
from .benchmark import Benchmark, Candidate, Query
from .unique_ids import IdTally, first_repeat

XOR_LANGS = ("ar", "bn", "fi", "ja", "ko", "ru", "te")
BASE_URL = "https://nlp.cs.washington.edu/xorqa/XORQA_site/data"
QUESTION_URLS = {
    "dev": f"{BASE_URL}/xor_dev_retrieve_eng_span_v1_1.jsonl",
    "test": f"{BASE_URL}/xor_test_retrieve_eng_span_q_only_v1_1.jsonl",
}
COLLECTION_URL = f"{BASE_URL}/models/enwiki_20190201_w100.tsv"
PASSAGE_LANG = "en"
YES_NO = ("yes", "no")


@dataclass(frozen=True)
class XorQuestion:
    id: str
    lang: str
    question: str
    answers: tuple[str, ...] = ()
    gold: tuple[str, ...] = ()  # passage ids of the collection (DPR positive_ctxs / Tevatron positive_passages)


@dataclass(frozen=True)
class Collection:
    """The passage TSV, streamed: (id, text, title) per passage in file order."""

    path: Path

    def passages(self) -> Iterator[tuple[str, str, str]]:
        """Every passage in file order; at the end of the stream a passage id seen twice is a DataError naming both
        lines (ids are tallied as 8-byte hashes: the collection need not fit in memory)."""
        tally = IdTally()
        for _, passage in _read_tsv(self.path):
            tally.add(passage[0])
            yield passage
        repeated = tally.repeated()
        if repeated:
            found = first_repeat(((f"{self.path}:{n}", p[0]) for n, p in _read_tsv(self.path)), repeated)
            if found is not None:
                pid, first, again = found
                raise DataError(f"{again}: passage id {pid!r} appears twice in the collection (first at {first})")

    def signature(self) -> dict[str, Any]:
        """The collection in the shard cache key: its name and content (sha256, remembered by path + inode + mtime +
        size, so a file rewritten in place with the same size is a new collection)."""
        return {"corpus": [self.path.name, file_sha256(self.path)]}

    def describe(self) -> str:
        return str(self.path)


@dataclass
class XorTask:
    """XOR-Retrieve over the whole collection (streamed at evaluation by hbt.engine.evaluation.xor_eval)."""

    name: str
    questions: list[XorQuestion]
    collection: Collection
    pool: str = "full collection"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def queries(self) -> list[Query]:
        return [_query(q) for q in self.questions]

    def subset(self, langs: list[str] | None = None, max_queries: int | None = None, seed: int = 0) -> XorTask:
        kept = [q for q in self.questions if not langs or q.lang in langs]
        if max_queries is not None:
            chosen = set(random.Random(seed).sample(sorted(q.id for q in kept), min(max_queries, len(kept))))
            kept = [q for q in kept if q.id in chosen]
        return XorTask(self.name, kept, self.collection, self.pool, dict(self.extra))


def _query(q: XorQuestion) -> Query:
    return Query(f"{q.lang}:{q.id}", q.lang, q.question, q.id)


# ---- questions ---------------------------------------------------------------------------------------------------
def _str_list(value: Any, where: str, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DataError(f"{where}: field {name!r} should be a list of strings")
    return tuple(value)


def _gold(row: dict[str, Any], where: str) -> tuple[str, ...]:
    found: list[str] = []
    for name, key in (("positive_ctxs", "passage_id"), ("positive_passages", "docid")):
        items = row.get(name)
        if items is None:
            continue
        if not isinstance(items, list):
            raise DataError(f"{where}: field {name!r} should be a list")
        for i, item in enumerate(items):
            pid = item.get(key) if isinstance(item, dict) else None
            if isinstance(pid, int) and not isinstance(pid, bool):
                pid = str(pid)
            if not isinstance(pid, str) or not pid:
                raise DataError(f"{where}: {name}[{i}] has no {key!r}")
            found.append(pid)
    return tuple(dict.fromkeys(found))


def parse_question(row: Any, where: str) -> XorQuestion:
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(row).__name__}")
    qid = row.get("id", row.get("query_id"))
    if isinstance(qid, int) and not isinstance(qid, bool):
        qid = str(qid)
    question = row.get("question", row.get("query"))
    lang = row.get("lang")
    for name, value in (("id", qid), ("question", question), ("lang", lang)):
        if not isinstance(value, str) or not value.strip():
            raise DataError(f"{where}: missing or non-string field {name!r}")
    assert isinstance(qid, str) and isinstance(question, str) and isinstance(lang, str)
    if lang not in XOR_LANGS:
        raise DataError(f"{where}: field 'lang' is {lang!r}, not an XOR-TyDi language ({', '.join(XOR_LANGS)})")
    return XorQuestion(qid, lang, question, _str_list(row.get("answers"), where, "answers"), _gold(row, where))


def read_questions(path: Path) -> list[XorQuestion]:
    """A JSON Lines file (or a JSON list, as DPR's training files) of XOR-Retrieve questions."""
    files_read.note(path)
    text = read_text(path)
    rows: list[tuple[str, Any]] = []
    if text.lstrip().startswith("["):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
        rows = [(f"{path}: [{i}]", r) for i, r in enumerate(doc)]
    else:
        for n, line in enumerate(text.split("\n"), 1):
            if not line.strip():
                continue
            try:
                rows.append((f"{path}:{n}", json.loads(line)))
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{n}: not valid JSON ({exc.msg})") from None
    questions = [parse_question(row, where) for where, row in rows]
    if not questions:
        raise DataError(f"{path}: no questions")
    seen: set[str] = set()
    for q in questions:
        if q.id in seen:
            raise DataError(f"{path}: question id {q.id!r} appears twice")
        seen.add(q.id)
    return questions


# ---- the passage collection --------------------------------------------------------------------------------------
def _read_tsv(path: Path) -> Iterator[tuple[int, tuple[str, str, str]]]:
    """(line, (id, text, title)) of every passage; a header line `id text title` is skipped; errors name the line.

    One passage a line, as DPR writes the collection: a quoted field running over several lines (a stray '"' at
    the start of a field swallows the passages up to the next one) is an error, not fewer passages."""
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    missing = "file not found (the XOR-Retrieve passage collection, id/text/title TSV)"
    files_read.note(path)
    with open_input(path, lambda p: open(p, encoding="utf-8-sig", newline=""), not_found=missing) as fh:
        reader = csv.reader(fh, delimiter="\t")
        try:
            start = 1
            for row in reader:
                start, first = reader.line_num + 1, start
                if reader.line_num > first:
                    raise DataError(
                        f"{path}:{first}: a quoted field runs over lines {first}-{reader.line_num} (a stray '\"' "
                        "at the start of a field?): the collection has one passage a line"
                    )
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                if reader.line_num == 1 and [c.strip().lower() for c in row[:3]] == ["id", "text", "title"]:
                    continue
                if len(row) != 3:
                    raise DataError(f"{path}:{reader.line_num}: expected 3 tab-separated fields (id, text, title), "
                                    f"got {len(row)}")  # fmt: skip
                pid = row[0].strip()
                if not pid:
                    raise DataError(f"{path}:{reader.line_num}: empty passage id")
                yield first, (pid, row[1], row[2])
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}: not UTF-8 text near line {reader.line_num + 1} ({exc.reason})") from None
        except csv.Error as exc:
            raise DataError(f"{path}:{reader.line_num}: malformed TSV ({exc})") from None


def limited_passages(collection: Collection, keep: set[str], n_others: int, seed: int = 0) -> list[tuple[str, ...]]:
    """Every passage in `keep` plus a uniform sample of `n_others` of the rest (reservoir sampling, one streamed
    pass, memory O(len(keep) + n_others)); in collection order. Raises if a kept id is not in the collection."""
    rng = random.Random(seed)
    kept: list[tuple[int, tuple[str, str, str]]] = []
    reservoir: list[tuple[int, tuple[str, str, str]]] = []
    seen_others = 0
    found: set[str] = set()
    for i, passage in enumerate(collection.passages()):
        if passage[0] in keep:
            if passage[0] not in found:
                kept.append((i, passage))
                found.add(passage[0])
            continue
        seen_others += 1
        if len(reservoir) < n_others:
            reservoir.append((i, passage))
        else:
            j = rng.randrange(seen_others)
            if j < n_others:
                reservoir[j] = (i, passage)
    check_gold_found(collection, keep, found)
    return [p for _, p in sorted(kept + reservoir)]


def check_gold_found(collection: Collection, gold: set[str], found: Iterable[str]) -> None:
    """Every gold passage of the questions must be in the collection (else a question loses its judgments)."""
    missing = gold - set(found)
    if missing:
        raise DataError(
            f"{collection.path}: {len(missing)} gold passage id(s) not in the collection, e.g. {sorted(missing)[0]!r}"
        )


def build_benchmark(questions: list[XorQuestion], passages: list[tuple[str, ...]], name: str) -> Benchmark:
    """In-memory XOR-Retrieve: queries in their languages, English candidates (the passage text; the title is the
    article), qrels from the gold passages (empty when unknown), answers for R@kt."""
    candidates = [  # the title as context and article: text modes as data.benchmark.passage_text
        Candidate(f"{PASSAGE_LANG}:{pid}", PASSAGE_LANG, text, title, title) for pid, text, title in passages
    ]
    ids = {c.id for c in candidates}
    queries = [_query(q) for q in questions]
    qrels = {
        query.id: {f"{PASSAGE_LANG}:{p}" for p in q.gold} & ids for query, q in zip(queries, questions, strict=True)
    }
    answers = {query.id: list(q.answers) for query, q in zip(queries, questions, strict=True)}
    return Benchmark(name, queries, candidates, qrels, answers=answers)


# ---- locating the files ------------------------------------------------------------------------------------------
def locate(root: Path) -> tuple[Path, Path]:
    """(questions file, collection file) under `root` (= <data dir>/xor-retrieve)."""
    if not root.is_dir():
        raise DataError(f"{root}: no such folder (XOR-Retrieve wants <data dir>/xor-retrieve/*.jsonl and *.tsv)")
    questions = sorted(root.glob("*.jsonl")) + sorted(root.glob("*.json"))
    if not questions:
        raise DataError(f"{root}: no XOR-Retrieve questions file (*.jsonl)")
    chosen = next((p for p in questions if "dev" in p.name), None) or next(
        (p for p in questions if "test" in p.name), questions[0]
    )
    tables = sorted(root.glob("*.tsv"))
    if len(tables) != 1:
        found = ", ".join(p.name for p in tables) or "none"
        raise DataError(f"{root}: expected one passage collection *.tsv (id, text, title), found {found}")
    return chosen, tables[0]


def download(url: str) -> Path:
    """One published file through `datasets`' download manager (cached, resumable)."""
    # (start-up: datasets)
    import datasets

    return Path(datasets.DownloadManager().download(url))


NOT_COMPARABLE = (
    "R@kt over a sample of the collection (--corpus-limit): not comparable with published R@2kt / R@5kt, which rank "
    "the whole collection"
)
NO_GOLD = (
    "the questions file names no gold passages (the official dev JSONL has answers only): no rank metrics (mAP, "
    "MRR@10, R@10, R@100), R@kt only"
)


def pool_notes(sampled: bool, questions_with_gold: int) -> dict[str, Any]:
    """What the results say about a pool: whether R@kt is comparable with published numbers (only over the whole
    collection) and how many questions name gold passages (none in the official dev file: R@kt only)."""
    out: dict[str, Any] = {"comparable": not sampled, "questions_with_gold": questions_with_gold}
    if sampled:
        out["not_comparable"] = NOT_COMPARABLE
    if not questions_with_gold:
        out["no_gold"] = NO_GOLD
    return out


def load(
    data_dir: Path | None, langs: list[str], corpus_limit: int | None = None, seed: int = 0
) -> Benchmark | XorTask:
    """XOR-Retrieve restricted to `langs`: in memory with `corpus_limit` (gold + N others; stated not comparable with
    published R@kt), else the whole collection as an XorTask (the published measurement)."""
    if data_dir is not None:
        q_path, c_path = locate(data_dir / "xor-retrieve")
    else:
        q_path, c_path = download(QUESTION_URLS["dev"]), download(COLLECTION_URL)
    questions = [q for q in read_questions(q_path) if q.lang in langs]
    if not questions:
        raise DataError(f"{q_path}: no questions in {', '.join(langs)}")
    if not any(any(a not in YES_NO for a in q.answers) or q.gold for q in questions):
        raise DataError(f"{q_path}: no answers and no gold passages (a questions-only test file cannot be scored)")
    collection = Collection(c_path)
    if corpus_limit is None:
        return XorTask("xor-retrieve", questions, collection, extra={"questions": str(q_path)})
    gold = {p for q in questions for p in q.gold}
    passages = limited_passages(collection, gold, corpus_limit, seed)
    bench = build_benchmark(questions, passages, "xor-retrieve")
    kept = "the gold ones + " if gold else ""
    bench.pool = f"{len(passages):,} passages: {kept}a seeded sample of {corpus_limit:,} (--corpus-limit)"
    bench.notes = {"sampled": True}  # evaluate_benchmark states it (pool_notes)
    return bench


__all__ = [
    "COLLECTION_URL",
    "QUESTION_URLS",
    "XOR_LANGS",
    "Collection",
    "XorQuestion",
    "XorTask",
    "build_benchmark",
    "check_gold_found",
    "limited_passages",
    "load",
    "locate",
    "pool_notes",
    "read_questions",
]
