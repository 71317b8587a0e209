"""TyDi QA GoldP as the seed question needs it (issue 22): the release's layouts load as shipped (the single dev
JSON, the per-language files of the dev .tgz, the archive itself) to the same numbers, never dropping a file; the
passage and the LAReQA-style sentence pools; TyDi's macro over the non-English languages, English on its own row.
Metrics are checked against pytrec_eval (trec_reference), the macro by hand."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from hbt.engine.common.errors import DataError
from hbt.engine.data import tydi
from hbt.engine.data.benchmark import Benchmark
from hbt.engine.data.registry import load_eval
from hbt.engine.encoding.encode import encode_unique
from hbt.engine.evaluation import trec_reference
from hbt.engine.evaluation.evaluate import evaluate_benchmark, in_trec_order

FIXTURE = Path(__file__).parent / "fixtures" / "data" / "tydi" / "tydiqa-goldp-v1.1-dev.json"
GOLDP_LANGUAGES = ("arabic", "english", "finnish", "japanese", "russian", "telugu")  # the fixture's


def per_language_files(folder: Path) -> dict[str, Path]:
    """The dev .tgz's content as shipped: tydiqa-goldp-v1.1-dev/tydiqa-goldp-dev-<language>.json, each a SQuAD
    v1.1 document with the articles of one language (split by question id prefix, as split_predictions.py does)."""
    doc = json.loads(FIXTURE.read_text(encoding="utf-8"))
    out = {}
    for language in GOLDP_LANGUAGES:
        articles = [a for a in doc["data"] if a["paragraphs"][0]["qas"][0]["id"].startswith(language + "-")]
        path = folder / "tydiqa-goldp-v1.1-dev" / f"tydiqa-goldp-dev-{language}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"version": doc["version"], "data": articles}, ensure_ascii=False), "utf-8")
        out[language] = path
    return out


def layout(tmp_path: Path, form: str) -> Path:
    """A data dir whose tydi/ holds the single dev file, the extracted per-language folder, or the .tgz."""
    data = tmp_path / form
    folder = data / "tydi"
    folder.mkdir(parents=True)
    if form == "single":
        (folder / FIXTURE.name).write_bytes(FIXTURE.read_bytes())
    elif form == "per-language":
        per_language_files(folder)
    else:
        staging = tmp_path / "staging"
        files = per_language_files(staging)
        with tarfile.open(folder / "tydiqa-goldp-v1.1-dev.tgz", "w:gz") as archive:
            for path in files.values():
                archive.add(path, arcname=path.relative_to(staging).as_posix())
    return data


@pytest.mark.parametrize("dataset", ["tydi", "tydi-sentence"])
def test_single_file_per_language_files_and_the_archive_give_the_same_numbers(
    tmp_path: Path, counting_encoder: object, dataset: str
) -> None:
    results = {}
    for form in ("single", "per-language", "tgz"):
        bench = load_eval(dataset, layout(tmp_path, form))
        assert isinstance(bench, Benchmark)
        assert {q.lang for q in bench.queries} == {"ar", "en", "fi", "ja", "ru", "te"}  # no file dropped
        results[form] = evaluate_benchmark(bench, counting_encoder).summary  # type: ignore[arg-type]
    single = results["single"]
    assert single.n_queries == 12
    for form in ("per-language", "tgz"):
        other = results[form]
        assert other.n_queries == single.n_queries and other.n_candidates == single.n_candidates
        for lang, m in single.mono.per_language.items():
            assert other.mono.per_language[lang] == pytest.approx(m), (form, lang)
        assert other.multi.macro == pytest.approx(single.multi.macro)


def test_the_same_questions_twice_or_the_training_split_are_refused_in_one_line(tmp_path: Path) -> None:
    data = layout(tmp_path, "per-language")
    (data / "tydi" / FIXTURE.name).write_bytes(FIXTURE.read_bytes())  # the single file beside the per-language ones
    with pytest.raises(DataError, match=r"question 'arabic-[0-9]+' is also in .* keep one form") as info:
        load_eval("tydi", data)
    assert "\n" not in str(info.value)
    train = layout(tmp_path, "single")
    (train / "tydi" / "tydiqa-goldp-v1.1-train.json").write_bytes(FIXTURE.read_bytes())
    with pytest.raises(DataError, match=r"tydiqa-goldp-v1.1-train.json: the GoldP training split is not evaluated"):
        load_eval("tydi", train)


def test_sentence_pool_is_built_as_lareqa_builds_xquad_r() -> None:
    """Every sentence of every passage is a candidate, in its passage's order, with the passage as its context; a
    question's relevant sentence is the one whose span holds the answer start; the answer text lies inside it."""
    from sentencex import segment

    doc = json.loads(FIXTURE.read_text(encoding="utf-8"))
    bench = load_eval("tydi-sentence", FIXTURE.parent.parent)
    passages = load_eval("tydi", FIXTURE.parent.parent)
    assert isinstance(bench, Benchmark) and isinstance(passages, Benchmark)
    expected = [
        s.strip()
        for c in passages.candidates
        for s in segment(c.lang, c.sentence)
        if s.strip()
    ]  # fmt: skip
    assert [c.sentence for c in bench.candidates] == expected
    assert len(bench.candidates) > len(passages.candidates)
    for article in doc["data"]:
        for para in article["paragraphs"]:
            for qa in para["qas"]:
                lang = tydi.TYDI_LANGS[qa["id"].split("-")[0]]
                (relevant,) = bench.qrels[f"{lang}:{qa['id']}"]
                sentence = next(c for c in bench.candidates if c.id == relevant)
                assert qa["answers"][0]["text"] in sentence.sentence and sentence.context == para["context"]


