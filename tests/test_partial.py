"""Top-N partial fine-tuning with the frozen bottom's outputs cached per text (issue 13, item 1 and 2)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from hbt.engine.backbones import load_backbone
from hbt.engine.backbones.frozen_cache import SHARED, FrozenCache
from hbt.engine.backbones.partial import PartialTransformer, disable_partial, enable_partial, partial_state
from hbt.engine.common.errors import ConfigError
from hbt.engine.common.run_config import RunConfig
from hbt.engine.runs.run import build_training_table, execute
from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

TEXTS = ["query: where is the river", "passage: the river runs through the old town of Köln",
         "query: wer schrieb das Buch?", "passage: Das Buch schrieb sie 1921 in Berlin.",
         "query: 谁写了这本书", "passage: 这本书是她写的。"]  # fmt: skip


def _features(model, texts=TEXTS):
    return dict(model.preprocess(texts))


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
@pytest.mark.parametrize("arch", ["tiny-random", "tiny-random-xlmr"])
def test_partial_forward_equals_the_models_own_forward(arch: str, attention: str) -> None:
    """Bottom (embeddings + layers, mask from the public create_bidirectional_mask) + top == the HF model's forward,
    with either attention implementation (eager takes an additive float mask, sdpa a boolean one or none)."""
    model = load_backbone(arch).eval()
    feats = _features(model)
    hf = model[0].auto_model
    hf.set_attn_implementation(attention)
    with torch.no_grad():
        want = hf(input_ids=feats["input_ids"], attention_mask=feats["attention_mask"]).last_hidden_state
    mask = feats["attention_mask"].bool()
    for n_top in (1, 2):
        for cache in (None, FrozenCache()):
            enable_partial(model, n_top, cache=cache)
            with torch.no_grad():
                got = model[0](dict(feats))["token_embeddings"]
            torch.testing.assert_close(got[mask], want[mask], rtol=1e-5, atol=1e-5)
    disable_partial(model)
    assert type(model[0]).__name__ == "Transformer"


def _loss_and_grads(model, cache) -> tuple[float, dict[str, torch.Tensor]]:
    enable_partial(model, 1, cache=cache)
    model.train()
    model.zero_grad()
    loss_fn = MultipleNegativesRankingLoss(model, scale=20.0)
    anchors = _features(model, TEXTS[0::2])
    positives = _features(model, TEXTS[1::2])
    torch.manual_seed(0)  # dropout in the (training) top layers draws the same masks in both paths
    loss = loss_fn([anchors, positives], labels=None)
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    return float(loss.detach()), grads


def test_cached_path_gives_the_uncached_loss_and_gradients() -> None:
    model = load_backbone("tiny-random")
    cache = FrozenCache()
    loss_plain, grads_plain = _loss_and_grads(model, None)
    loss_fill, grads_fill = _loss_and_grads(model, cache)  # first pass fills the cache
    loss_hit, grads_hit = _loss_and_grads(model, cache)  # second pass serves every text from it
    assert cache.stats.misses == len(TEXTS) and cache.stats.hits == len(TEXTS) and len(cache) == len(TEXTS)
    assert grads_plain and all(".layer.1." in n for n in grads_plain)  # only the top layer trains
    assert not any(".layer.0." in n or "embeddings" in n for n in grads_plain)
    for loss, grads in ((loss_fill, grads_fill), (loss_hit, grads_hit)):
        assert loss == pytest.approx(loss_plain, rel=1e-6, abs=1e-6)
        assert grads.keys() == grads_plain.keys()
        for name, grad in grads.items():
            torch.testing.assert_close(grad, grads_plain[name], rtol=1e-5, atol=1e-6)
    assert all(p.requires_grad is False for p in model[0].auto_model.encoder.layer[0].parameters())


def test_cache_invalidated_when_the_frozen_part_changes() -> None:
    model = load_backbone("tiny-random").eval()
    cache = FrozenCache()
    module = enable_partial(model, 1, cache=cache)
    feats = _features(model)
    mask = feats["attention_mask"].bool()
    with torch.no_grad():
        before = model[0](dict(feats))["token_embeddings"]
    fp_before = module.frozen_fingerprint()
    with torch.no_grad():  # edit a frozen weight in place (as a loaded state dict would)
        module.auto_model.encoder.layer[0].output.dense.weight.mul_(1.5)
    fp_after = module.frozen_fingerprint()
    assert fp_after != fp_before
    with torch.no_grad():
        after = model[0](dict(feats))["token_embeddings"]
        want = module.auto_model(input_ids=feats["input_ids"], attention_mask=feats["attention_mask"])
    assert not torch.allclose(after[mask], before[mask])  # not served from the stale entries
    torch.testing.assert_close(after[mask], want.last_hidden_state[mask], rtol=1e-5, atol=1e-5)
    assert cache.entries(fp_before) == len(TEXTS) and cache.entries(fp_after) == len(TEXTS)
    # changing the split point is another frozen part too
    enable_partial(model, 2, cache=cache)
    assert module.frozen_fingerprint() not in (fp_before, fp_after)
    # a top-layer change does not touch the frozen part's key
    enable_partial(model, 1, cache=cache)
    with torch.no_grad():
        module.auto_model.encoder.layer[1].output.dense.weight.mul_(2.0)
    assert module.frozen_fingerprint() == fp_after


def test_cache_is_bounded_by_bytes() -> None:
    cache = FrozenCache(max_bytes=3 * 4 * 8)
    for i in range(5):
        cache.put("fp", str(i), torch.zeros(1, 8))
    assert len(cache) == 3 and cache.nbytes == 3 * 32 and cache.stats.evictions == 2
    assert cache.get("fp", "0") is None and cache.get("fp", "4") is not None


def test_rejects_bad_layer_counts() -> None:
    model = load_backbone("tiny-random")
    with pytest.raises(ConfigError, match="between 1 and 2"):
        enable_partial(model, 3)
    with pytest.raises(ConfigError, match="train_top_layers must be positive"):
        RunConfig(train_top_layers=0).validate()


def test_grid_cells_share_the_frozen_outputs(tmp_path: Path, data_dir: Path, monkeypatch) -> None:
    """Training moves only the top layer; the saved model is a plain sentence-transformers folder; a second cell
    evaluates with the bottom outputs of the evaluation texts that the first computed (cache hits, no misses)."""
    monkeypatch.setenv("HBT_CACHE_DIR", str(tmp_path / "cache"))  # no baseline embeddings cached yet
    SHARED.clear()
    base = RunConfig(
        backbone="tiny-random", strategy="xx", data_dir=str(data_dir), eval_data=["xquad-r"], langs=["de", "en"],
        train_langs=["de", "en"], max_queries=6, max_train_pairs=30, steps=3, batch_size=4, lr=1e-2,
        train_top_layers=1,
    )  # fmt: skip
    baseline = execute(replace(base, strategy="none"), tmp_path / "base")
    filled = len(SHARED)
    assert filled > 0  # the untrained baseline computed the evaluation texts' bottom outputs
    misses = SHARED.stats.misses
    trained = execute(base, tmp_path / "xx")
    assert trained["training"]["steps"] == 3
    saved = json.loads((tmp_path / "xx" / "model" / "modules.json").read_text())
    assert saved[0]["type"].endswith("base.modules.transformer.Transformer")
    reloaded = load_backbone(str(tmp_path / "xx" / "model"))
    fresh = load_backbone("tiny-random")
    layers_new, layers_old = reloaded[0].auto_model.encoder.layer, fresh[0].auto_model.encoder.layer
    for a, b in zip(layers_new[0].parameters(), layers_old[0].parameters(), strict=True):
        assert torch.equal(a, b)  # the frozen bottom did not move
    top = zip(layers_new[1].parameters(), layers_old[1].parameters(), strict=True)
    assert any(not torch.equal(a, b) for a, b in top)
    # the trained cell's evaluation texts all came from the cache: only training texts were new
    n_eval = baseline["datasets"]["xquad-r"]["encoded"]
    table = build_training_table(base)
    n_train = len({p.question for p in table.pairs}) + len({p.answer for p in table.pairs})
    assert 0 < SHARED.stats.misses - misses <= n_train  # computed once, before training (warm)
    assert SHARED.stats.hits >= n_eval["queries"] + n_eval["candidates"]
    assert partial_state(reloaded) is None and isinstance(fresh[0], PartialTransformer) is False
