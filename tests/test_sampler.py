"""Batch composition invariants of each strategy, over many sampled batches, and seeded determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hbt.engine.common.errors import ConfigError
from hbt.engine.data.registry import load_lareqa_parts
from hbt.engine.training.pairs import Pair, PairTable, build_pairs
from hbt.engine.training.sampler import XY_BATCH, BatchKind, StrategyBatchSampler, make_strategy

LANGS = ["ar", "de", "en", "es", "hi", "vi", "zh"]


@pytest.fixture(scope="module")
def table() -> PairTable:
    from tests.conftest import SHARED_DATA

    if not (SHARED_DATA / "mlqa-r" / "en.json").exists():
        pytest.skip(f"real MLQA-R data not found at {SHARED_DATA}")
    return PairTable.from_pairs(build_pairs(load_lareqa_parts("mlqa-r", SHARED_DATA, LANGS)))


def _batches(table: PairTable, name: str, seed: int = 0, epochs: int = 2, batch_size: int = 32, **opts):
    sampler = StrategyBatchSampler(
        list(range(len(table))), batch_size, True, seed=seed, table=table, strategy=make_strategy(name, **opts)
    )
    out = []
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        out += list(sampler)
    return sampler, out


def _common_invariants(table: PairTable, batches: list[list[int]], batch_size: int = 32) -> None:
    for batch in batches:
        assert len(batch) == batch_size
        assert len(set(table.group[batch])) == len(batch), "two pairs of one parallel group in a batch"
        assert len(set(table.conflict[batch])) == len(batch), "two pairs of groups sharing an answer in a batch"
        texts = np.concatenate([table.q_text[batch], table.a_text[batch]])
        assert len(set(texts)) == len(texts), "a text repeated inside a batch"


def test_pairs_cover_xx_and_xy(table: PairTable) -> None:
    c = table.counts()
    assert c["groups"] == 1148  # every MLQA-R question id (en has them all)
    assert c["xx"] == 4199  # one X-X pair per question per language
    assert c["xy"] > c["xx"]
    for p in table.pairs[:200]:
        assert isinstance(p, Pair) and p.question and p.answer


def test_groups_sharing_an_answer_sentence_never_meet_in_a_batch(table: PairTable) -> None:
    """Real MLQA-R: 16 question groups share an answer sentence with another group (8 conflict sets); found here
    independently, from the answers' candidate ids, and checked against every strategy's batches."""
    from tests.conftest import SHARED_DATA

    owners: dict[str, set[str]] = {}
    for part in load_lareqa_parts("mlqa-r", SHARED_DATA, LANGS):
        for q in part.questions:
            owners.setdefault(q.answer_ids[0], set()).add(q.qid)
    shared = [g for g in owners.values() if len(g) > 1]
    assert len(shared) == 8 and len(set().union(*shared)) == 16
    code = {p.group: int(table.group[i]) for i, p in enumerate(table.pairs)}
    clash = {frozenset(code[g] for g in s) for s in shared}
    assert table.counts()["conflict_sets"] == 1148 - 8
    for name in ("xx", "xy", "hybrid"):
        _, batches = _batches(table, name, epochs=3)
        _common_invariants(table, batches)
        for batch in batches:
            groups = set(table.group[batch].tolist())
            assert not any(len(s & groups) > 1 for s in clash), f"{name}: a shared answer is a false negative"


def test_xx_batches_are_monolingual(table: PairTable) -> None:
    sampler, batches = _batches(table, "xx")
    _common_invariants(table, batches)
    for batch in batches:
        assert (table.q_lang[batch] == table.a_lang[batch]).all()
        assert len(set(table.q_lang[batch])) == 1, "an X-X batch mixes languages"
    assert sampler.composition() == {"xx": len(batches), "xy": 0, "mix": 0}


def test_xx_languages_drawn_in_proportion_or_balanced(table: PairTable) -> None:
    _, prop = _batches(table, "xx", epochs=4)
    en = table.langs.index("en")
    share_en = np.mean([table.q_lang[b[0]] == en for b in prop])
    expected = (table.is_xx & (table.q_lang == en)).sum() / table.is_xx.sum()  # 1148 / 4199
    assert abs(share_en - expected) < 3 * math.sqrt(expected * (1 - expected) / len(prop))
    sampler = StrategyBatchSampler(
        list(range(len(table))), 32, True, table=table, strategy=make_strategy("xx"), xx_langs="balanced"
    )
    balanced = [b for epoch in range(4) for b in (sampler.set_epoch(epoch), list(sampler))[1]]
    share_en = np.mean([table.q_lang[b[0]] == en for b in balanced])
    assert abs(share_en - 1 / 7) < 3 * math.sqrt((1 / 7) * (6 / 7) / len(balanced))


def test_xy_batches_are_cross_lingual(table: PairTable) -> None:
    sampler, batches = _batches(table, "xy")
    _common_invariants(table, batches)
    for batch in batches:
        assert (table.q_lang[batch] != table.a_lang[batch]).all()
    assert sampler.composition()["xy"] == len(batches)


@pytest.mark.parametrize("p", [0.5, 0.2, "proportional"])
def test_hybrid_share_within_three_standard_errors(table: PairTable, p: float | str) -> None:
    sampler, batches = _batches(table, "hybrid", epochs=3, p=p)
    _common_invariants(table, batches)
    target = table.is_xx.mean() if p == "proportional" else float(p)
    kinds = []
    for batch in batches:
        xx = table.q_lang[batch] == table.a_lang[batch]
        assert xx.all() or (~xx).all(), "a hybrid batch (mix=batch) must be wholly X-X or wholly X-Y"
        if xx.all():
            assert len(set(table.q_lang[batch])) == 1
        kinds.append(bool(xx.all()))
    share = np.mean(kinds)
    se = math.sqrt(target * (1 - target) / len(kinds))
    assert abs(share - target) <= 3 * se, (share, target, se)
    assert sampler.composition()["xx"] == sum(kinds)


def test_hybrid_within_batch_mixes(table: PairTable) -> None:
    sampler, batches = _batches(table, "hybrid", epochs=1, p=0.5, mix="within")
    _common_invariants(table, batches)
    shares = [np.mean(table.q_lang[b] == table.a_lang[b]) for b in batches]
    assert abs(np.mean(shares) - 0.5) < 0.05
    assert any(0 < s < 1 for s in shares)
    # each batch is recorded as a mixed BatchKind holding the X-X pairs it got; the composition counts them as "mix"
    assert sampler.history == [BatchKind.mixed(int(table.is_xx[b].sum())) for b in batches]
    assert sampler.composition() == {"xx": 0, "xy": 0, "mix": len(batches)}


def test_the_sampler_records_each_batch_kind_as_drawn(table: PairTable) -> None:
    sampler, batches = _batches(table, "hybrid", epochs=1, p=0.5)
    langs = {table.langs[int(table.q_lang[b[0]])] for b in batches}
    assert {k.pool for k in sampler.history} == {"xx", "xy"}
    for kind, batch in zip(sampler.history, batches, strict=True):
        xx = bool(table.is_xx[batch].all())
        assert kind == (BatchKind("xx", lang=table.langs[int(table.q_lang[batch[0]])]) if xx else XY_BATCH)
    assert len(langs) > 1


def test_hybrid_schedule_moves_p(table: PairTable) -> None:
    sampler = StrategyBatchSampler(
        list(range(len(table))), 32, True, table=table,
        strategy=make_strategy("hybrid", p=1.0, p_end=0.0), total_batches=400,
    )  # fmt: skip
    batches = list(sampler)[:400]
    xx = [bool((table.q_lang[b] == table.a_lang[b]).all()) for b in batches]
    assert np.mean(xx[:80]) > 0.75 and np.mean(xx[-80:]) < 0.25


@pytest.mark.parametrize("name", ["xx", "xy", "hybrid"])
def test_same_seed_same_batches(table: PairTable, name: str) -> None:
    _, a = _batches(table, name, seed=7)
    _, b = _batches(table, name, seed=7)
    _, c = _batches(table, name, seed=8)
    assert a == b
    assert a != c


def test_monolingual_training_data_cannot_feed_xy() -> None:
    t = PairTable.from_pairs([Pair("en", "en", f"q{i}", f"a{i}", f"g{i}") for i in range(10)])
    with pytest.raises(ConfigError, match="X-Y pairs"):
        StrategyBatchSampler(list(range(10)), 4, True, table=t, strategy=make_strategy("xy"))


def test_unknown_strategy() -> None:
    with pytest.raises(ConfigError, match=r"unknown strategy 'xz' \(allowed: xx, xy, hybrid, xx-mix, en-en\)"):
        make_strategy("xz")


def test_group_sample_is_seeded_and_keeps_whole_groups() -> None:
    from tests.conftest import SHARED_DATA

    if not (SHARED_DATA / "mlqa-r").exists():
        pytest.skip("no MLQA-R data")
    parts = load_lareqa_parts("mlqa-r", SHARED_DATA, ["de", "en"])
    a = build_pairs(parts, max_groups=30, seed=1)
    assert a == build_pairs(parts, max_groups=30, seed=1)
    assert len({p.group for p in a}) == 30


def test_lareqa_xx_batches_mix_languages_of_same_language_pairs(table: PairTable) -> None:
    """LAReQA's X-X: every pair has question and answer in one language, but a batch holds several languages."""
    sampler, batches = _batches(table, "xx-mix")
    _common_invariants(table, batches)
    n_langs = []
    for batch in batches:
        assert (table.q_lang[batch] == table.a_lang[batch]).all()
        n_langs.append(len(set(table.q_lang[batch].tolist())))
    assert np.mean(n_langs) > 4  # 32 pairs drawn over 7 languages (en holds 27 % of the X-X pairs)
    assert sampler.composition() == {"xx": 0, "xy": 0, "mix": 0, "xx-mix": len(batches)}


def test_en_en_trains_on_english_pairs_only(table: PairTable) -> None:
    _, batches = _batches(table, "en-en")
    _common_invariants(table, batches)
    en = table.langs.index("en")
    assert all((table.q_lang[b] == en).all() and (table.a_lang[b] == en).all() for b in batches)
    no_en = PairTable.from_pairs([p for p in table.pairs if "en" not in (p.q_lang, p.a_lang)])
    with pytest.raises(ConfigError, match="en-en needs en pairs"):
        StrategyBatchSampler(list(range(len(no_en))), 8, True, table=no_en, strategy=make_strategy("en-en"))
