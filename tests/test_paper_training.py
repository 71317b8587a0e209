"""2408.10536's training settings: hard negatives from the answer's paragraph, early stopping on validation loss,
AdamW weight decay; the paper presets validate and name their sources."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hbt.engine.common.errors import ConfigError
from hbt.engine.common.run_config import RunConfig
from hbt.engine.data.registry import load_lareqa_parts
from hbt.engine.runs.presets import builtin_dir, load_preset
from hbt.engine.runs.run import execute
from hbt.engine.training.pairs import PairTable, build_pairs, split_validation
from hbt.engine.training.sampler import StrategyBatchSampler, make_strategy
from safetensors.torch import load_file

LANGS = ["de", "en", "es"]


def _config(data_dir: Path, strategy: str, **kw) -> RunConfig:
    base = dict(
        backbone="tiny-random", strategy=strategy, data_dir=str(data_dir), eval_data=["xquad-r"], langs=["de", "en"],
        train_langs=LANGS, max_queries=8, max_train_pairs=80, steps=4, batch_size=4, lr=1e-3,
    )  # fmt: skip
    base.update(kw)
    return RunConfig(**base)


@pytest.fixture(scope="module")
def parts(data_dir_module: Path) -> list:
    return load_lareqa_parts("mlqa-r", data_dir_module, LANGS)


@pytest.fixture(scope="module")
def data_dir_module() -> Path:
    from tests.conftest import SHARED_DATA

    if not (SHARED_DATA / "mlqa-r" / "en.json").exists():
        pytest.skip(f"real MLQA-R data not found at {SHARED_DATA}")
    return SHARED_DATA


def test_hard_negative_is_another_sentence_of_the_answers_paragraph(parts: list) -> None:
    pairs = build_pairs(parts, hard_negatives=True)
    plain = build_pairs(parts)
    assert 0.9 * len(plain) < len(pairs) <= len(plain)  # only answers of one-sentence articles lose their pair
    sentences = {p.lang: {c.id: c.sentence for c in p.candidates} for p in parts}
    answer_ids = {(p.lang, q.qid): q.answer_ids for p in parts for q in p.questions}
    same_paragraph = 0
    for pair in pairs[::7]:
        assert pair.negative and pair.negative != pair.answer
        ids = answer_ids[pair.a_lang, pair.group]
        para, article = ids[0].rsplit(":", 1)[0], ids[0].split(":", 2)[1]
        homes = [cid for cid, text in sentences[pair.a_lang].items() if text == pair.negative]
        assert any(h.split(":", 2)[1] == article for h in homes), "negative from another article"
        assert pair.negative not in {sentences[pair.a_lang][a] for a in ids}
        same_paragraph += any(h.rsplit(":", 1)[0] == para for h in homes)
    assert same_paragraph / len(pairs[::7]) > 0.9  # the article fallback is for one-sentence paragraphs
    assert build_pairs(parts, hard_negatives=True) == pairs  # stable


def test_batches_keep_negatives_from_being_false_negatives(parts: list) -> None:
    table = PairTable.from_pairs(build_pairs(parts, hard_negatives=True))
    assert table.has_negatives and (table.n_conflict >= 0).sum() > 0  # some negatives answer another question
    for name in ("xx", "xy", "hybrid"):
        sampler = StrategyBatchSampler(list(range(len(table))), 32, True, table=table, strategy=make_strategy(name))
        for batch in list(sampler):
            texts = np.concatenate([table.q_text[batch], table.a_text[batch], table.n_text[batch]])
            assert len(set(texts.tolist())) == len(texts), "a text twice in a batch (as answer and negative?)"
            answered = set(table.n_conflict[batch].tolist()) - {-1}
            assert not answered & set(table.conflict[batch].tolist()), "a negative answers a question of its batch"


def test_validation_split_holds_out_whole_conflict_sets(parts: list) -> None:
    table = PairTable.from_pairs(build_pairs(parts))
    train, val = split_validation(table, 0.1, seed=0)
    assert len(train) + len(val) == len(table)
    groups = lambda t: {p.group for p in t.pairs}  # noqa: E731
    assert not groups(train) & groups(val)
    answers = lambda t: {p.answer for p in t.pairs}  # noqa: E731
    assert not answers(train) & answers(val)
    assert 0.07 < len(groups(val)) / len(groups(table)) < 0.13
    assert split_validation(table, 0.1, seed=0)[1].pairs == val.pairs


@pytest.mark.slow
def test_early_stopping_keeps_the_best_checkpoint(tmp_path: Path, data_dir_module: Path) -> None:
    """Tiny model, validation loss every 2 steps, patience 1: the saved model is the lowest-loss checkpoint."""
    config = _config(
        data_dir_module, "hybrid", steps=24, max_train_pairs=120, lr=5e-3, validation_fraction=0.2, eval_steps=2,
        early_stopping_patience=1, weight_decay=0.01, hybrid_p=0.5, xx_langs="balanced", langs=["en"],
        checkpoint_steps=2,  # periodic checkpoints stay after the cell completes: the test compares with them
    )  # fmt: skip
    out = tmp_path / "run"
    results = execute(config, out)
    val = results["training"]["validation"]
    curve = val["loss_curve"]
    assert [s for s, _ in curve] == list(range(2, 2 * len(curve) + 1, 2))
    best = min(range(len(curve)), key=lambda i: curve[i][1])
    assert val["best_step"] == curve[best][0] and val["best_loss"] == curve[best][1]
    done = results["training"]["steps"]
    assert val["stopped_early"]  # seeded: the validation loss rises at step 4 (1.3492 -> 1.3703 when measured)
    if val["stopped_early"]:  # stopped after `patience` evaluations without a new minimum
        assert done < 24 and len(curve) - 1 - best == 1 and done == curve[-1][0], val
    else:
        assert done == 24 and len(curve) - 1 - best < 1, val
    # the model written to disk holds the weights of the best checkpoint
    saved = load_file(out / "model" / "model.safetensors")
    ckpt = load_file(out / "checkpoints" / f"checkpoint-{val['best_step']}" / "model.safetensors")
    shared = set(saved) & set(ckpt)
    assert shared and all(torch.equal(saved[k], ckpt[k]) for k in shared)
    assert json.loads((out / "results.json").read_text())["training"]["validation"] == val


def test_hard_negatives_train_on_the_tiny_model(tmp_path: Path, data_dir_module: Path) -> None:
    results = execute(_config(data_dir_module, "xy", hard_negatives=True, save_model=False), tmp_path / "hn")
    t = results["training"]
    assert t["steps"] == 4 and t["pairs"]["hard_negatives"] == t["pairs"]["pairs"] > 0
    assert all(np.isfinite(v) for _, v in t["loss_curve"])


def test_early_stopping_needs_a_validation_split() -> None:
    with pytest.raises(ConfigError, match="needs a validation split"):
        RunConfig(strategy="xx", early_stopping_patience=2).validate()
    with pytest.raises(ConfigError, match=r"validation_fraction must be in \(0, 0.5\)"):
        RunConfig(strategy="xx", validation_fraction=0.7).validate()


@pytest.mark.parametrize("name", ["paper-xlmr", "paper-labse"])
def test_paper_presets_follow_the_paper_and_name_their_sources(name: str) -> None:
    preset = load_preset(name)
    run = preset.run
    assert preset.strategies == ["xx", "xy", "hybrid"]
    assert run.hybrid_p == 0.5 and run.xx_langs == "balanced"
    assert (run.lr, run.batch_size, run.weight_decay) == (3e-5, 100, 0.01)
    assert run.validation_fraction and run.early_stopping_patience and run.hard_negatives
    text = (builtin_dir() / f"{name}.toml").read_text()
    for key in ("hybrid_p", "xx_langs", "lr", "batch_size", "weight_decay", "early_stopping_patience"):
        line = next(line for line in text.splitlines() if line.startswith(f"{key} "))
        assert "2408.10536" in line, f"{key}: no source"
    for key in ("steps", "scale", "max_seq_length", "validation_fraction", "eval_steps"):
        line = next(line for line in text.splitlines() if line.startswith(f"{key} "))
        assert "guess" in line, f"{key} is not from the paper: it must say guess"
