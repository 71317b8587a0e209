"""LAReQA relevance construction on hand-checked paragraphs, and the loaders' error messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hbt.engine.common.errors import ConfigError, DataError, OfflineError
from hbt.engine.data import lareqa
from hbt.engine.data.registry import load_benchmark


def _breaks(context: str) -> list[list[int]]:
    out, start = [], 0
    for sentence in context.split(". "):
        end = start + len(sentence) + (0 if sentence.endswith(".") else 1)
        out.append([start, end])
        start = end + 1
    return out


def _para(context: str, breaks: list[list[int]], qas: list[dict]) -> dict:
    assert breaks == _breaks(context)
    return {
        "context": context,
        "sentence_breaks": breaks,
        "sentences": [context[b:e] for b, e in breaks],
        "qas": qas,
    }


def _write_pair(root: Path) -> None:
    en = "Paris is the capital. It has 2 million people. The Seine flows through it."
    de = "Paris ist die Hauptstadt. Es hat 2 Millionen Einwohner. Die Seine fließt hindurch."
    en_breaks = [[0, 21], [22, 46], [47, 74]]  # checked by hand against the strings above
    de_breaks = [[0, 25], [26, 55], [56, 82]]
    q_en = [
        {"id": "q1", "question": "How many people live in Paris?", "answers": [{"answer_start": 29, "text": "2"}]},
        {"id": "q2", "question": "Which river?", "answers": [{"answer_start": 51, "text": "Seine"}]},
    ]
    q_de = [{"id": "q1", "question": "Wie viele Menschen?", "answers": [{"answer_start": 33, "text": "2"}]}]
    (root / "xquad-r").mkdir(parents=True)
    for lang, ctx, br, qs in (("en", en, en_breaks, q_en), ("de", de, de_breaks, q_de)):
        doc = {"data": [{"title": "Paris", "paragraphs": [_para(ctx, br, qs)]}]}
        (root / "xquad-r" / f"{lang}.json").write_text(json.dumps(doc), encoding="utf-8")


def test_relevance_is_the_answer_sentence_in_every_language(tmp_path: Path) -> None:
    _write_pair(tmp_path)
    bench = load_benchmark("xquad-r", tmp_path, ["de", "en"])
    assert len(bench.candidates) == 6
    # q1 exists in en and de: the second sentence of each paragraph is relevant
    assert bench.qrels["en:q1"] == {"en:0:0:1", "de:0:0:1"}
    assert bench.qrels["de:q1"] == {"en:0:0:1", "de:0:0:1"}
    # q2 exists only in en: only the English sentence about the Seine
    assert bench.qrels["en:q2"] == {"en:0:0:2"}
    texts = {c.id: c.sentence for c in bench.candidates}
    assert texts["de:0:0:1"] == "Es hat 2 Millionen Einwohner."
    assert {q.group for q in bench.queries} == {"q1", "q2"}


def test_subset_keeps_parallel_groups(tmp_path: Path) -> None:
    _write_pair(tmp_path)
    bench = load_benchmark("xquad-r", tmp_path, ["de", "en"]).subset(["en"], max_queries=1, seed=3)
    assert len(bench.queries) == 1
    assert all(c.lang == "en" for c in bench.candidates)
    qid = bench.queries[0].id
    assert bench.qrels[qid] <= {c.id for c in bench.candidates}


def test_real_xquad_r_has_eleven_parallel_answers(data_dir: Path) -> None:
    bench = load_benchmark("xquad-r", data_dir)
    assert len(bench.queries) == 11 * 1190
    assert all(len(rel) == 11 for rel in bench.qrels.values())
    assert len(bench.candidates) == sum(bench.stats()[lang]["candidates"] for lang in bench.languages)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("data"), "missing field 'data'"),
        (lambda d: d["data"][0]["paragraphs"][0].pop("sentence_breaks"), "missing field 'sentence_breaks'"),
        (lambda d: d["data"][0]["paragraphs"][0]["sentence_breaks"].__setitem__(0, [0, 999]), "outside the context"),
        (lambda d: d["data"][0]["paragraphs"][0]["qas"][0]["answers"][0].__setitem__("answer_start", -4), "outside"),
        (lambda d: d["data"][0]["paragraphs"][0]["qas"][0].__setitem__("answers", []), "no answers"),
    ],
)
def test_malformed_files_name_the_place(tmp_path: Path, mutate, message: str) -> None:
    _write_pair(tmp_path)
    path = tmp_path / "xquad-r" / "en.json"
    doc = json.loads(path.read_text())
    mutate(doc)
    path.write_text(json.dumps(doc))
    with pytest.raises(DataError, match=message) as err:
        load_benchmark("xquad-r", tmp_path, ["en"])
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_bad_json_and_missing_language(tmp_path: Path) -> None:
    _write_pair(tmp_path)
    (tmp_path / "xquad-r" / "en.json").write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        load_benchmark("xquad-r", tmp_path, ["en"])
    with pytest.raises(DataError, match="no xquad-r file for language 'ar'"):
        load_benchmark("xquad-r", tmp_path, ["ar"])


def test_unknown_language_and_dataset_list_the_allowed_values(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown language for xquad-r 'xx' \(allowed: ar, de"):
        load_benchmark("xquad-r", tmp_path, ["xx"])
    with pytest.raises(
        ConfigError,
        match=r"unknown dataset 'squad' \(allowed: miracl, miracl-judged, mlqa-r, tydi, tydi-sentence, xor-retrieve, "
        r"xquad-r\)",
    ):
        load_benchmark("squad", tmp_path)


def test_no_data_dir_offline_names_the_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HBT_DATA_DIR", raising=False)
    monkeypatch.setattr("hbt.engine.data.registry.hub_reachable", lambda: False)
    with pytest.raises(OfflineError, match="--data-dir"):
        load_benchmark("mlqa-r", None, ["en"])


def test_parse_language_rejects_sentence_count_mismatch() -> None:
    doc = {"data": [{"paragraphs": [{"context": "ab", "sentence_breaks": [[0, 2]], "sentences": [], "qas": []}]}]}
    with pytest.raises(DataError, match="1 sentence_breaks but 0 sentences"):
        lareqa.parse_language(doc, "en", "x.json")
