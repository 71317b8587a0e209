"""One vocabulary (engine/common/vocabulary.py) and one validation path (`check_config`, used by the CLI, the presets
and the TUI), whose errors carry the offending key; the TUI maps that key to its field, never the message's words."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hbt.engine.cli.main import build_parser, main
from hbt.engine.common import vocabulary as vocab
from hbt.engine.common.errors import ConfigError, UserError
from hbt.engine.common.run_config import RunConfig
from hbt.engine.runs.config import check_config
from hbt.engine.runs.executor import ExecutorSpec, RaySettings, SlurmSettings
from hbt.engine.runs.presets import Preset, apply_overrides, parse_preset
from hbt.engine.training.pairs import Pair, PairTable
from hbt.engine.training.sampler import SAMPLERS, StrategyBatchSampler, make_strategy
from hbt.tui.screens.setup import FIELD_OF_KEY, MORE_SETTINGS, row_for
from hbt.tui.screens.setup import STRATEGIES as SETUP_CHECKBOXES

from tests.test_one_declaration import help_of
from tests.test_tui import set_and_validate, setup_screen

REPO = Path(__file__).resolve().parents[1]

# ---- the vocabulary ------------------------------------------------------------------------------------------------


def test_strategies_are_listed_once_and_every_reader_agrees() -> None:
    assert vocab.STRATEGIES == ("none", "xx", "xy", "hybrid", "xx-mix", "en-en")
    assert vocab.STRATEGIES[1:] == vocab.GRID_STRATEGIES
    # every trained strategy has a sampler, and only those, keyed by the vocabulary's own entries
    assert list(SAMPLERS) == [s for s in vocab.STRATEGY_TABLE if s.grid]
    assert all(cls.spec is strategy for strategy, cls in SAMPLERS.items())
    assert SETUP_CHECKBOXES == vocab.MAIN_STRATEGIES == ("xx", "xy", "hybrid")
    assert f"--strategy {{{','.join(vocab.GRID_STRATEGIES)}}}" in help_of(build_parser(), "train")
    assert vocab.STRATEGY_ORDER == ("none", "en-en", "xx-mix", "xx", "xy", "hybrid")
    assert sorted(["hybrid", "zz", "xx", "none", "aa"], key=vocab.strategy_key) == ["none", "xx", "hybrid", "aa", "zz"]
    assert [vocab.paper_name(s) for s in vocab.STRATEGY_ORDER] == ["zero-shot", "En-En", "X-X", "X-X-mono", "X-Y",
                                                                   "hybrid"]  # fmt: skip
    assert vocab.paper_name("other") == "other"
    assert set(vocab.HYBRID_PARTS) < set(vocab.MAIN_STRATEGIES)


DEVICES = [("auto", True), ("cpu", True), ("cuda", True), ("cuda:3", True), ("mps", True), ("cuda:", False),
           ("gpu", False), ("CPU", False)]  # fmt: skip


@pytest.mark.parametrize(("device", "ok"), DEVICES)
def test_one_device_check(device: str, ok: bool) -> None:
    if ok:
        vocab.check_device(device)
        RunConfig(device=device).validate()
        return
    with pytest.raises(ConfigError, match=r"unknown device .*\(allowed: auto, cpu, cuda, cuda:N, mps\)") as err:
        vocab.check_device(device)
    assert err.value.key == "device"


def test_vocabularies_are_defined_only_in_the_vocabulary_module() -> None:
    """Grep: the literal spellings of the closed lists appear in engine/common/vocabulary.py and nowhere else, and no
    module of engine/ or tui/ spells out a list of three or more strategy names (they are derived from the table)."""
    needles = ['"X-X-mono"', '"En-En"', '"zero-shot"', "cuda(:", '"fp32", "bf16"', '"sentence", "sentence+context"',
               '"onnx-int8", "onnx-fp32"', '"exact", "ivf", "hnsw"', '"train_top_layers", "eval_steps"',
               '"batch", "within"']  # fmt: skip
    name = "|".join(re.escape(s) for s in vocab.STRATEGIES)
    strategy_list = re.compile(rf'[(\[]\s*"(?:{name})"(?:\s*,\s*"(?:{name})"){{2,}}')
    found: dict[str, list[str]] = {n: [] for n in needles}
    lists: list[str] = []
    for folder in ("engine", "tui"):
        for path in sorted((REPO / folder).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            for needle in needles:
                if needle in text:
                    found[needle].append(str(path.relative_to(REPO)))
            lists += [f"{path.relative_to(REPO)}: {m.group(0)}" for m in strategy_list.finditer(text)]
    assert found == {n: ["engine/common/vocabulary.py"] for n in needles}
    assert lists == []


# ---- every error for a known field carries its key -----------------------------------------------------------------

FIELD_ERRORS: list[tuple[dict[str, Any], str, str]] = [
    ({"strategy": "zz"}, "strategy", "unknown strategy 'zz'"),
    ({"device": "gpu"}, "device", "unknown device 'gpu'"),
    ({"precision": "fp8"}, "precision", "unknown precision 'fp8'"),
    ({"text_mode": "para"}, "text_mode", "unknown text mode 'para'"),
    ({"hybrid_mix": "x"}, "hybrid_mix", "unknown hybrid mix 'x'"),
    ({"xx_langs": "x"}, "xx_langs", "unknown xx_langs 'x'"),
    ({"eval_runtime": "trt"}, "eval_runtime", "unknown eval_runtime 'trt'"),
    ({"index": "annoy"}, "index", "unknown index 'annoy'"),
    ({"hybrid_p": "half"}, "hybrid_p", "hybrid_p must be a number in [0, 1] or 'proportional'"),
    ({"hybrid_p": 1.5}, "hybrid_p", "hybrid_p must be in [0, 1], got 1.5"),
    ({"hybrid_p_end": -0.1}, "hybrid_p_end", "hybrid_p_end must be in [0, 1], got -0.1"),
    ({"warmup_ratio": 1.0}, "warmup_ratio", "warmup_ratio must be in [0, 1), got 1.0"),
    ({"batch_size": 1}, "batch_size", "batch_size must be at least 2 for in-batch negatives, got 1"),
    ({"shard_size": 0}, "shard_size", "shard_size must be a positive number of rows, got 0"),
    ({"corpus_limit": -1}, "corpus_limit", "corpus_limit must be 0 or more passages"),
    ({"validation_fraction": 0.7}, "validation_fraction", "validation_fraction must be in (0, 0.5)"),
    ({"early_stopping_patience": 2}, "early_stopping_patience", "needs a validation split"),
    ({"weight_decay": -1.0}, "weight_decay", "weight_decay must be >= 0"),
    ({"steps": None, "epochs": None}, "steps", "give steps or epochs"),
    ({"langs": []}, "langs", "langs has an empty value ([]); leave it out for all languages"),
    ({"train_langs": [" "]}, "train_langs", "train_langs has an empty value"),
    ({"eval_data": []}, "eval_data", "eval_data must name at least one dataset"),
    ({"strategy": "xx", "eval_data": ["mlqa-r"]}, "train_data", "train_data 'mlqa-r' is also an eval dataset"),
    *[
        ({key: 0}, key, f"{key} must be positive, got 0")
        for key in vocab.POSITIVE
        if key not in ("early_stopping_patience", "batch_size")
    ],  # (those two: their own checks come first)
    ({"lr": float("nan")}, "lr", "lr must be positive, got nan"),
]


@pytest.mark.parametrize(("values", "key", "message"), FIELD_ERRORS, ids=[f"{k}-{m[:24]}" for _, k, m in FIELD_ERRORS])
def test_each_field_error_carries_its_key(values: dict[str, Any], key: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        RunConfig(**values).validate()
    assert err.value.key == key and message in str(err.value), (err.value.key, str(err.value))
    assert str(err.value) == f"{key} {err.value.detail}" or err.value.detail == str(err.value)


CHECK_ERRORS: list[tuple[dict[str, Any], str, type[UserError], str]] = [
    ({"data_dir": "/no/such/dir"}, "data_dir", UserError, "does not exist"),
    ({"eval_data": ["zz"]}, "eval_data", ConfigError, "unknown dataset 'zz'"),
    ({"langs": ["zz"]}, "langs", ConfigError, "unknown language 'zz' for xquad-r (allowed: ar, de"),
    ({"strategy": "xx", "train_data": "tydi"}, "train_data", ConfigError, "train_data 'tydi' is not parallel QA"),
    ({"strategy": "xx", "train_langs": ["zz"]}, "train_langs", ConfigError, "unknown language for mlqa-r 'zz'"),
    ({"strategy": "xy", "train_langs": ["de"]}, "train_langs", ConfigError, "strategy xy needs X-Y pairs"),
    ({"strategy": "en-en", "train_langs": ["de"]}, "train_langs", ConfigError, "add en to --train-langs"),
]


@pytest.mark.parametrize(("values", "key", "kind", "message"), CHECK_ERRORS, ids=[c[1] for c in CHECK_ERRORS])
def test_the_one_validation_names_the_key_of_data_checks(
    values: dict[str, Any], key: str, kind: type[UserError], message: str, tmp_path: Path
) -> None:
    config = RunConfig(**{"data_dir": str(tmp_path), **values})
    with pytest.raises(kind) as err:
        check_config(config)
    assert err.value.key == key and message in str(err.value), (err.value.key, str(err.value))


PAIR_RULES = [(name, None) for name in vocab.GRID_STRATEGIES] + [("hybrid", 1.0), ("hybrid", 0.0)]


@pytest.mark.parametrize(("name", "hybrid_p"), PAIR_RULES, ids=[f"{n}-{p}" for n, p in PAIR_RULES])
def test_check_config_and_the_sampler_read_one_pair_rule(name: str, hybrid_p: float | None, tmp_path: Path) -> None:
    """A strategy's pair needs are declared once (vocabulary.Strategy): with German pairs only, `check_config`
    refuses a strategy exactly when its sampler would."""
    p = RunConfig().hybrid_p if hybrid_p is None else hybrid_p
    config = RunConfig(strategy=name, data_dir=str(tmp_path), langs=["de"], train_langs=["de"], hybrid_p=p)
    try:
        check_config(config)
        config_refuses = False
    except ConfigError as exc:
        assert exc.key == "train_langs"
        config_refuses = True
    german = PairTable.from_pairs([Pair("de", "de", f"q{i}", f"a{i}", f"g{i}") for i in range(10)])
    strategy = make_strategy(name, p=p)
    try:
        StrategyBatchSampler(list(range(10)), 4, True, table=german, strategy=strategy)
        sampler_refuses = False
    except ConfigError:
        sampler_refuses = True
    spec = vocab.STRATEGY_OF[name]
    declared = spec.needs_xy(every_batch_xx=hybrid_p == 1) or spec.only_lang not in (None, "de")
    assert config_refuses == sampler_refuses == declared


def test_check_config_accepts_a_valid_config(tmp_path: Path) -> None:
    config = RunConfig(strategy="hybrid", data_dir=str(tmp_path), langs=["de"], train_langs=["de", "en"])
    assert check_config(config) is config


def test_the_sampler_names_the_strategy_key() -> None:
    with pytest.raises(ConfigError, match=r"^unknown strategy 'xz' \(allowed: xx, xy, hybrid, xx-mix, en-en\)$") as e:
        make_strategy("xz")
    assert e.value.key == "strategy"


# ---- presets and flags name the key their own way, and keep it -----------------------------------------------------


def _preset(tmp_path: Path, **run: Any) -> dict[str, Any]:
    preset = {"name": "p", "backbones": ["tiny-random"], "strategies": ["xx", "xy"], "seeds": [0]}
    return {"preset": preset, "run": {"data_dir": str(tmp_path), "train_langs": ["de", "en"], **run}}


@pytest.mark.parametrize(
    ("section", "values", "key", "line"),
    [
        ("run", {"steps": 0}, "steps", "p.toml: [run] steps: must be positive, got 0"),
        ("run", {"device": "gpu"}, "device", "p.toml: [run] device: unknown device 'gpu' (allowed: auto, cpu, cuda"),
        ("run", {"langs": ["zz"]}, "langs", "p.toml: [run] langs: unknown language 'zz' for xquad-r (allowed: ar"),
        ("run", {"train_langs": ["de"]}, "train_langs", "p.toml: [run] train_langs: strategy xy needs X-Y pairs"),
        ("run", {"batch_size": 1}, "batch_size", "p.toml: [run] batch_size: must be at least 2 for in-batch negatives"),
        ("run", {"steps": "3"}, "steps", "p.toml: [run] steps: expected integer or none, got string '3'"),
        ("run", {"data_dir": "/no/such"}, "data_dir", "p.toml: [run] data_dir: data dir /no/such does not exist"),
        ("preset", {"strategies": ["xx", "zz"]}, "strategies", "p.toml: [preset] strategies: unknown strategy 'zz'"),
        ("preset", {"seeds": []}, "seeds", "p.toml: [preset] seeds: must be a non-empty list of integers"),
        ("preset", {"seeds": [0, 0]}, "seeds", "p.toml: [preset] seeds: grid cell 'tiny-random__xx__s0' appears twice"),
        ("preset", {"backbones": ["zz-none"]}, "backbones", "p.toml: [preset] backbones: unknown backbone 'zz-none'"),
    ],
)
def test_preset_errors_keep_the_key(section: str, values: dict[str, Any], key: str, line: str, tmp_path: Path) -> None:
    doc = _preset(tmp_path)
    doc[section].update(values)
    with pytest.raises(UserError) as err:
        parse_preset(doc, "p.toml")
    assert str(err.value).startswith(line) and err.value.key == key, (err.value.key, str(err.value))


def test_flag_overrides_name_the_flag_and_keep_the_key(tmp_path: Path) -> None:
    preset = parse_preset(_preset(tmp_path), "p.toml")
    with pytest.raises(ConfigError) as err:
        apply_overrides(preset, steps=0)
    assert str(err.value) == "--steps: must be positive, got 0" and err.value.key == "steps"
    with pytest.raises(ConfigError) as err:
        apply_overrides(preset, name_flags=False, steps=0)  # the TUI: its own field shows where
    assert str(err.value) == "steps must be positive, got 0" and err.value.key == "steps"
    with pytest.raises(ConfigError) as err:
        apply_overrides(preset, device="tpu")
    assert str(err.value).startswith("--device: unknown device 'tpu'") and err.value.key == "device"


def test_cli_keeps_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["eval", "--data-dir", str(tmp_path), "--device", "gpu", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == ["hbt: unknown device 'gpu' (allowed: auto, cpu, cuda, cuda:N, mps)"], err
    assert not (tmp_path / "o").exists()


def test_the_tui_knows_a_field_for_every_key_it_shows() -> None:
    field = {"backbones", "strategies", "baseline", "hybrid-p", "langs", "train-data", "train-langs", "eval-data",
             "data-dir", "steps", "batch-size", "max-queries", "seeds", "out",
             # where the cells run (ExecutorSpec's keys)
             "executor", "workers", "slurm-backend", "slurm-partition", "slurm-time", "slurm-gpus", "ray-address",
             "ray-cpus", "ray-gpus"}  # fmt: skip
    assert set(FIELD_OF_KEY.values()) == field | {s.field_id for s in MORE_SETTINGS}  # + the generated fields
    declared = {*RunConfig.__dataclass_fields__, *Preset.__dataclass_fields__, *ExecutorSpec.__dataclass_fields__,
                *SlurmSettings.__dataclass_fields__, *RaySettings.__dataclass_fields__}  # fmt: skip
    # "executor" and "slurm_backend": the keys executor.validate names for ExecutorSpec.kind and SlurmSettings.backend
    assert all(k in declared or k in ("out", "executor", "slurm_backend") for k in FIELD_OF_KEY)


# ---- the TUI: the error's key picks the field --------------------------------------------------------------------


async def test_setup_highlights_the_field_of_the_errors_key(tmp_path: Path, data_folder: Path) -> None:
    async with setup_screen(tmp_path, data_folder) as (_, pilot, screen):
        assert screen.validate().preset is not None
        cases = [
            # the message names the strategy, the key names the training languages: the key wins
            ("train-langs", "de", "train-langs", "strategy xy needs X-Y pairs"),
            ("steps", "0", "steps", "steps must be positive, got 0"),  # the engine's check, not the form's
            ("batch-size", "1", "batch-size", "batch_size must be at least 2 for in-batch negatives, got 1"),
            ("hybrid-p", "1.5", "hybrid-p", "hybrid_p must be in [0, 1], got 1.5"),
            ("max-queries", "-2", "max-queries", "max_queries must be positive, got -2"),
        ]
        for wid, bad, field, message in cases:
            good = screen.query_one(f"#{wid}").value  # type: ignore[attr-defined]
            result = await set_and_validate(pilot, screen, wid, bad)
            assert result.preset is None and result.message.startswith(message), (wid, result.message)
            assert result.field == field
            invalid = [row.id for row in screen.query(".-invalid")]
            assert invalid == [row_for(field)], invalid
            assert (await set_and_validate(pilot, screen, wid, good)).preset is not None
            assert not list(screen.query(".-invalid"))
        # without xy (hybrid at p = 1 trains on X-X batches only) one training language is valid
        screen.set_field("strat-xy", False)
        screen.set_field("hybrid-p", "1")
        screen.set_field("train-langs", "de")
        await pilot.pause()
        assert screen.validate().preset is not None, screen.validation.message
