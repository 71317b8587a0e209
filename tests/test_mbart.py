"""mBART-50's encoder in hbt equals transformers' MBartModel encoder, with each text's own language code."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hbt.engine.backbones import load_backbone
from hbt.engine.backbones.mbart import MBartEncoderModule, language_code
from hbt.engine.backbones.tiny_real import write_mbart_dir
from hbt.engine.data.registry import load_eval
from hbt.engine.encoding.encode import SentenceTransformerEncoder
from hbt.engine.evaluation.evaluate import evaluate_benchmark

TEXTS = {
    "fi": "Mikä on Suomen pääkaupunki?",
    "ja": "東京大学はいつ設立されましたか？",
    "ar": "ما هي عاصمة مصر؟",
    "en": "The capital of Finland is Helsinki, a city on the Baltic Sea.",
}


@pytest.fixture(scope="module")
def mbart_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_mbart_dir(tmp_path_factory.mktemp("mbart") / "tiny-mbart")


def _reference(folder: Path, lang: str, text: str) -> tuple[list[int], torch.Tensor]:
    """transformers alone: MBart50Tokenizer with src_lang = the text's code, MBartModel's encoder."""
    from transformers import MBart50Tokenizer, MBartModel

    tokenizer = MBart50Tokenizer.from_pretrained(str(folder))
    tokenizer.src_lang = language_code(lang)
    ids = tokenizer(text)["input_ids"]
    model = MBartModel.from_pretrained(str(folder)).eval()
    with torch.no_grad():
        out = model.encoder(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long))
    return ids, out.last_hidden_state[0]


def test_language_codes_are_mbart50s() -> None:
    assert [language_code(x) for x in ("ar", "bn", "fi", "ja", "ko", "ru", "te", "en")] == [
        "ar_AR", "bn_IN", "fi_FI", "ja_XX", "ko_KR", "ru_RU", "te_IN", "en_XX",
    ]  # fmt: skip
    assert language_code("el") is None and language_code("fi_FI") == "fi_FI"


def test_token_embeddings_equal_transformers_encoder_per_language(mbart_dir: Path, tmp_path: Path) -> None:
    model = load_backbone(str(mbart_dir), device="cpu").eval()
    module = model[0]
    assert isinstance(module, MBartEncoderModule)
    items = [{"text": t, "lang": lang} for lang, t in TEXTS.items()]
    features = module.preprocess(items)
    with torch.no_grad():
        tokens = module(dict(features))["token_embeddings"]
    for row, (lang, text) in enumerate(TEXTS.items()):
        ids, expected = _reference(mbart_dir, lang, text)
        n = len(ids)
        assert features["input_ids"][row, :n].tolist() == ids  # [lang code] pieces </s>, as MBart50Tokenizer
        assert ids[0] == module.tokenizer.convert_tokens_to_ids(language_code(lang)) and ids[-1] == 2
        assert features["attention_mask"][row].sum().item() == n
        torch.testing.assert_close(tokens[row, :n], expected, rtol=0, atol=1e-5)
    # saved and reloaded through sentence-transformers' modules.json: the same vectors
    before = model.encode(items, convert_to_numpy=True)
    model.save(str(tmp_path / "saved"))
    again = load_backbone(str(tmp_path / "saved"), device="cpu")
    np.testing.assert_allclose(again.encode(items, convert_to_numpy=True), before, rtol=0, atol=1e-5)


def test_registered_languages_set_the_code_per_text(mbart_dir: Path) -> None:
    module = load_backbone(str(mbart_dir), device="cpu")[0]
    module.set_text_languages({TEXTS["fi"]: "fi", TEXTS["ja"]: "ja"})
    ids = module.preprocess([TEXTS["fi"], TEXTS["ja"], "never registered"])["input_ids"][:, 0].tolist()
    code = module.tokenizer.convert_tokens_to_ids
    assert ids == [code("fi_FI"), code("ja_XX"), code("en_XX")]  # unknown text: the module's src_lang


def _recorder(model: object) -> dict[str, set[str]]:
    """Wrap the mBART module's preprocess: text -> the language codes its encodings started with (position 0)."""
    from collections import defaultdict

    from hbt.engine.backbones.mbart import MBART50_CODES

    module = model[0]  # type: ignore[index]
    code_of = {module.tokenizer.convert_tokens_to_ids(c): c for c in MBART50_CODES.values()}
    seen: dict[str, set[str]] = defaultdict(set)
    original = module.preprocess

    def preprocess(inputs: list[object], prompt: str | None = None, **kwargs: object) -> dict[str, object]:
        out = original(inputs, prompt, **kwargs)
        for item, row in zip(inputs, out["input_ids"], strict=True):
            text = item["text"] if isinstance(item, dict) else item
            seen[str(text)].add(code_of.get(int(row[0]), "?"))
        return out

    module.preprocess = preprocess
    return seen


