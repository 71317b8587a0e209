"""Malformed benchmark data files: one clear line naming the file and the field (issue 7).

Property-based (hypothesis): valid LAReQA (SQuAD-format JSON), TyDi QA and MIRACL files are generated, then broken
(bad or truncated JSON, missing fields, wrong types, offsets outside the context, empty files, non-UTF-8 bytes,
bad lines). The loaders must raise a DataError whose single-line message names the file (and the field or line).
The same files through the CLI: tests/test_malformed_cli.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hbt.engine.common.errors import DataError
from hbt.engine.data import lareqa, miracl, tydi
from hypothesis import given
from hypothesis import strategies as st

from tests.malformed_common import BYTE_MUTATIONS, FAST, _high_byte, assert_one_line, fresh_dir, write_lareqa

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
