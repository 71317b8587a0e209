"""MIRACL (v1.0, dev): per language, topics (qid, query), TREC qrels (qid Q0 docid rel) and a Wikipedia passage corpus.

Two pools, both monolingual (queries in X against passages in X):
- full (dataset `miracl`, MIRACL's own setting and the paper's): the language's whole corpus, streamed, encoded into
  on-disk shards (hbt.engine.encoding.corpus_shards) and searched shard by shard;
- judged (dataset `miracl-judged`): only the passages judged for the language's dev topics (relevant or not), held
  in memory. Smaller, and easier than the real task: its numbers are not comparable with published MIRACL numbers.

Local files under DATA/miracl, either layout:
- the official release, as `git clone`d from the hub datasets miracl/miracl and miracl/miracl-corpus:
    miracl-v1.0-<lang>/topics/topics.miracl-v1.0-<lang>-dev.tsv      qid<TAB>query
    miracl-v1.0-<lang>/qrels/qrels.miracl-v1.0-<lang>-dev.tsv        qid Q0 docid relevance (TREC)
    miracl-corpus-v1.0-<lang>/docs-<n>.jsonl.gz                       {"docid", "title", "text"} per line
  (the corpus folder may also sit in a sibling DATA/miracl-corpus/, where the clone puts it);
- the simple layout: <lang>/topics.tsv, <lang>/qrels.tsv, <lang>/corpus.jsonl.
Relevant = qrels rows with relevance > 0. Which topics count follows trec_eval (`empty_topics`, default "keep"):
every topic with at least one judgement is evaluated, and one whose judgements are all 0 scores 0 in every metric
(as trec_eval and pytrec_eval score it); "drop" leaves such topics out. Topics without any qrels line are not
evaluated (trec_eval evaluates the qrels' topics). Queries are not parallel: each query is its own group. The
encoded passage is the article title, a space, then the text (text mode `auto` = title+text, as MIRACL's mDPR
baselines encode passages: pyserini's `--fields title text`); --text-mode sentence encodes the text alone.
"""

from __future__ import annotations

import gzip
import json
import random
import re
import zlib
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any, cast

from huggingface_hub import hf_hub_download

from ..common.checksums import file_sha256
from ..common.errors import DataError
from ..common.io import open_input, read_text
from . import files_read
from .benchmark import Benchmark, Candidate, Query, passage_text
from .unique_ids import IdTally, first_repeat

VERSION = "v1.0"
SPLIT = "dev"
_MISSING = "file not found (MIRACL needs its topics, qrels and corpus files)"
HUB_TOPICS = "miracl/miracl"
HUB_CORPUS = "miracl/miracl-corpus"
# passages per corpus, from github.com/project-miracl/miracl README (de and yo came with the surprise languages)
PUBLISHED_PASSAGES = {
    "ar": 2_061_414, "bn": 297_265, "en": 32_893_221, "es": 10_373_953, "fa": 2_207_172, "fi": 1_883_509,
    "fr": 14_636_953, "hi": 506_264, "id": 1_446_315, "ja": 6_953_614, "ko": 1_486_752, "ru": 9_543_918,
    "sw": 131_924, "te": 518_079, "th": 542_166, "zh": 4_934_368,
}  # fmt: skip
Doc = tuple[str, str, str]  # docid, title, text


AUTO_TEXT_MODE = "title+text"  # MIRACL's mDPR baselines encode the title, then the text (pyserini --fields title text)


# ---- reading files ---------------------------------------------------------------------------------------------


def _lines(path: Path) -> list[tuple[int, str]]:
    """(line number, line) for every non-blank line of a small UTF-8 text file; DataError naming the file otherwise."""
    files_read.note(path)
    text = read_text(path, not_found=_MISSING)
    return [(n, ln) for n, ln in enumerate(text.split("\n"), 1) if ln.strip()]