def _expect(seen: dict[str, set[str]], texts: dict[str, str]) -> None:
    """Every text was encoded only with its own language's mBART-50 code (and was encoded at all)."""
    wrong = {t: seen.get(t) for t, lang in texts.items() if seen.get(t) != {language_code(lang)}}
    assert not wrong, list(wrong.items())[:3]


def _miracl_release(tmp_path: Path) -> Path:
    from tests.miracl_release import write_release

    write_release(tmp_path)
    return tmp_path


@pytest.mark.parametrize("path", ["in-memory", "sharded", "xor-whole-collection"])
def test_xor_paths_encode_each_question_with_its_code_and_passages_as_english(
    mbart_dir: Path, tmp_path: Path, path: str
) -> None:
    model = load_backbone(str(mbart_dir), device="cpu")
    seen = _recorder(model)
    fixtures = Path(__file__).parent / "fixtures" / "data"
    langs = ["ar", "fi", "ja", "te"]
    limit = None if path == "xor-whole-collection" else 1000
    bench = load_eval("xor-retrieve", fixtures, langs, corpus_limit=limit)
    shard = 7 if path != "in-memory" else None
    evaluate_benchmark(bench, SentenceTransformerEncoder(model, "tiny-mbart"), shard_size=shard, shard_dir=tmp_path)
    _expect(seen, {q.text: q.lang for q in bench.queries})
    from hbt.engine.data import xor

    passages = [
        text for _, text, _ in xor.Collection(fixtures / "xor-retrieve" / "enwiki_20190201_w100.tsv").passages()
    ]
    _expect(seen, dict.fromkeys(passages, "en"))


@pytest.mark.parametrize("dataset", ["miracl", "miracl-judged"])
def test_miracl_encodes_queries_and_passages_with_their_language_code(
    mbart_dir: Path, tmp_path: Path, dataset: str
) -> None:
    from hbt.engine.data.benchmark import passage_text

    from tests.miracl_release import CORPUS, TOPICS

    model = load_backbone(str(mbart_dir), device="cpu")
    seen = _recorder(model)
    data = _miracl_release(tmp_path)
    bench = load_eval(dataset, data, ["de", "en"])
    result = evaluate_benchmark(bench, SentenceTransformerEncoder(model, "tiny-mbart"), shard_dir=tmp_path / "s")
    _expect(seen, {text: lang for lang, topics in TOPICS.items() for _, text in topics})
    judged = {d for lang in ("de",) for d in ("3#1", "3#0", "13#0", "7#0", "9#0", "1#0")}
    passages = {
        passage_text(title, text, "title+text"): lang
        for lang, files in CORPUS.items()
        for docs in files
        for docid, title, text in docs
        if dataset == "miracl" or lang == "en" or docid in judged
    }
    _expect(seen, {t: x for t, x in passages.items() if dataset == "miracl" or t in seen})
    if dataset == "miracl":  # the German shards hold what transformers' own encoder gives each passage with de_DE
        from hbt.engine.encoding.corpus_shards import CorpusShards

        assert result.summary.corpus is not None
        shards = CorpusShards.open(result.summary.corpus["de"]["shards"])
        vectors, ids = shards.pool.to_array(), list(shards.iter_ids())
        docs = {docid: passage_text(title, text, "title+text") for docs in CORPUS["de"] for docid, title, text in docs}
        for row in (0, 3, len(ids) - 1):
            np.testing.assert_allclose(vectors[row], _sentence_vector(mbart_dir, "de", docs[ids[row]]), atol=1e-5)


