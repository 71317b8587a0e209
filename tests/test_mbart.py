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


def test_evaluation_tags_queries_and_passages_with_their_languages(mbart_dir: Path) -> None:
    model = load_backbone(str(mbart_dir), device="cpu")
    bench = load_eval("xor-retrieve", Path(__file__).parent / "fixtures" / "data", ["fi", "te"], corpus_limit=3)
    evaluate_benchmark(bench, SentenceTransformerEncoder(model, "tiny-mbart"))
    langs = model[0].text_langs
    assert all(langs[q.text] == q.lang for q in bench.queries) and {langs[c.sentence] for c in bench.candidates} == {
        "en"
    }
    first = model[0].preprocess([bench.queries[0].text])["input_ids"][0, 0].item()
    assert first == model[0].tokenizer.convert_tokens_to_ids(language_code(bench.queries[0].lang))


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