def _open(path: Path) -> IO[bytes]:
    def opener(p: Path) -> IO[bytes]:
        return cast(IO[bytes], gzip.open(p, "rb")) if p.suffix == ".gz" else open(p, "rb")

    files_read.note(path)
    return open_input(path, opener, not_found=_MISSING)


def _stream_lines(path: Path) -> Generator[tuple[int, str], None, None]:
    """(line number, line) of every non-blank line, read a line at a time (gzip or plain); errors name the line."""
    n = 0
    with _open(path) as fh:
        try:
            for n, raw in enumerate(fh, 1):
                try:
                    line = raw.decode("utf-8-sig" if n == 1 else "utf-8")
                except UnicodeDecodeError as exc:
                    raise DataError(f"{path}:{n}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None
                if line.strip():
                    yield n, line
        except (OSError, EOFError, zlib.error) as exc:
            if isinstance(exc, FileNotFoundError | PermissionError | IsADirectoryError):
                raise DataError(f"{path}: cannot read ({exc.strerror})") from None
            raise DataError(f"{path}:{n + 1}: corrupt or truncated gzip data ({exc})") from None


def _docid(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def parse_doc(line: str, where: str) -> Doc:
    try:
        doc = json.loads(line)
    except (ValueError, RecursionError):
        raise DataError(f"{where}: not valid JSON (expected an object with 'docid' and 'text')") from None
    if not isinstance(doc, dict):
        raise DataError(f"{where}: expected an object with 'docid' and 'text', got {type(doc).__name__}")
    for name in ("docid", "text"):
        if name not in doc:
            raise DataError(f"{where}: missing field {name!r}")
    docid = _docid(doc["docid"])
    if docid is None:
        raise DataError(f"{where}: field 'docid' should be a non-empty string or an integer")
    for name in ("text", "title"):
        if not isinstance(doc.get(name, ""), str):
            raise DataError(f"{where}: field {name!r} should be str, got {type(doc[name]).__name__}")
    return docid, doc.get("title", ""), doc["text"]


def read_topics(path: Path) -> dict[str, str]:
    topics: dict[str, str] = {}
    for n, line in _lines(path):
        parts = line.rstrip("\r").split("\t")
        if len(parts) < 2 or not parts[0].strip() or not parts[1].strip():
            raise DataError(f"{path}:{n}: expected 'qid<TAB>query'")
        qid = parts[0].strip()
        if qid in topics:
            raise DataError(f"{path}:{n}: query id {qid!r} appears twice")
        topics[qid] = parts[1]
    return topics


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """TREC qrels (tab- or space-separated, as MIRACL ships them): qid -> docid -> relevance."""
    qrels: dict[str, dict[str, int]] = {}
    for n, line in _lines(path):
        parts = line.split()
        if len(parts) != 4 or not re.fullmatch(r"-?[0-9]+", parts[3]):
            raise DataError(f"{path}:{n}: expected 'qid Q0 docid relevance' (relevance an integer)")
        qrels.setdefault(parts[0], {})[parts[2]] = int(parts[3])
    return qrels


def _shard_number(path: Path) -> int:
    found = re.search(r"(\d+)", path.name)
    return int(found.group(1)) if found else -1


# ---- one language's files ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Corpus:
    """A language's passages, streamed in a fixed order: local files (one after another) or the hub, never whole."""

    lang: str
    files: tuple[Path, ...] = ()
    hub: str | None = None

    def docs(self) -> Iterator[Doc]:
        for _, doc in self.located():
            yield doc

    def located(self) -> Iterator[tuple[str, Doc]]:
        """(where, doc) in corpus order, `where` = file:line for local files. Checked as it streams: a file with no
        passage is an error (a failed download), and at the end of the stream a docid seen twice is one."""
        if self.hub is not None:
            # (start-up: datasets)
            import datasets

            files = f"hf://datasets/{self.hub}/miracl-corpus-{VERSION}-{self.lang}/docs-*.jsonl.gz"
            for row in datasets.load_dataset("json", data_files=files, split="train", streaming=True):
                yield self.describe(), (str(row["docid"]), row.get("title") or "", row["text"])
            return
        tally = IdTally()
        for path in self.files:
            before = len(tally)
            for n, line in _stream_lines(path):
                doc = parse_doc(line, f"{path}:{n}")
                tally.add(doc[0])
                yield f"{path}:{n}", doc
            if len(tally) == before:
                raise DataError(f"{path}: no passages (an empty corpus file: download it again)")
        repeated = tally.repeated()
        if repeated:
            found = first_repeat(((w, d[0]) for w, d in self._reread()), repeated)
            if found is not None:
                pid, first, again = found
                raise DataError(f"{again}: docid {pid!r} appears twice in the corpus (first at {first})")

    def _reread(self) -> Iterator[tuple[str, Doc]]:
        for path in self.files:
            for n, line in _stream_lines(path):
                yield f"{path}:{n}", parse_doc(line, f"{path}:{n}")

    def passages(self, mode: str) -> Iterator[tuple[str, str]]:
        """(docid, text to encode) in corpus order."""
        for docid, title, text in self.docs():
            yield docid, passage_text(title, text, mode)

    def count(self) -> int:
        """Passages: counted from the files (non-blank lines, no JSON parsing), or the published count for the hub."""
        if self.hub is not None:
            return PUBLISHED_PASSAGES.get(self.lang, 0)
        return sum(1 for path in self.files for _ in _stream_lines(path))

    def signature(self) -> dict[str, Any]:
        """What identifies this corpus in the shard cache key: the files' names and contents (sha256, remembered by
        path + inode + mtime + size, so a file rewritten in place with the same size is a new corpus), or the hub
        dataset."""
        if self.hub is not None:
            return {"corpus": f"hub:{self.hub}/{self.lang}"}
        return {"corpus": [[p.name, file_sha256(p)] for p in self.files]}

    def describe(self) -> str:
        if self.hub is not None:
            return f"hub:{self.hub} ({self.lang})"
        folder = self.files[0].parent if self.files else "?"
        return f"{folder} ({len(self.files)} file{'s' if len(self.files) != 1 else ''})"


@dataclass(frozen=True)
class MiraclLanguage:
    lang: str
    topics: dict[str, str]
    qrels: dict[str, dict[str, int]]  # qid -> docid -> relevance (0 = judged not relevant)
    corpus: Corpus
    layout: str  # release | simple | hub
    where: str = ""  # the folder, for messages

    def positives(self) -> dict[str, set[str]]:
        """qid -> docids judged relevant, for the topics that have at least one."""
        return {qid: rel for qid, rel in self.scored("drop").items() if rel}

    def scored(self, empty_topics: str = "keep") -> dict[str, set[str]]:
        """qid -> docids judged relevant, for the topics that are evaluated: keep = every topic with a judgement
        (its set may be empty: it scores 0, as in trec_eval), drop = only topics with a relevant passage."""
        out = {}
        for qid in self.topics:
            judged = self.qrels.get(qid)
            rel = {d for d, r in (judged or {}).items() if r > 0}
            if rel or (judged and empty_topics == "keep"):
                out[qid] = rel
        return out

    def judged(self) -> set[str]:
        return {d for qid in self.topics for d in self.qrels.get(qid, {})}


def release_paths(root: Path, lang: str, split: str = SPLIT) -> tuple[Path, Path]:
    base = root / f"miracl-{VERSION}-{lang}"
    return (
        base / "topics" / f"topics.miracl-{VERSION}-{lang}-{split}.tsv",
        base / "qrels" / f"qrels.miracl-{VERSION}-{lang}-{split}.tsv",
    )


def corpus_files(root: Path, lang: str) -> tuple[Path, ...]:
    """docs-*.jsonl.gz of the release corpus (numeric order: docs-2 before docs-10), wherever the clone put it."""
    name = f"miracl-corpus-{VERSION}-{lang}"
    for folder in (root / name, root / "miracl-corpus" / name, root.parent / "miracl-corpus" / name):
        files = sorted([*folder.glob("docs-*.jsonl.gz"), *folder.glob("docs-*.jsonl")], key=_shard_number)
        if files:
            return tuple(files)
    raise DataError(
        f"{root}: no corpus files for {lang!r} (expected {root / name}/docs-*.jsonl.gz or "
        f"{root.parent / 'miracl-corpus' / name}/docs-*.jsonl.gz)"
    )


def locate(root: Path, lang: str) -> MiraclLanguage:
    """Read a language's topics and qrels (small) and find its corpus files (not read yet), in either layout."""
    simple = root / lang
    topics_path, qrels_path = release_paths(root, lang)
    if simple.is_dir():
        topics = read_topics(simple / "topics.tsv")
        qrels = read_qrels(simple / "qrels.tsv")
        corpus_path = simple / "corpus.jsonl"
        if not corpus_path.exists() and (simple / "corpus.jsonl.gz").exists():
            corpus_path = simple / "corpus.jsonl.gz"
        if not corpus_path.is_file():
            _lines(corpus_path)  # the standard one-line error (not found / cannot read)
        return MiraclLanguage(lang, topics, qrels, Corpus(lang, _not_empty((corpus_path,))), "simple", str(simple))
    if not topics_path.parent.parent.is_dir():
        raise DataError(
            f"{root}: no MIRACL files for {lang!r} (expected the release's {topics_path.relative_to(root)} "
            f"or {lang}/topics.tsv, {lang}/qrels.tsv, {lang}/corpus.jsonl)"
        )
    topics = read_topics(topics_path)
    qrels = read_qrels(qrels_path)
    corpus = Corpus(lang, _not_empty(corpus_files(root, lang)))
    return MiraclLanguage(lang, topics, qrels, corpus, "release", str(root))


def _not_empty(files: tuple[Path, ...]) -> tuple[Path, ...]:
    """Each corpus file has a first passage line (a cheap look at its start, before anything is run or written);
    the stream checks them again as it reads."""
    for path in files:
        lines = _stream_lines(path)
        try:
            empty = next(lines, None) is None
        finally:
            lines.close()
        if empty:
            raise DataError(f"{path}: no passages (an empty corpus file: download it again)")
    return files


def from_hub(lang: str) -> MiraclLanguage:
    """Topics and qrels: the release's own TSV files from the hub dataset `miracl/miracl`, read by the same parsers."""

    topics_path, qrels_path = release_paths(Path(), lang)
    topics = read_topics(Path(hf_hub_download(HUB_TOPICS, topics_path.as_posix(), repo_type="dataset")))
    qrels = read_qrels(Path(hf_hub_download(HUB_TOPICS, qrels_path.as_posix(), repo_type="dataset")))
    return MiraclLanguage(lang, topics, qrels, Corpus(lang, hub=HUB_CORPUS), "hub", f"hub:{HUB_TOPICS}")


# ---- the two pools ----------------------------------------------------------------------------------------------


@dataclass
class CorpusLanguage:
    """One language of a full-corpus task: its queries, their relevant passage ids, and the streamed corpus."""

    lang: str
    queries: dict[str, str]  # qid -> text
    relevant: dict[str, set[str]]  # qid -> relevant passage ids (empty: a judged topic with none, scored 0)
    corpus: Corpus
    counts: dict[str, Any] = field(default_factory=dict)  # the input counts checked (judgment_counts)


@dataclass
class CorpusTask:
    """A monolingual retrieval task over whole passage corpora (per language), evaluated by evaluation.corpus_eval."""

    name: str
    pool: str  # shown in every table
    languages: list[CorpusLanguage] = field(default_factory=list)
    empty_topics: str = "keep"  # topics without a relevant passage: keep (scored 0, trec_eval) | drop
    auto_text_mode: str = AUTO_TEXT_MODE  # what text mode `auto` means for these passages

    @property
    def queries(self) -> list[Query]:
        return [
            Query(f"{c.lang}:{q}", c.lang, t, f"{c.lang}:{q}") for c in self.languages for q, t in c.queries.items()
        ]

    def subset(self, langs: list[str] | None = None, max_queries: int | None = None, seed: int = 0) -> CorpusTask:
        """Keep `langs` and at most `max_queries` queries (chosen by `seed`); the corpora stay whole."""
        keep = [c for c in self.languages if not langs or c.lang in langs]
        if max_queries is not None:
            ids = sorted(f"{c.lang}:{q}" for c in keep for q in c.queries)
            chosen = set(random.Random(seed).sample(ids, min(max_queries, len(ids))))
            keep = [
                replace(
                    c,
                    queries={q: t for q, t in c.queries.items() if f"{c.lang}:{q}" in chosen},
                    relevant={q: r for q, r in c.relevant.items() if f"{c.lang}:{q}" in chosen},
                )
                for c in keep
            ]
            keep = [c for c in keep if c.queries]
        return CorpusTask(self.name, self.pool, keep, self.empty_topics, self.auto_text_mode)


FULL_POOL = "full corpus"


def full_task(parts: list[MiraclLanguage], empty_topics: str = "keep") -> CorpusTask:
    langs = []
    for part in parts:
        if not part.positives():
            raise DataError(f"{part.where}: no {part.lang} topic has a relevant passage in the qrels")
        relevant = part.scored(empty_topics)
        queries = {q: part.topics[q] for q in relevant}
        langs.append(CorpusLanguage(part.lang, queries, relevant, part.corpus, judgment_counts(part)))
    return CorpusTask("miracl", FULL_POOL, langs, empty_topics)


def judgment_counts(part: MiraclLanguage) -> dict[str, Any]:
    """Topics against judgments, counted both ways: topics, topics judged, topics with a relevant passage, and
    the judged query ids that are no topic (their judgments cannot be used: a qrels file of another split?)."""
    judged = set(part.qrels)
    return {
        "topics": len(part.topics),
        "judged_topics": len(judged & set(part.topics)),
        "topics_with_relevant": len(part.positives()),
        "judged_not_topics": sorted(judged - set(part.topics)),
    }


def judged_language(
    part: MiraclLanguage, pool: str = "judged", empty_topics: str = "keep"
) -> tuple[list[Query], list[Candidate], dict[str, set[str]]]:
    """In-memory queries, candidates and qrels of one language. pool 'judged': the passages judged for its topics;
    'full': every passage of the corpus (small corpora only). Streams (and checks) every corpus line. Topics as
    MiraclLanguage.scored(empty_topics): with keep, a topic without a relevant passage has an empty qrels set."""
    lang = part.lang
    wanted = part.judged() if pool == "judged" else None
    candidates: list[Candidate] = []
    known: set[str] = set()
    for _, (docid, title, text) in _located_docs(part):  # (a repeated docid is an error at the end of the stream)
        if wanted is None or docid in wanted:
            known.add(docid)
            candidates.append(Candidate(f"{lang}:{docid}", lang, text, title, title))
    check_relevant_found(lang, part.corpus, part.positives(), known)
    scored = part.scored(empty_topics)  # every relevant passage is in `known` (checked above)
    queries = [Query(f"{lang}:{qid}", lang, part.topics[qid], f"{lang}:{qid}") for qid in scored]
    qrels = {f"{lang}:{qid}": {f"{lang}:{d}" for d in rel} for qid, rel in scored.items()}
    if not any(qrels.values()):
        raise DataError(f"{part.where}: no {lang} topic has a relevant passage in the corpus")
    return queries, candidates, qrels


def check_relevant_found(lang: str, corpus: Corpus, relevant: dict[str, set[str]], found: Iterable[str]) -> None:
    """Every passage the qrels judge relevant must be in the corpus: one that is not would be dropped from its
    query's judgments (a higher score than the truth) or drop the query; the corpus is then incomplete or another
    release's. A one-line DataError counting them."""
    have = set(found)
    missing = sorted((d, q) for q, rel in relevant.items() for d in rel if d not in have)
    if missing:
        pid, qid = missing[0]
        total = sum(len(rel) for rel in relevant.values())
        raise DataError(
            f"{corpus.describe()}: {len(missing)} of the {total} relevant passages in the {lang} qrels are not in "
            f"the corpus (e.g. {pid!r} for query {qid!r}): the corpus files are incomplete or not the ones the "
            "qrels judge"
        )


def _located_docs(part: MiraclLanguage) -> Iterator[tuple[str, Doc]]:
    """(where, doc) in corpus order; `where` is file:line for local files."""
    yield from part.corpus.located()


def miracl_benchmark(
    name: str, queries: list[Query], candidates: list[Candidate], qrels: dict[str, set[str]], empty_topics: str
) -> Benchmark:
    """An in-memory MIRACL pool: title-then-text passages under `auto`; judged topics without a relevant passage
    scored 0 (empty_topics keep, trec_eval's convention) or left out (drop)."""
    return Benchmark(
        name, queries, candidates, qrels, auto_text_mode=AUTO_TEXT_MODE, keep_empty=empty_topics == "keep",
        notes={"empty_topics": empty_topics},
    )  # fmt: skip


def _benchmark(name: str, parts: list[MiraclLanguage], pool: str, empty_topics: str) -> Benchmark:
    queries: list[Query] = []
    candidates: list[Candidate] = []
    qrels: dict[str, set[str]] = {}
    for part in parts:
        q, c, r = judged_language(part, pool, empty_topics)
        queries += q
        candidates += c
        qrels.update(r)
    return miracl_benchmark(name, queries, candidates, qrels, empty_topics)


def load_dir(root: Path, langs: list[str], pool: str = "full", empty_topics: str = "keep") -> Benchmark:
    """In-memory benchmark from local files (either layout): pool 'full' = every corpus passage, 'judged' = the
    passages judged for the dev topics."""
    name = "miracl" if pool == "full" else "miracl-judged"
    return _benchmark(name, [locate(root, lang) for lang in langs], pool, empty_topics)


def load_task(root: Path, langs: list[str], empty_topics: str = "keep") -> CorpusTask:
    """The full-corpus task from local files (topics and qrels read, corpora located and streamed later)."""
    return full_task([locate(root, lang) for lang in langs], empty_topics)


def load_hub_task(langs: list[str], empty_topics: str = "keep") -> CorpusTask:
    return full_task([from_hub(lang) for lang in langs], empty_topics)


def load_hub(langs: list[str], empty_topics: str = "keep") -> Benchmark:
    """The judged pool from `miracl/miracl` (dev): every judged passage (positive and negative) of the language."""
    # (start-up: datasets)
    import datasets

    queries: list[Query] = []
    candidates: dict[str, Candidate] = {}
    qrels: dict[str, set[str]] = {}
    for lang in langs:
        for row in datasets.load_dataset(HUB_TOPICS, lang, split=SPLIT):
            qid = f"{lang}:{row['query_id']}"
            for p in row["positive_passages"] + row["negative_passages"]:
                cid = f"{lang}:{p['docid']}"
                title = p.get("title", "")
                candidates.setdefault(cid, Candidate(cid, lang, p["text"], title, title))
            rel = {f"{lang}:{p['docid']}" for p in row["positive_passages"]}
            judged = rel or row["negative_passages"]
            if rel or (judged and empty_topics == "keep"):
                queries.append(Query(qid, lang, row["query"], qid))
                qrels[qid] = rel
    return miracl_benchmark("miracl-judged", queries, list(candidates.values()), qrels, empty_topics)