def _sentence_vector(folder: Path, lang: str, text: str) -> np.ndarray:
    """transformers alone: MBart50Tokenizer (src_lang = the language's code) and MBartModel's encoder, mean-pooled
    and L2-normalised (hbt's mbart backbone: encoder + mean pooling + normalised embeddings)."""
    _, states = _reference(folder, lang, text)
    vec = states.mean(dim=0).numpy()
    return vec / np.linalg.norm(vec)


@pytest.mark.parametrize("dataset", ["tydi", "tydi-sentence"])
def test_tydi_encodes_every_text_with_its_language_code(mbart_dir: Path, dataset: str) -> None:
    model = load_backbone(str(mbart_dir), device="cpu")
    seen = _recorder(model)
    bench = load_eval(dataset, Path(__file__).parent / "fixtures" / "data")
    assert not isinstance(bench, (type(None)))
    evaluate_benchmark(bench, SentenceTransformerEncoder(model, "tiny-mbart"))
    _expect(seen, {q.text: q.lang for q in bench.queries})  # type: ignore[union-attr]
    _expect(seen, {c.sentence: c.lang for c in bench.candidates})  # type: ignore[union-attr]


def test_embedding_cache_keys_hold_the_language_the_prefix_and_the_max_length(mbart_dir: Path, tmp_path: Path) -> None:
    """The same text encoded as Finnish then Japanese gets two vectors (each equal to transformers' own encoder
    with that code); a max length or prefix changed after the fingerprint was taken is a new key, not a stale hit."""
    from hbt.engine.encoding.encode import EmbeddingCache, encode_unique

    model = load_backbone(str(mbart_dir), device="cpu")
    encoder = SentenceTransformerEncoder(model, "fixed-fingerprint")
    cache = EmbeddingCache(tmp_path / "embeddings.sqlite")
    text = TEXTS["fi"]
    fi, n_fi = encode_unique(encoder, [text], "query", langs=["fi"], cache=cache)
    ja, n_ja = encode_unique(encoder, [text], "query", langs=["ja"], cache=cache)
    assert n_fi == n_ja == 1
    np.testing.assert_allclose(fi[0], _sentence_vector(mbart_dir, "fi", text), atol=1e-5)
    np.testing.assert_allclose(ja[0], _sentence_vector(mbart_dir, "ja", text), atol=1e-5)
    assert encode_unique(encoder, [text], "query", langs=["fi"], cache=cache)[1] == 0  # a real hit stays a hit
    both, n = encode_unique(encoder, [text, text], "query", langs=["fi", "ja"], cache=cache)
    assert n == 0 and np.allclose(both, np.vstack([fi, ja]))
    model.max_seq_length = 4  # after the fingerprint was taken
    short, n = encode_unique(encoder, [text], "query", langs=["fi"], cache=cache)
    assert n == 1 and not np.allclose(short, fi)
    model.max_seq_length = 512
    model.prompts["query"] = "kysymys: "
    prefixed, n = encode_unique(encoder, [text], "query", langs=["fi"], cache=cache)
    assert n == 1 and not np.allclose(prefixed, fi)


def test_tokenizer_without_language_codes_keeps_its_own_specials() -> None:
    model = load_backbone("tiny-random-mbart", device="cpu")
    ids = model[0].preprocess([{"text": "hello", "lang": "fi"}])["input_ids"][0].tolist()
    assert ids[0] == 0 and ids[-1] == 2  # <s> ... </s>: the tiny tokenizer has no fi_FI token


def test_training_pairs_register_their_languages(mbart_dir: Path) -> None:
    from types import SimpleNamespace

    from hbt.engine.runs.run import register_pair_languages
    from hbt.engine.training.pairs import Pair

    model = load_backbone(str(mbart_dir), device="cpu")
    pairs = [
        Pair("fi", "ja", TEXTS["fi"], TEXTS["ja"], "g1", negative="別の文"),
        Pair("ar", "ar", TEXTS["ar"], "x", "g2"),
    ]
    register_pair_languages(model, SimpleNamespace(pairs=pairs))  # type: ignore[arg-type]
    assert model[0].text_langs == {TEXTS["fi"]: "fi", TEXTS["ja"]: "ja", "別の文": "ja", TEXTS["ar"]: "ar", "x": "ar"}
