"""Malformed inputs and disk faults: one clear line, exit code 2, no traceback, nothing left behind (issue 7).

Property-based (hypothesis): valid LAReQA / TyDi QA / MIRACL files and presets are generated, then broken (bad or
truncated JSON/TOML, missing fields, wrong types, offsets outside the context, empty files, non-UTF-8 bytes,
unknown names). The loaders must raise a DataError/ConfigError whose single-line message names the file (and the
field); the CLI must print exactly one `hbt: ` line on stderr and exit 2 without leaving an output folder.
Also: atomic writes on a full disk / unwritable folder, torn events.jsonl lines, and a corrupt results index.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
from hbt.engine.cli.main import main
from hbt.engine.common.errors import ConfigError, DataError, OutputError, UserError
from hbt.engine.common.events import JsonlSink, Log, RunFinished, RunStarted, Stage, read_events
from hbt.engine.common.io import atomic_open, ensure_dir, write_bytes, write_json, write_text
from hbt.engine.data import lareqa, miracl, tydi
from hbt.engine.runs.config import RunConfig
from hbt.engine.runs.presets import load_preset
from hbt.engine.runs.store import INDEX_NAME, ResultsStore
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_report_fixtures import make_grid, write_run

FAST = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
CLI = settings(FAST, max_examples=12)  # each example runs the CLI in-process

JSON = dict[str, Any]
# a wrong-typed value for each kind of field
WRONG: dict[type, st.SearchStrategy[Any]] = {
    int: st.one_of(st.none(), st.booleans(), st.floats(allow_nan=False), st.text(max_size=4), st.just([1])),
    str: st.one_of(st.none(), st.booleans(), st.integers(), st.just([]), st.just({"a": 1})),
    list: st.one_of(st.none(), st.integers(), st.text(max_size=4), st.just({})),
}
ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
SENTENCE = st.text(alphabet="abcxyz äßé日", min_size=1, max_size=10).map(lambda s: s.strip() or "x")


@contextlib.contextmanager
def fresh_dir() -> Iterator[Path]:
    """A new empty folder per hypothesis example (tmp_path is shared by all examples of one test)."""
    with tempfile.TemporaryDirectory(prefix="hbt-malformed-") as name:
        yield Path(name)


def assert_one_line(exc: BaseException, *needles: str) -> None:
    message = str(exc)
    assert message and "\n" not in message and "\r" not in message, repr(message)
    for needle in needles:
        assert needle in message, (needle, message)


def paths_in(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every node's path (keys / indices) in a JSON tree, the root included."""
    out = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            out += paths_in(value, (*prefix, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            out += paths_in(value, (*prefix, i))
    return out


def replaced(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    copy = json.loads(json.dumps(doc))
    node = copy
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return copy


def get(doc: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        doc = doc[key]
    return doc


# ---- LAReQA ----------------------------------------------------------------------------------------------------


@st.composite
def lareqa_docs(draw: st.DrawFn) -> JSON:
    """A small valid LAReQA language file: sentences joined by spaces, each question answered inside a sentence."""
    articles, n_q = [], 0
    for a_i in range(draw(st.integers(1, 2))):
        paragraphs = []
        for _ in range(draw(st.integers(1, 2))):
            sentences = draw(st.lists(SENTENCE, min_size=1, max_size=3))
            context, breaks = "", []
            for sentence in sentences:
                context += " " if context else ""
                breaks.append([len(context), len(context) + len(sentence)])
                context += sentence
            qas = []
            for _ in range(draw(st.integers(1, 2))):
                b, e = breaks[draw(st.integers(0, len(sentences) - 1))]
                start = draw(st.integers(b, e - 1))
                answer = {"answer_start": start, "text": context[start : start + 1]}
                qas.append({"id": f"q{n_q}", "question": draw(SENTENCE), "answers": [answer]})
                n_q += 1
            paragraphs.append({"context": context, "sentence_breaks": breaks, "sentences": sentences, "qas": qas})
        articles.append({"title": f"t{a_i}", "paragraphs": paragraphs})
    return {"version": "1.1", "data": articles}


# (path to the object holding the field, field, its type) for every required field of a LAReQA doc
def lareqa_fields(doc: JSON) -> list[tuple[tuple[Any, ...], str, type]]:
    out: list[tuple[tuple[Any, ...], str, type]] = [((), "data", list)]
    for a_i, article in enumerate(doc["data"]):
        out.append((("data", a_i), "paragraphs", list))
        for p_i, para in enumerate(article["paragraphs"]):
            at = ("data", a_i, "paragraphs", p_i)
            out += [(at, "context", str), (at, "sentence_breaks", list), (at, "sentences", list), (at, "qas", list)]
            for q_i, qa in enumerate(para["qas"]):
                q_at = (*at, "qas", q_i)
                out += [(q_at, "id", str), (q_at, "question", str), (q_at, "answers", list)]
                out += [((*q_at, "answers", n), "answer_start", int) for n in range(len(qa["answers"]))]
    return out


def first_para(doc: JSON) -> JSON:
    return doc["data"][0]["paragraphs"][0]


def _drop(doc: JSON, data: st.DataObject) -> tuple[JSON, list[str]]:
    at, key, _ = data.draw(st.sampled_from(lareqa_fields(doc)))
    del get(doc, at)[key]
    return doc, [f"missing field {key!r}"]


def _retype(doc: JSON, data: st.DataObject) -> tuple[JSON, list[str]]:
    at, key, kind = data.draw(st.sampled_from(lareqa_fields(doc)))
    get(doc, at)[key] = data.draw(WRONG[kind])
    return doc, [f"field {key!r} should be {kind.__name__}"]


def _answer_outside(doc: JSON, data: st.DataObject) -> tuple[JSON, list[str]]:
    para = first_para(doc)
    n = len(para["context"])
    answer = para["qas"][0]["answers"][0]
    if data.draw(st.booleans()):
        answer["answer_start"] = data.draw(st.one_of(st.integers(max_value=-1), st.integers(min_value=n)))
    else:  # a start inside the context, but the answer text runs past its end
        answer["answer_start"] = data.draw(st.integers(0, n - 1))
        answer["text"] = "z" * (n - answer["answer_start"] + data.draw(st.integers(1, 5)))
    return doc, ["answers[0]", "outside the context"]


def _break_outside(doc: JSON, data: st.DataObject) -> tuple[JSON, list[str]]:
    para = first_para(doc)
    n = len(para["context"])
    i = data.draw(st.integers(0, len(para["sentence_breaks"]) - 1))
    para["sentence_breaks"][i] = data.draw(
        st.sampled_from([[0, n + 1], [-1, 1], [3, 2] if n >= 3 else [1, 0], [n + 2, n + 5]])
    )
    return doc, [f"sentence_breaks[{i}]", "outside the context"]


def _bad_items(doc: JSON, data: st.DataObject) -> tuple[JSON, list[str]]:
    para = first_para(doc)
    choice = data.draw(st.integers(0, 3))
    if choice == 0:
        para["sentences"][0] = data.draw(WRONG[str])
        return doc, ["sentences[0] should be str"]
    if choice == 1:
        para["sentence_breaks"][0] = data.draw(st.sampled_from([[0], [0, 1, 2], ["0", 1], [True, 1], [0.0, 1], 5]))
        return doc, ["sentence_breaks[0] should be [start, end] integers"]
    if choice == 2:
        para["qas"][0]["answers"] = [data.draw(st.sampled_from([None, 3, "a", []]))]
        return doc, ["answers[0]", "expected an object"]
    para["qas"][0]["answers"] = []
    return doc, ["'answers'", "no answers"]


def _repeat_id(doc: JSON, data: st.DataObject) -> tuple[JSON, list[str]]:
    qas = first_para(doc)["qas"]
    qas.append(json.loads(json.dumps(qas[0])))
    return doc, [f"qas[{len(qas) - 1}]", "repeats the question id"]


def _not_an_object(doc: JSON, data: st.DataObject) -> tuple[Any, list[str]]:
    return data.draw(st.sampled_from([[], [doc], "data", 3, None])), ["expected an object with field 'data'"]


LAREQA_MUTATIONS = [_drop, _retype, _answer_outside, _break_outside, _bad_items, _repeat_id, _not_an_object]


def write_lareqa(root: Path, doc: Any, lang: str = "en", name: str = "xquad-r") -> Path:
    (root / name).mkdir(parents=True, exist_ok=True)
    path = root / name / f"{lang}.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


@FAST
@given(doc=lareqa_docs())
def test_generated_lareqa_docs_are_valid(doc: JSON) -> None:
    with fresh_dir() as root:
        part = lareqa.read_language_file(write_lareqa(root, doc), "en")
    assert len(part.questions) == sum(len(p["qas"]) for a in doc["data"] for p in a["paragraphs"])


@FAST
@given(doc=lareqa_docs(), mutate=st.sampled_from(LAREQA_MUTATIONS), data=st.data())
def test_lareqa_field_errors_name_file_and_field(doc: JSON, mutate: Callable[..., Any], data: st.DataObject) -> None:
    bad, needles = mutate(doc, data)
    with fresh_dir() as root:
        path = write_lareqa(root, bad)
        with pytest.raises(DataError) as err:
            lareqa.read_language_file(path, "en")
    assert_one_line(err.value, str(path), *needles)


@FAST
@given(doc=lareqa_docs(), data=st.data())
def test_lareqa_any_node_replaced_never_crashes(doc: JSON, data: st.DataObject) -> None:
    """Replace any node by any JSON value: the file either still parses or raises a one-line DataError."""
    node = data.draw(st.sampled_from(paths_in(doc)))
    bad = replaced(doc, node, data.draw(ANY_JSON))
    with fresh_dir() as root:
        path = write_lareqa(root, bad)
        try:
            lareqa.read_language_file(path, "en")
        except DataError as exc:
            assert_one_line(exc, str(path))


def _truncated(raw: bytes, data: st.DataObject) -> tuple[bytes, str]:
    return raw[: data.draw(st.integers(0, len(raw) - 1))], ""


def _high_byte(raw: bytes, data: st.DataObject) -> tuple[bytes, str]:
    i = data.draw(st.integers(0, len(raw)))  # raw is ASCII: any byte >= 0x80 alone is invalid UTF-8
    return raw[:i] + bytes([data.draw(st.integers(0x80, 0xFF))]) + raw[i:], "not UTF-8"


def _empty(raw: bytes, data: st.DataObject) -> tuple[bytes, str]:
    return data.draw(st.sampled_from([b"", b"\n", b"   \n\t"])), "empty"


def _garbage(raw: bytes, data: st.DataObject) -> tuple[bytes, str]:
    return data.draw(st.sampled_from([b"{not json", b"[1, 2", b"\x00\x01", b"data: []", b"[" * 100_000])), ""


BYTE_MUTATIONS = [_truncated, _high_byte, _empty, _garbage]


@FAST
@given(doc=lareqa_docs(), mutate=st.sampled_from(BYTE_MUTATIONS), data=st.data())
def test_lareqa_broken_bytes(doc: JSON, mutate: Callable[..., Any], data: st.DataObject) -> None:
    raw, needle = mutate(json.dumps(doc).encode("ascii"), data)
    with fresh_dir() as root:
        path = root / "en.json"
        path.write_bytes(raw)
        with pytest.raises(DataError) as err:
            lareqa.read_language_file(path, "en")
    assert_one_line(err.value, str(path), needle)


def test_lareqa_unreadable_paths(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        lareqa.read_language_file(tmp_path / "missing.json", "en")
    assert_one_line(err.value, "missing.json", "file not found")
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(DataError) as err:
        lareqa.read_language_file(tmp_path / "dir.json", "en")
    assert_one_line(err.value, "dir.json", "cannot read")


def test_lareqa_utf8_bom_is_accepted(tmp_path: Path) -> None:
    qa = {"id": "q", "question": "a?", "answers": [{"answer_start": 0, "text": "a"}]}  # (no questions is an error)
    doc = {"data": [{"paragraphs": [{"context": "ab", "sentence_breaks": [[0, 2]], "sentences": ["ab"], "qas": [qa]}]}]}
    path = tmp_path / "en.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(doc).encode())
    assert len(lareqa.read_language_file(path, "en").candidates) == 1


# ---- TyDi QA ---------------------------------------------------------------------------------------------------


@st.composite
def tydi_docs(draw: st.DrawFn) -> JSON:
    langs = draw(st.lists(st.sampled_from(sorted(tydi.TYDI_LANGS)), min_size=1, max_size=3))
    paragraphs, n = [], 0
    for lang in langs:
        qas = []
        for _ in range(draw(st.integers(1, 2))):
            qas.append({"id": f"{lang}-{n}", "question": draw(SENTENCE), "answers": [{"answer_start": 0, "text": "a"}]})
            n += 1
        paragraphs.append({"context": draw(SENTENCE), "qas": qas})
    return {"version": "TyDiQA-GoldP-1.1-for-SQuAD-1.1", "data": [{"title": "t", "paragraphs": paragraphs}]}


def _tydi_drop(doc: JSON, data: st.DataObject) -> tuple[JSON, list[str]]:
    para = first_para(doc)
    key = data.draw(st.sampled_from(["context", "qas", "id", "question"]))
    if key in ("context", "qas"):
        del para[key]
        return doc, ["data[0].paragraphs[0]", f"field {key!r}"]
    del para["qas"][0][key]
    return doc, ["data[0].paragraphs[0].qas[0]", f"missing field {key!r}"]


def _tydi_retype(doc: JSON, data: st.DataObject) -> tuple[JSON, list[str]]:
    para = first_para(doc)
    key = data.draw(st.sampled_from(["context", "id", "question"]))
    if key == "context":
        para[key] = data.draw(WRONG[str])
        return doc, ["data[0].paragraphs[0]", "'context'"]
    para["qas"][0][key] = data.draw(WRONG[str])
    return doc, ["data[0].paragraphs[0].qas[0]", f"field {key!r} should be str"]


def _tydi_bad_lang(doc: JSON, data: st.DataObject) -> tuple[JSON, list[str]]:
    first_para(doc)["qas"][0]["id"] = data.draw(st.sampled_from(["klingon-1", "12345", "", "-english-1"]))
    return doc, ["data[0].paragraphs[0].qas[0]", "does not start with a TyDi language name"]


def _tydi_structure(doc: JSON, data: st.DataObject) -> tuple[Any, list[str]]:
    choice = data.draw(st.integers(0, 4))
    if choice == 0:
        return data.draw(st.sampled_from([[], 3, "x", {"version": 1}])), ["'data'"]
    if choice == 1:
        doc["data"] = data.draw(st.sampled_from([{}, "x", 3]))
        return doc, ["field 'data' should be list"]
    if choice == 2:
        doc["data"][0] = data.draw(st.sampled_from([[], 3, None]))
        return doc, ["data[0]", "expected an object"]
    if choice == 3:
        first_para(doc)["qas"].append(json.loads(json.dumps(first_para(doc)["qas"][0])))
        return doc, ["repeats an earlier question id"]
    doc["data"] = []
    return doc, ["no questions found"]


TYDI_MUTATIONS = [_tydi_drop, _tydi_retype, _tydi_bad_lang, _tydi_structure]


def write_tydi(root: Path, doc: Any) -> Path:
    (root / "tydi").mkdir(parents=True, exist_ok=True)
    path = root / "tydi" / "tydiqa-goldp-v1.1-dev.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


@FAST
@given(doc=tydi_docs())
def test_generated_tydi_docs_are_valid(doc: JSON) -> None:
    with fresh_dir() as root:
        bench = tydi.load_file(write_tydi(root, doc))
    assert len(bench.queries) == sum(len(p["qas"]) for p in first_para_list(doc))


def first_para_list(doc: JSON) -> list[JSON]:
    return [p for a in doc["data"] for p in a["paragraphs"]]


@FAST
@given(doc=tydi_docs(), mutate=st.sampled_from(TYDI_MUTATIONS), data=st.data())
def test_tydi_field_errors_name_file_and_field(doc: JSON, mutate: Callable[..., Any], data: st.DataObject) -> None:
    bad, needles = mutate(doc, data)
    with fresh_dir() as root:
        path = write_tydi(root, bad)
        with pytest.raises(DataError) as err:
            tydi.load_file(path)
    assert_one_line(err.value, str(path), *needles)


@FAST
@given(doc=tydi_docs(), data=st.data())
def test_tydi_any_node_replaced_never_crashes(doc: JSON, data: st.DataObject) -> None:
    bad = replaced(doc, data.draw(st.sampled_from(paths_in(doc))), data.draw(ANY_JSON))
    with fresh_dir() as root:
        path = write_tydi(root, bad)
        try:
            tydi.load_file(path)
        except DataError as exc:
            assert_one_line(exc, str(path))


@FAST
@given(doc=tydi_docs(), mutate=st.sampled_from(BYTE_MUTATIONS), data=st.data())
def test_tydi_broken_bytes(doc: JSON, mutate: Callable[..., Any], data: st.DataObject) -> None:
    raw, needle = mutate(json.dumps(doc).encode("ascii"), data)
    with fresh_dir() as root:
        path = write_tydi(root, {})
        path.write_bytes(raw)
        with pytest.raises(DataError) as err:
            tydi.load_file(path)
    assert_one_line(err.value, str(path), needle)


# ---- MIRACL ----------------------------------------------------------------------------------------------------


@st.composite
def miracl_files(draw: st.DrawFn) -> dict[str, list[str]]:
    """topics.tsv, qrels.tsv and corpus.jsonl lines of one language where every topic has a relevant passage."""
    n_docs = draw(st.integers(1, 4))
    corpus = [json.dumps({"docid": f"d{i}", "title": "t", "text": draw(SENTENCE)}) for i in range(n_docs)]
    topics, qrels = [], []
    for q in range(draw(st.integers(1, 3))):
        topics.append(f"q{q}\t{draw(SENTENCE)}")
        for d in draw(st.lists(st.integers(0, n_docs - 1), min_size=1, max_size=2, unique=True)):
            qrels.append(f"q{q} Q0 d{d} 1")
        qrels.append(f"q{q} Q0 d{draw(st.integers(0, n_docs - 1))} 0")
    return {"topics.tsv": topics, "qrels.tsv": qrels, "corpus.jsonl": corpus}


def write_miracl(root: Path, files: dict[str, list[str]], lang: str = "en") -> Path:
    folder = root / "miracl" / lang
    folder.mkdir(parents=True, exist_ok=True)
    for name, lines in files.items():
        (folder / name).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return folder


BAD_MIRACL_LINES: dict[str, list[tuple[str, str]]] = {
    "topics.tsv": [("q9", "expected 'qid<TAB>query'"), ("\tno id", "expected 'qid<TAB>query'"),
                   ("q9\t ", "expected 'qid<TAB>query'"), ("q0\tagain", "appears twice")],
    "qrels.tsv": [("q0 Q0 d0", "relevance"), ("q0 Q0 d0 --1", "relevance"), ("q0 Q0 d0 ²", "relevance"),
                  ("q0 Q0 d0 1.5", "relevance"), ("q0 Q0 d0 yes", "relevance"), ("q0 Q0 d0 1 extra", "relevance")],
    "corpus.jsonl": [("{not json", "not valid JSON"), ("[1, 2]", "expected an object"),
                     ('"text"', "expected an object"), ('{"text": "x"}', "missing field 'docid'"),
                     ('{"docid": "x"}', "missing field 'text'"),
                     ('{"docid": "x", "text": 3}', "field 'text' should be str"),
                     ('{"docid": "x", "text": "t", "title": []}', "field 'title' should be str"),
                     ('{"docid": null, "text": "t"}', "field 'docid'"),
                     ('{"docid": true, "text": "t"}', "field 'docid'"),
                     ('{"docid": "d0", "text": "t"}', "appears twice"), ("[" * 100_000, "not valid JSON")],
}  # fmt: skip


@FAST
@given(files=miracl_files(), name=st.sampled_from(sorted(BAD_MIRACL_LINES)), blanks=st.integers(0, 2), data=st.data())
def test_miracl_bad_lines_name_file_and_line(
    files: dict[str, list[str]], name: str, blanks: int, data: st.DataObject
) -> None:
    bad_line, needle = data.draw(st.sampled_from(BAD_MIRACL_LINES[name]))
    lines = files[name]
    at = len(lines) if needle == "appears twice" else data.draw(st.integers(0, len(lines)))  # the repeat comes 2nd
    files[name] = lines[:at] + [""] * blanks + [bad_line] + lines[at:]
    with fresh_dir() as root:
        folder = write_miracl(root, files)
        with pytest.raises(DataError) as err:
            miracl.load_dir(root / "miracl", ["en"])
    # the line number counts blank lines too: it is the line an editor shows
    assert_one_line(err.value, f"{folder / name}:{at + blanks + 1}:", needle)


@FAST
@given(files=miracl_files(), name=st.sampled_from(sorted(BAD_MIRACL_LINES)), data=st.data())
def test_miracl_broken_files(files: dict[str, list[str]], name: str, data: st.DataObject) -> None:
    with fresh_dir() as root:
        folder = write_miracl(root, files)
        path = folder / name
        choice = data.draw(st.integers(0, 3))
        if choice == 0:
            path.unlink()
            needle = "file not found"
        elif choice == 1:
            raw, needle = _high_byte(path.read_bytes(), data)
            path.write_bytes(raw)
        elif choice == 2:
            path.unlink()
            path.mkdir()
            needle = "cannot read"
        else:  # any line replaced by any text: loads or fails in one line
            lines = files[name]
            lines[data.draw(st.integers(0, len(lines) - 1))] = data.draw(st.text(max_size=20)).replace("\n", " ")
            write_miracl(root, files)
            needle = ""
        try:
            miracl.load_dir(root / "miracl", ["en"])
            assert choice == 3
        except DataError as exc:
            assert_one_line(exc, needle)
            assert str(folder) in str(exc)


def test_generated_miracl_files_are_valid(tmp_path: Path) -> None:
    files = {"topics.tsv": ["q0\tquery"], "qrels.tsv": ["q0 Q0 7 1"], "corpus.jsonl": ['{"docid": 7, "text": "t"}']}
    write_miracl(tmp_path, files)
    bench = miracl.load_dir(tmp_path / "miracl", ["en"])
    assert bench.qrels == {"en:q0": {"en:7"}}


# ---- presets ---------------------------------------------------------------------------------------------------


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def toml_text(doc: dict[str, dict[str, Any]]) -> str:
    out = []
    for section, values in doc.items():
        out.append(f"[{section}]")
        out += [f"{json.dumps(k)} = {toml_value(v)}" for k, v in values.items()]
    return "\n".join(out) + "\n"


def base_preset() -> dict[str, dict[str, Any]]:
    return {
        "preset": {"name": "bad", "backbones": ["tiny-random"], "strategies": ["xx", "hybrid"], "seeds": [0]},
        "run": {"eval_data": ["xquad-r"], "train_data": "mlqa-r", "langs": ["de", "en"], "steps": 2, "batch_size": 4},
    }


TOML_WRONG = {str: ["1", "true", "[1]", "{a = 1}", "1979-05-27"], int: ['"1"', "1.5", "true", "[1]"],
              float: ['"x"', "true", "[]"], bool: ['"yes"', "1", "[]"], list: ['"xx"', "1", "{a = 1}"]}  # fmt: skip
PRESET_TYPES = {"name": str, "description": str, "backbones": list, "strategies": list, "seeds": list, "baseline": bool}
RUN_TYPES = {"steps": int, "batch_size": int, "lr": float, "text_mode": str, "eval_data": list, "langs": list,
             "save_model": bool, "max_queries": int, "train_data": str, "device": str}  # fmt: skip
RUN_FIELDS = {f.name for f in fields(RunConfig)}
IDENT = st.from_regex(r"[a-z][a-z_]{0,8}", fullmatch=True)


def _toml_syntax(data: st.DataObject) -> tuple[str, list[str]]:
    text = toml_text(base_preset())
    garbage = data.draw(
        st.sampled_from(["= 3", "[preset", 'x = "open', "steps = = 2", "[run]\n[run]", "a.b = 1\na = 2"])
    )
    return text + garbage + "\n", ["not valid TOML"]


def _toml_unknown_key(data: st.DataObject) -> tuple[str, list[str]]:
    doc = base_preset()
    section = data.draw(st.sampled_from(["preset", "run"]))
    key = data.draw(IDENT.filter(lambda k: k not in PRESET_TYPES and k not in RUN_FIELDS))
    doc[section][key] = 1
    return toml_text(doc), [f"unknown key [{section}] {key!r}", "allowed:"]


def _toml_unknown_section(data: st.DataObject) -> tuple[str, list[str]]:
    doc: dict[str, Any] = base_preset()
    section = data.draw(IDENT.filter(lambda s: s not in ("preset", "run")))
    doc[section] = {"a": 1}
    return toml_text(doc), [f"unknown section [{section}]", "allowed:"]


def _toml_wrong_type(data: st.DataObject) -> tuple[str, list[str]]:
    section, types = data.draw(st.sampled_from([("preset", PRESET_TYPES), ("run", RUN_TYPES)]))
    key = data.draw(st.sampled_from(sorted(types)))
    literal = data.draw(st.sampled_from(TOML_WRONG[types[key]]))
    doc = base_preset()
    doc[section].pop(key, None)
    return toml_text(doc).replace(f"[{section}]\n", f"[{section}]\n{key} = {literal}\n"), [f"[{section}] {key}"]


def _toml_wrong_item(data: st.DataObject) -> tuple[str, list[str]]:
    section, key, literal = data.draw(
        st.sampled_from(
            [("preset", "backbones", "[1]"), ("preset", "strategies", '["xx", 2]'), ("preset", "seeds", '["0"]'),
             ("preset", "seeds", "[true]"), ("run", "langs", '["en", [1]]'), ("run", "eval_data", "[{a = 1}]")]
        )
    )  # fmt: skip
    doc = base_preset()
    doc[section].pop(key, None)
    return toml_text(doc).replace(f"[{section}]\n", f"[{section}]\n{key} = {literal}\n"), [f"[{section}] {key}["]


def _toml_unknown_name(data: st.DataObject) -> tuple[str, list[str]]:
    name = data.draw(st.from_regex(r"zz[a-z]{0,5}", fullmatch=True))
    section, key, value, needle = data.draw(
        st.sampled_from(
            [("preset", "backbones", [name], "unknown backbone"), ("preset", "strategies", [name], "unknown strategy"),
             ("run", "langs", [name], "unknown language"), ("run", "eval_data", [name], "unknown dataset"),
             ("run", "train_data", name, "unknown dataset"), ("run", "train_langs", [name], "unknown language"),
             ("run", "text_mode", name, "unknown text mode"), ("run", "device", name, "unknown device")]
        )
    )  # fmt: skip
    doc = base_preset()
    doc[section][key] = value
    return toml_text(doc), [f"[{section}] {key}" if key != "text_mode" else "[run]", needle, repr(name), "allowed"]


BAD_VALUES: list[tuple[str, str, Any, list[str]]] = [
    ("run", "steps", 0, ["[run] steps: must be positive, got 0"]),
    ("run", "steps", -3, ["[run] steps: must be positive"]),
    ("run", "max_queries", -1, ["[run] max_queries: must be positive"]),
    ("run", "lr", -1.0, ["[run] lr: must be positive"]),
    ("run", "lr", float("nan"), ["[run] lr: must be positive, got nan"]),
    ("run", "warmup_ratio", 1.5, ["[run] warmup_ratio: must be in [0, 1)"]),
    ("run", "batch_size", 1, ["[run]", "batch_size must be at least 2"]),
    ("run", "hybrid_p", 2.0, ["[run]", "hybrid_p must be in [0, 1]"]),
    ("run", "eval_data", [], ["[run] eval_data: must name at least one dataset"]),
    ("run", "train_data", "tydi", ["[run] train_data:", "not parallel"]),
    ("run", "eval_data", ["mlqa-r"], ["[run]", "zero-shot"]),
    ("preset", "seeds", [], ["[preset] seeds: must be a non-empty list"]),
    ("preset", "seeds", [0, 0], ["[preset]", "appears twice"]),
    ("preset", "name", "../x", ["[preset] name '../x'", "plain folder name"]),
    ("run", "data_dir", "/no/such/dir", ["[run] data_dir:", "does not exist"]),
    ("run", "backbone", "x", ["[run] backbone is set per grid cell: use [preset] backbones"]),
    ("run", "strategy", "xx", ["[run] strategy is set per grid cell"]),
]


def _toml_bad_value(data: st.DataObject) -> tuple[str, list[str]]:
    section, key, value, needles = data.draw(st.sampled_from(BAD_VALUES))
    doc = base_preset()
    doc[section][key] = value
    return toml_text(doc), needles


def _toml_not_a_table(data: st.DataObject) -> tuple[str, list[str]]:
    section = data.draw(st.sampled_from(["preset", "run"]))
    value = data.draw(st.sampled_from(["3", '"x"', "[1]"]))
    return f"{section} = {value}\n", [f"[{section}] table"]


PRESET_MUTATIONS = [_toml_syntax, _toml_unknown_key, _toml_unknown_section, _toml_wrong_type, _toml_wrong_item,
                    _toml_unknown_name, _toml_bad_value, _toml_not_a_table]  # fmt: skip


def test_base_preset_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "ok.toml"
    path.write_text(toml_text(base_preset()), encoding="utf-8")
    preset = load_preset(str(path))
    assert [c[1] for c in preset.cells()] == ["none", "xx", "hybrid"]


@FAST
@given(mutate=st.sampled_from(PRESET_MUTATIONS), data=st.data())
def test_preset_errors_name_file_and_key(mutate: Callable[..., Any], data: st.DataObject) -> None:
    text, needles = mutate(data)
    with fresh_dir() as root:
        path = root / "bad.toml"
        path.write_text(text, encoding="utf-8")
        with pytest.raises((ConfigError, DataError)) as err:  # DataError: a [run] data_dir that does not exist
            load_preset(str(path))
    assert_one_line(err.value, str(path), *needles)


@pytest.mark.parametrize(("section", "key", "value", "needles"), BAD_VALUES, ids=lambda v: str(v)[:20])
def test_every_bad_preset_value(section: str, key: str, value: Any, needles: list[str], tmp_path: Path) -> None:
    """Each table row once, whatever hypothesis happens to sample."""
    doc = base_preset()
    doc[section][key] = value
    path = tmp_path / "bad.toml"
    path.write_text(toml_text(doc), encoding="utf-8")
    with pytest.raises(UserError) as err:
        load_preset(str(path))
    assert_one_line(err.value, str(path), *needles)


MIRACL_ROWS = [(name, line, needle) for name, rows in BAD_MIRACL_LINES.items() for line, needle in rows]


MIRACL_IDS = [f"{name}-{i}" for i, (name, _, _) in enumerate(MIRACL_ROWS)]


@pytest.mark.parametrize(("name", "line", "needle"), MIRACL_ROWS, ids=MIRACL_IDS)
def test_every_bad_miracl_line(name: str, line: str, needle: str, tmp_path: Path) -> None:
    files = {"topics.tsv": ["q0\tquery"], "qrels.tsv": ["q0 Q0 d0 1"], "corpus.jsonl": ['{"docid": "d0", "text": "t"}']}
    files[name].append(line)
    folder = write_miracl(tmp_path, files)
    with pytest.raises(DataError) as err:
        miracl.load_dir(tmp_path / "miracl", ["en"])
    assert_one_line(err.value, f"{folder / name}:2:", needle)


@FAST
@given(data=st.data())
def test_preset_broken_bytes(data: st.DataObject) -> None:
    raw = toml_text(base_preset()).encode()
    cut = data.draw(st.booleans())
    content, needle = (raw[: data.draw(st.integers(0, len(raw) - 1))], "") if cut else _high_byte(raw, data)
    with fresh_dir() as root:
        path = root / "bad.toml"
        path.write_bytes(content)
        try:
            load_preset(str(path))  # a cut at a line end can still be a valid (smaller) preset
            assert cut
        except ConfigError as exc:
            assert_one_line(exc, str(path), needle)


def test_preset_unreadable_paths(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="preset file not found"):
        load_preset(str(tmp_path / "none.toml"))
    (tmp_path / "dir.toml").mkdir()
    with pytest.raises(ConfigError) as err:
        load_preset(str(tmp_path / "dir.toml"))
    assert_one_line(err.value, "dir.toml", "cannot read")


# ---- the CLI end to end ----------------------------------------------------------------------------------------


def cli(argv: list[str], capfd: pytest.CaptureFixture[str]) -> tuple[int, list[str], str]:
    """Run `hbt-bench argv` in-process: exit code, non-blank stderr lines, everything printed."""
    capfd.readouterr()
    code = main(argv)
    out, err = capfd.readouterr()
    return code, [ln for ln in err.splitlines() if ln.strip()], out + err


def assert_user_error(code: int, lines: list[str], printed: str, *needles: str) -> None:
    assert code == 2, printed
    assert "Traceback" not in printed, printed
    assert len(lines) == 1 and lines[0].startswith("hbt: "), lines
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def assert_nothing_left(out: Path) -> None:
    assert not out.exists() or not any(out.rglob("*")), sorted(str(p) for p in out.rglob("*"))


@CLI
@given(mutate=st.sampled_from(PRESET_MUTATIONS), data=st.data())
def test_cli_bad_preset(mutate: Callable[..., Any], data: st.DataObject, capfd: pytest.CaptureFixture[str]) -> None:
    text, needles = mutate(data)
    with fresh_dir() as root:
        path = root / "bad.toml"
        path.write_text(text, encoding="utf-8")
        out = root / "o"
        code, lines, printed = cli(["run", str(path), "--out", str(out)], capfd)
        assert_user_error(code, lines, printed, str(path), *needles)
        assert not out.exists()


def _data_dir_with(root: Path, kind: str, bad: Any) -> list[str]:
    """A data dir whose `kind` dataset is malformed; returns the eval flags that load it."""
    if kind == "tydi":
        write_tydi(root, bad)
        return ["--eval-data", "tydi", "--langs", "en"]
    if kind == "miracl":
        write_miracl(root, bad)
        return ["--eval-data", "miracl", "--langs", "en"]
    write_lareqa(root, bad, name=kind)
    return ["--eval-data", kind, "--langs", "en"]


def _eval(root: Path, flags: list[str], out: Path) -> list[str]:
    return ["eval", "--backbone", "tiny-random", "--data-dir", str(root), *flags, "--out", str(out), "--device", "cpu"]


@CLI
@given(doc=lareqa_docs(), mutate=st.sampled_from(LAREQA_MUTATIONS), data=st.data())
def test_cli_bad_lareqa_exits_2_with_one_hbt_line(
    doc: JSON, mutate: Callable[..., Any], data: st.DataObject, capfd: pytest.CaptureFixture[str]
) -> None:
    bad, needles = mutate(doc, data)
    with fresh_dir() as root:
        flags = _data_dir_with(root, data.draw(st.sampled_from(["xquad-r", "mlqa-r"])), bad)
        code, lines, printed = cli(_eval(root, flags, root / "o"), capfd)
    assert code == 2 and "Traceback" not in printed, printed
    hbt = [ln for ln in lines if ln.startswith("hbt: ")]
    assert len(hbt) == 1 and hbt == lines[-1:], lines
    assert "en.json" in hbt[0] and all(n in hbt[0] for n in needles), (needles, hbt)


BAD_DATA = {
    "xquad-r": {"data": [{"paragraphs": [{"context": "ab", "sentence_breaks": [[0, 5]], "sentences": ["ab"]}]}]},
    "tydi": {"data": [{"paragraphs": [{"context": 3, "qas": []}]}]},
    "miracl": {"topics.tsv": ["q0\tquery"], "qrels.tsv": ["q0 Q0 d0 maybe"], "corpus.jsonl": ['{"docid": "d0"}']},
}


@pytest.mark.parametrize("kind", sorted(BAD_DATA))
def test_cli_bad_data_file_exits_2(kind: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    flags = _data_dir_with(tmp_path / "data", kind, BAD_DATA[kind])
    code, lines, printed = cli(_eval(tmp_path / "data", flags, tmp_path / "o"), capfd)
    assert code == 2 and "Traceback" not in printed, printed
    assert lines[-1].startswith("hbt: ") and str(tmp_path / "data") in lines[-1], lines
    assert sum(ln.startswith("hbt: ") for ln in lines) == 1


@pytest.mark.parametrize("kind", sorted(BAD_DATA))
def test_cli_bad_data_file_leaves_nothing_and_one_stderr_line(
    kind: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    flags = _data_dir_with(tmp_path / "data", kind, BAD_DATA[kind])
    out = tmp_path / "o"
    code, lines, printed = cli(_eval(tmp_path / "data", flags, out), capfd)
    assert_user_error(code, lines, printed, str(tmp_path / "data"))
    assert not out.exists(), sorted(p.name for p in out.iterdir())


def test_cli_run_preset_with_bad_data_leaves_nothing(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    write_lareqa(data, BAD_DATA["xquad-r"])
    preset = base_preset()
    preset["run"].update(langs=["en"], data_dir=str(data))
    preset["preset"].update(strategies=[])  # the zero-shot baseline only: no training data needed
    path = tmp_path / "p.toml"
    path.write_text(toml_text(preset), encoding="utf-8")
    out = tmp_path / "o"
    code, lines, printed = cli(["run", str(path), "--out", str(out)], capfd)
    assert code == 2 and "Traceback" not in printed and lines[-1].startswith("hbt: "), printed
    assert not out.exists(), sorted(str(p.relative_to(out)) for p in out.rglob("*"))


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["run", "smoke", "--seeds", "0,0"], "appears twice"),
        (["run", "smoke", "--steps", "0"], "--steps: must be positive"),
        (["run", "smoke", "--langs", "zz"], "--langs: unknown language"),
        (["run", "smoke", "--backbones", "zz-none"], "--backbones: unknown backbone 'zz-none'"),
        (["run", "smoke", "--strategies", "xx,zz"], "--strategies: unknown strategy 'zz'"),
    ],
)
def test_cli_bad_run_flags(flags: list[str], needle: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    code, lines, printed = cli([*flags, "--out", str(tmp_path / "o")], capfd)
    assert_user_error(code, lines, printed, needle)
    assert not (tmp_path / "o").exists()


def test_cli_eval_negative_max_queries_is_a_user_error(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    qa = {"id": "q", "question": "?", "answers": [{"answer_start": 0}]}
    doc = {"data": [{"paragraphs": [{"context": "ab", "sentence_breaks": [[0, 2]], "sentences": ["ab"], "qas": [qa]}]}]}
    write_lareqa(tmp_path / "data", doc)
    out = tmp_path / "o"
    code, lines, printed = cli(_eval(tmp_path / "data", ["--langs", "en", "--max-queries", "-1"], out), capfd)
    assert_user_error(code, lines, printed, "max_queries")
    assert not out.exists()


# ---- disk and permission faults (engine/common/io.py) ----------------------------------------------------------------

NO_SPACE = OSError(errno.ENOSPC, "No space left on device")


class FullDiskFile:
    """A file object whose writes fail with ENOSPC (the disk filled up mid-write)."""

    def __init__(self, fh: Any) -> None:
        self._fh = fh

    def write(self, data: Any) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fh, name)

    def __enter__(self) -> FullDiskFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._fh.close()


@pytest.fixture
def full_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.fdopen
    monkeypatch.setattr(os, "fdopen", lambda fd, *a, **k: FullDiskFile(real(fd, *a, **k)))


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize(
    "write", [lambda p: write_json(p, {"a": 1}), lambda p: write_text(p, "x"), lambda p: write_bytes(p, b"x")]
)
def test_enospc_during_write_is_one_line_and_removes_the_temp_file(
    write: Callable[[Path], None], tmp_path: Path, full_disk: None
) -> None:
    target = tmp_path / "out" / "results.json"
    with pytest.raises(OutputError) as err:
        write(target)
    assert_one_line(err.value, f"out of disk space writing {target} — free space or choose another --out")
    assert leftovers(tmp_path / "out") == []


def test_enospc_keeps_the_previous_file_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "run.json"
    write_json(target, {"status": "running"})

    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(OutputError, match="out of disk space"):
        write_json(target, {"status": "complete"})
    assert json.loads(target.read_text()) == {"status": "running"}
    assert leftovers(tmp_path) == ["run.json"]
    with pytest.raises(OutputError, match="out of disk space"), atomic_open(tmp_path / "x.bin", "wb") as fh:
        fh.write(b"partial")
        raise NO_SPACE
    assert leftovers(tmp_path) == ["run.json"]


@pytest.fixture
def unwritable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder nothing can be created in: chmod 0o500, or (as root, where chmod does not bind) patched calls."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o500)
        yield folder
        folder.chmod(0o700)
        return

    def denied(path: Any) -> bool:
        return Path(path).resolve().is_relative_to(folder.resolve())

    def refuse(path: Any) -> OSError:
        return PermissionError(errno.EACCES, "Permission denied", str(path))

    real_mkstemp, real_mkdir, real_open = tempfile.mkstemp, Path.mkdir, os.open

    def mkstemp(*args: Any, dir: Any = None, **kwargs: Any) -> tuple[int, str]:
        if dir is not None and denied(dir):
            raise refuse(dir)
        return real_mkstemp(*args, dir=dir, **kwargs)

    def mkdir(self: Path, *args: Any, **kwargs: Any) -> None:
        if denied(self) and self.resolve() != folder.resolve():
            raise refuse(self)
        return real_mkdir(self, *args, **kwargs)

    def os_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and denied(path):
            raise refuse(path)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(Path, "mkdir", mkdir)
    monkeypatch.setattr(os, "open", os_open)
    yield folder


def test_eacces_is_one_line(unwritable: Path) -> None:
    target = unwritable / "results.json"
    with pytest.raises(OutputError) as err:
        write_json(target, {"a": 1})
    assert_one_line(err.value, f"cannot write {target}: permission denied — choose another --out")
    with pytest.raises(OutputError, match="permission denied — choose another --out"):
        ensure_dir(unwritable / "run" / "cells")
    with pytest.raises(OutputError, match="permission denied"):
        JsonlSink(unwritable / "run" / "events.jsonl")
    assert leftovers(unwritable) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores chmod; test_eacces_is_one_line patches the calls")
def test_eacces_with_a_real_chmod_folder(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="permission denied"):
            write_text(folder / "x.txt", "x")
        assert leftovers(folder) == []
    finally:
        folder.chmod(0o700)


def test_erofs_and_other_errors_on_rename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for code, needle in ((errno.EROFS, "read-only file system"), (errno.EIO, "Input/output error")):

        def fail(src: Any, dst: Any, code: int = code) -> None:
            raise OSError(code, os.strerror(code))

        monkeypatch.setattr(os, "replace", fail)
        with pytest.raises(OutputError) as err:
            write_json(tmp_path / "a.json", {})
        assert_one_line(err.value, str(tmp_path / "a.json"), needle, "choose another --out")
        assert leftovers(tmp_path) == []
    monkeypatch.undo()
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="cannot write"):
        write_json(tmp_path / "file" / "a.json", {})  # a file where a folder should be


VALID_ONE_QUESTION = {
    "data": [{"paragraphs": [{
        "context": "ab", "sentence_breaks": [[0, 2]], "sentences": ["ab"],
        "qas": [{"id": "q1", "question": "a?", "answers": [{"text": "ab", "answer_start": 0}]}],
    }]}]
}  # fmt: skip


def test_cli_enospc_is_one_line_exit_2(tmp_path: Path, capfd: pytest.CaptureFixture[str], full_disk: None) -> None:
    write_lareqa(tmp_path / "data", VALID_ONE_QUESTION)  # valid data: the write is what fails
    out = tmp_path / "o"
    code, lines, printed = cli(_eval(tmp_path / "data", ["--langs", "en"], out), capfd)
    assert_user_error(code, lines, printed, "out of disk space writing", "free space or choose another --out")
    assert_nothing_left(out)


def test_cli_unwritable_out_is_one_line_exit_2(
    unwritable: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    write_lareqa(tmp_path / "data", VALID_ONE_QUESTION)  # valid data: the write is what fails
    out = unwritable / "o"
    code, lines, printed = cli(_eval(tmp_path / "data", ["--langs", "en"], out), capfd)
    assert_user_error(code, lines, printed, "permission denied — choose another --out")
    assert not out.exists()


# ---- torn events.jsonl -----------------------------------------------------------------------------------------

EVENTS = [
    RunStarted(t=1.0, run_dir="r", config={"a": "é"}),
    Stage(t=2.0, name="load-data", detail="xquad-r"),
    Log(t=3.0, level="info", message="line\u2028separator and 日本"),  # not a line break in JSONL
    RunFinished(t=4.0, run_dir="r", status="complete"),
]


def write_events(path: Path, events: list[Any]) -> list[int]:
    """Write events through JsonlSink; returns each event's end offset (bytes, newline excluded)."""
    sink = JsonlSink(path)
    ends = []
    for event in events:
        sink(event)
        ends.append(path.stat().st_size - 1)
    sink.close()
    return ends


@FAST
@given(cut=st.integers(0, 10_000), n=st.integers(1, len(EVENTS)))
def test_read_events_skips_a_torn_tail_and_the_sink_appends_after_it(cut: int, n: int) -> None:
    with fresh_dir() as root:
        path = root / "events.jsonl"
        ends = write_events(path, EVENTS[:n])
        raw = path.read_bytes()
        cut %= len(raw) + 1
        path.write_bytes(raw[:cut])  # a crash mid-append, possibly mid-character
        kept = [e for e, end in zip(EVENTS[:n], ends, strict=True) if end <= cut]
        assert read_events(path) == kept
        write_events(path, [Log(t=9.0, level="info", message="resumed")])  # a resumed run appends
        assert read_events(path) == [*kept, Log(t=9.0, level="info", message="resumed")]


def test_read_events_skips_garbage_lines(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    write_events(path, EVENTS[:2])
    with open(path, "ab") as fh:
        fh.write(b"\xff\xfe garbage\n")  # not UTF-8
        fh.write(b'[1, 2]\n42\n"text"\nnull\n{}\n')  # JSON, but not events
        fh.write(b'{"type": "no_such_kind"}\n{"type": "stage"}\n{"type": ["x"]}\n')  # unknown / incomplete
        fh.write(b"[" * 50_000 + b"\n")  # nested too deeply for the parser
    write_events(path, EVENTS[2:])
    with open(path, "ab") as fh:
        fh.write(b'{"type": "log", "level": "info", "mess')
    assert read_events(path) == EVENTS
    assert read_events(tmp_path / "missing.jsonl") == []


# ---- the results store: torn files and a corrupt index ---------------------------------------------------------


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    make_grid(root / "grid-a", seeds=(0,))
    write_run(root / "single", "none", 0)
    # a run killed before run.json was written: config.json + an events.jsonl with garbage and a torn tail
    killed = root / "killed"
    write_run(killed, "xx", 1)
    for name in ("run.json", "results.json"):
        (killed / name).unlink()
    with open(killed / "events.jsonl", "ab") as fh:
        fh.write(
            b"\x00garbage\n"
            + json.dumps(RunFinished(t=50.0, run_dir="k", status="failed", error="boom").to_dict()).encode()
        )
        fh.write(b'\n{"type": "stage", "t": 51.0, "na')
    return root


def stable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "indexed"} for r in rows]


def test_store_reads_a_torn_events_file(runs: Path) -> None:
    store = ResultsStore(runs)
    store.reindex()
    killed = store.get("killed")
    assert killed is not None
    assert (killed["status"], killed["error"], killed["started"], killed["updated"]) == ("failed", "boom", 1.0, 50.0)
    assert killed["strategy"] == "xx" and killed["mono_map"] is None


GARBAGE = [b"", b"garbage", b"SQLite format 3\x00" + b"\xff" * 4000, bytes(range(256)) * 40]


@pytest.mark.parametrize("garbage", [*GARBAGE, "truncated", "flipped"], ids=lambda g: str(g)[:12])
def test_store_rebuilds_a_deleted_or_corrupt_index(runs: Path, garbage: bytes | str) -> None:
    store = ResultsStore(runs)
    n = store.reindex()
    before = stable(store.list_runs())
    assert len(before) == n == 4 + 2
    index = runs / INDEX_NAME
    good = index.read_bytes()
    index.unlink()
    assert stable(store.list_runs()) == before  # rebuilt on read
    if garbage == "truncated":
        content = good[: len(good) // 2]
    elif garbage == "flipped":  # damaged pages beyond the header: only an integrity check notices
        flipped = bytearray(good)
        for i in range(4096, len(flipped), 7):
            flipped[i] ^= 0x55
        content = bytes(flipped)
    else:
        assert isinstance(garbage, bytes)
        content = garbage
    index.write_bytes(content)
    assert stable(store.list_runs()) == before
    assert store.refresh() >= 0 and stable(store.list_runs()) == before
    index.write_bytes(content)
    assert store.reindex() == n and stable(store.list_runs()) == before
    assert not [p for p in runs.iterdir() if p.name.endswith(".tmp")]


def test_store_lists_a_root_it_cannot_write(runs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = stable(ResultsStore(runs).list_runs())
    (runs / INDEX_NAME).write_bytes(b"corrupt")

    def read_only(path: Any, data: bytes) -> None:
        raise OutputError(f"cannot write {path}: read-only file system — choose another --out")

    monkeypatch.setattr("hbt.engine.runs.store.write_bytes", read_only)
    assert stable(ResultsStore(runs).list_runs()) == before
    store = ResultsStore(runs)  # what `hbt-bench list runs` does: refresh, then list
    write_run(runs / "new", "xy", 0)
    assert store.refresh() == len(before) + 1  # the corrupt file is rebuilt in memory, plus the new run
    assert len(store.list_runs()) == len(before) + 1
    assert (runs / INDEX_NAME).read_bytes() == b"corrupt"
    with pytest.raises(UserError, match="read-only file system"):
        store.reindex()  # an explicit rebuild says that it could not write