@pytest.mark.parametrize("dataset", ["tydi", "tydi-sentence"])
def test_metrics_equal_pytrec_eval_and_the_macro_leaves_english_out(counting_encoder: object, dataset: str) -> None:
    bench = load_eval(dataset, FIXTURE.parent.parent)
    assert isinstance(bench, Benchmark)
    result = evaluate_benchmark(bench, counting_encoder)  # type: ignore[arg-type]
    summary = result.summary
    ordered = in_trec_order(bench)
    q = encode_unique(counting_encoder, [x.text for x in ordered.queries], "query")[0]  # type: ignore[arg-type]
    c = encode_unique(counting_encoder, [x.text("sentence") for x in ordered.candidates], "passage")[0]  # type: ignore[arg-type]
    worst = trec_reference.compare(summary, result.per_query_ap, trec_reference.reference(ordered, q, c))
    assert max(worst.values()) < 1e-6, worst
    for block in (summary.mono, summary.multi):
        langs = [x for x in block.per_language if x != "en"]
        assert "en" in block.per_language  # English keeps its own row
        assert block.macro["map"] == pytest.approx(np.mean([block.per_language[x]["map"] for x in langs]))
        with_en = np.mean([m["map"] for m in block.per_language.values()])
        assert block.macro["map"] != pytest.approx(with_en)  # the fixture tells the two conventions apart
    doc = summary.to_json()
    assert doc["macro_excludes"] == ["en"] and "non-English" in doc["macro_rule"]
    assert doc["pool_rule"].startswith("passage:" if dataset == "tydi" else "sentence:")


def test_cli_table_names_the_pool_and_the_macro(counting_encoder: object) -> None:
    from hbt.engine.cli.display import dataset_table

    bench = load_eval("tydi-sentence", FIXTURE.parent.parent)
    summary = evaluate_benchmark(bench, counting_encoder).summary  # type: ignore[arg-type]
    table = dataset_table("tydi-sentence", summary)
    assert "en" in [row[0] for row in table.rows]
    assert "sentence: every sentence" in table.notes[0] and "non-English" in table.notes[0]
