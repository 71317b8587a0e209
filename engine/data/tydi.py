"""TyDi QA GoldP (the secondary task) as retrieval, in two pools.

Format: SQuAD v1.1 JSON or hub rows (id, title, context, question, answers); the language is the id prefix
("arabic-123..."). Questions are not parallel: each query is its own group. The two pools (`POOL_RULES`):

- `passage` (dataset `tydi`): the candidates are the distinct gold passages of a language; a question's relevant
  candidate is the passage it was asked on;
- `sentence` (dataset `tydi-sentence`): LAReQA-style, as XQuAD-R / MLQA-R are built: every sentence of every gold
  passage is a candidate (its passage is its context), and a question's relevant candidates are the sentences that
  hold one of its answers' start (`answer_start` in [start, end) of the sentence). TyDi ships no sentence breaks;
  sentences come from sentencex (Wikimedia's rule-based segmenter, per language: `pip install 'hbt[tydi]'`).

The macro over languages follows TyDi QA's convention: "the overall score is the average over languages, excluding
English" (github.com/google-research-datasets/tydiqa, README, GoldP evaluation); English keeps its own row.

Files under <data dir>/tydi/, as released (storage.googleapis.com/tydiqa/v1.1/): the single dev file
`tydiqa-goldp-v1.1-dev.json`, or the per-language dev files of `tydiqa-goldp-v1.1-dev.tgz` (the archive itself,
or its folder `tydiqa-goldp-v1.1-dev/` with `tydiqa-goldp-dev-<language>.json`). Every file found is read; the
same question in two files (the single file beside the per-language ones) and the training split are refused in
one line, never dropped silently.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..common.errors import DataError, UserError
from . import files_read, squad
from .benchmark import Benchmark, Candidate, Query
from .lareqa import read_json_file
from .squad import field, type_name

TYDI_LANGS = {
    "arabic": "ar", "bengali": "bn", "english": "en", "finnish": "fi", "indonesian": "id", "japanese": "ja",
    "korean": "ko", "russian": "ru", "swahili": "sw", "telugu": "te", "thai": "th",
}  # fmt: skip
POOL_RULES = {
    "passage": "passage: the gold passages; a question's own passage is its relevant item",
    "sentence": "sentence: every sentence of every gold passage (LAReQA-style); relevant: the answer's sentence",
}
MACRO_EXCLUDES = ("en",)  # TyDi QA averages its non-English languages; English is reported on its own row
MACRO_RULE = "macro over the non-English languages (TyDi QA's convention); English on its own row"
SENTENCE_EXTRA = "tydi"  # the pip extra bringing the sentence segmenter


def _lang_of(qid: str, where: str) -> str:
    prefix = qid.split("-", 1)[0].lower()
    if prefix not in TYDI_LANGS:
        raise DataError(f"{where}: id {qid!r} does not start with a TyDi language name ({', '.join(TYDI_LANGS)})")
    return TYDI_LANGS[prefix]


def _answer_starts(row: dict[str, Any], where: str) -> list[int]:
    """Character offsets of the answers in the context: SQuAD JSON [{"text", "answer_start"}] or the hub's
    {"text": [...], "answer_start": [...]}."""
    answers = row.get("answers")
    if isinstance(answers, dict):
        starts = answers.get("answer_start")
    elif isinstance(answers, list):
        starts = [a.get("answer_start") if isinstance(a, dict) else None for a in answers]
    else:
        raise DataError(f"{where}: missing or malformed field 'answers'")
    if not isinstance(starts, list) or not all(isinstance(s, int) and not isinstance(s, bool) for s in starts):
        raise DataError(f"{where}: answers need integer 'answer_start' offsets")
    return list(starts)


def sentence_spans(text: str, lang: str) -> list[tuple[int, int]]:
    """[start, end) character spans of the sentences of `text` (sentencex), covering the text in order."""
    try:
        # (extra: tydi)
        from sentencex import segment
    except ImportError as exc:
        raise UserError(
            f"the TyDi sentence pool splits passages with sentencex: pip install 'hbt[{SENTENCE_EXTRA}]'"
        ) from exc
    spans: list[tuple[int, int]] = []
    cursor = 0
    for part in segment(lang, text):
        start = text.find(part, cursor)
        if start < 0:  # the segmenter changed the text: align on the stripped sentence instead
            start = text.find(part.strip(), cursor)
        if start < 0 or not part.strip():
            continue
        spans.append((start, start + len(part)))
        cursor = start + len(part)
    return spans or [(0, len(text))]


def from_rows(rows: Iterable[dict[str, Any]], source: str, pool: str = "passage") -> Benchmark:
    """Build the benchmark from flat rows: {id, title, context, question, answers} (optionally `_where`: the row's
    place), with the passage or sentence pool (POOL_RULES)."""
    if pool not in POOL_RULES:
        raise ValueError(f"unknown TyDi pool {pool!r} (allowed: {', '.join(POOL_RULES)})")
    passages: dict[tuple[str, str], tuple[str, list[tuple[int, int]]]] = {}  # (lang, context) -> id, spans
    candidates: list[Candidate] = []
    queries: list[Query] = []
    qrels: dict[str, set[str]] = {}
    for i, row in enumerate(rows):
        where = f"{source}: {row.get('_where', f'row {i}')}" if isinstance(row, dict) else f"{source}: row {i}"
        if not isinstance(row, dict):
            raise DataError(f"{where}: expected an object, got {type(row).__name__}")
        for name in ("id", "context", "question"):
            field(row, name, str, where)
        lang, context = _lang_of(row["id"], where), row["context"]
        key = (lang, context)
        if key not in passages:
            pid, title = f"{lang}:p{len(passages)}", str(row.get("title", ""))
            if pool == "passage":
                passages[key] = (pid, [(0, len(context))])
                candidates.append(Candidate(pid, lang, context, "", title))
            else:
                spans = sentence_spans(context, lang)
                passages[key] = (pid, spans)
                candidates += [
                    Candidate(f"{pid}:s{j}", lang, context[a:b].strip(), context, title)
                    for j, (a, b) in enumerate(spans)
                ]
        qid = f"{lang}:{row['id']}"
        if qid in qrels:
            raise DataError(f"{where}: field 'id' {row['id']!r} repeats an earlier question id")
        pid, spans = passages[key]
        if pool == "passage":
            relevant = {pid}
        else:
            starts = _answer_starts(row, where)
            relevant = {f"{pid}:s{j}" for j, (a, b) in enumerate(spans) if any(a <= s < b for s in starts)}
            if not relevant:
                raise DataError(f"{where}: no answer_start inside the context (length {len(context)})")
        queries.append(Query(qid, lang, row["question"], row["id"]))
        qrels[qid] = relevant
    if not queries:
        raise DataError(f"{source}: no questions found")
    return Benchmark(
        "tydi" if pool == "passage" else "tydi-sentence", queries, candidates, qrels, macro_excludes=MACRO_EXCLUDES,
        notes={"pool_rule": POOL_RULES[pool], "macro_rule": MACRO_RULE},
    )  # fmt: skip


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


def load_file(path: Path, pool: str = "passage") -> Benchmark:
    return from_rows(squad_rows(read_json_file(path), str(path)), str(path), pool)


# ---- the release's layouts ---------------------------------------------------------------------------------------
def _archive_docs(path: Path) -> Iterator[tuple[str, Any]]:
    """(name, decoded JSON) of every .json member of a .tgz (the per-language dev archive), read as shipped."""
    files_read.note(path)
    try:
        with tarfile.open(path, "r:*") as archive:
            for member in sorted(archive.getmembers(), key=lambda m: m.name):
                if not member.isfile() or not member.name.endswith(".json"):
                    continue
                name = f"{path}:{member.name}"
                fh = archive.extractfile(member)
                if fh is None:
                    continue
                try:
                    yield name, json.loads(fh.read().decode("utf-8"))
                except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                    raise DataError(f"{name}: not valid JSON ({exc})") from None
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DataError(f"{path}: not a readable .tgz archive ({exc})") from None


def release_files(folder: Path) -> list[Path]:
    """The GoldP files under tydi/: *.json, the per-language folder's *.json and *.tgz archives, in name order."""
    found = [*folder.glob("*.json"), *folder.glob("*/*.json"), *folder.glob("*.tgz"), *folder.glob("*.tar.gz")]
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def load_folder(folder: Path, pool: str = "passage") -> Benchmark:
    """Every GoldP dev file under `folder` (the single dev file, the per-language files, the .tgz): all of them, or
    one line naming why not (no file, the training split, a question in two files)."""
    files = release_files(folder)
    if not files:
        raise DataError(f"{folder}: no TyDi GoldP file (tydiqa-goldp-v1.1-dev.json or tydiqa-goldp-v1.1-dev.tgz)")
    rows: list[dict[str, Any]] = []
    first_seen: dict[str, str] = {}
    for path in files:
        if "train" in path.name:
            raise DataError(f"{path}: the GoldP training split is not evaluated: move it out of {folder}")
        docs = _archive_docs(path) if path.name.endswith((".tgz", ".tar.gz")) else [(str(path), read_json_file(path))]
        for name, doc in docs:
            for row in squad_rows(doc, name):
                qid = row.get("id")
                if isinstance(qid, str) and qid in first_seen:
                    raise DataError(
                        f"{name}: question {qid!r} is also in {first_seen[qid]}: the single dev file and the "
                        f"per-language files hold the same questions; keep one form in {folder}"
                    )
                if isinstance(qid, str):
                    first_seen[qid] = name
                rows.append({**row, "_where": f"{name}: {row['_where']}"})
    return from_rows(rows, str(folder), pool)
