"""The checks of a run's settings against the datasets and the machine (`check_config`); the settings themselves are
`common.run_config.RunConfig`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ..common.errors import ConfigError, UserError
from ..common.run_config import RunConfig
from ..common.vocabulary import BASELINE, STRATEGY_OF, bad_value
from ..data.registry import DATASETS, check_eval_langs, check_langs, resolve_data_dir, spec
from ..training.distributed import check_available


def check_config(config: RunConfig) -> RunConfig:
    """The one validation of a run's settings: everything that can be checked before loading a model (fail fast, one
    line). The CLI (`eval`, `train`), the presets (every grid strategy, so `run` and the TUI's Setup screen), the grid
    runner and `execute` all call it. Every error carries the offending field as `key`."""

    config.validate()

    check_available(config.device)
    with _about("data_dir"):
        resolve_data_dir(config.data_dir)
    with _about("eval_data"):
        for name in config.eval_data:
            spec(name)
    check_eval_langs(config.eval_data, config.langs)
    if config.strategy != BASELINE:
        with _about("train_data"):
            if not spec(config.train_data).parallel:
                parallel = ", ".join(sorted(name for name, s in DATASETS.items() if s.parallel))
                raise bad_value("train_data", f"{config.train_data!r} is not parallel QA (allowed: {parallel})")
        with _about("train_langs"):
            train_langs = check_langs(config.train_data, config.train_langs)
        strategy = STRATEGY_OF[config.strategy]  # its pair rules, as the sampler reads them
        if strategy.needs_xy(every_batch_xx=config.hybrid_p == 1) and len(train_langs) < 2:
            raise ConfigError(
                f"strategy {config.strategy} needs X-Y pairs, so at least two training languages "
                f"(got {','.join(train_langs)}): add some with --train-langs",
                key="train_langs",
            )
        if strategy.only_lang is not None and strategy.only_lang not in train_langs:
            got = ",".join(train_langs)
            raise ConfigError(
                f"strategy {config.strategy} trains on {strategy.only_lang_name} pairs: add {strategy.only_lang} to "
                f"--train-langs (got {got})",
                key="train_langs",
            )
    return config


@contextmanager
def _about(key: str) -> Iterator[None]:
    """Attach `key` to a UserError raised inside that names no key of its own (a registry or file check)."""
    try:
        yield
    except UserError as exc:
        if exc.key is None:
            exc.key = key
        raise
