"""Per-backbone training defaults (issue 13 item 5): lr / scale left unset come from the registry."""

from __future__ import annotations

from hbt.engine.backbones.registry import BACKBONES, BUNDLED_NAME, GENERIC_TRAIN_DEFAULTS, training_defaults
from hbt.engine.common.run_config import RunConfig
from hbt.engine.training.train import make_loss, with_backbone_defaults


def test_unset_lr_and_scale_take_the_backbones_measured_defaults() -> None:
    bundled = BACKBONES[BUNDLED_NAME].train_defaults
    assert set(bundled) == {"lr", "scale"}  # measured (docs/backbones.md), stated in the registry
    resolved = with_backbone_defaults(RunConfig())
    assert (resolved.lr, resolved.scale) == (bundled["lr"], bundled["scale"])
    assert training_defaults("me5-small-q4") == bundled
    assert training_defaults("tiny-random") == GENERIC_TRAIN_DEFAULTS
    assert training_defaults("no/such-model-x") == GENERIC_TRAIN_DEFAULTS  # a hub id: generic
    explicit = with_backbone_defaults(RunConfig(lr=1e-3, scale=33.0))
    assert (explicit.lr, explicit.scale) == (1e-3, 33.0)
    half = with_backbone_defaults(RunConfig(backbone="tiny-random", scale=50.0))
    assert (half.lr, half.scale) == (GENERIC_TRAIN_DEFAULTS["lr"], 50.0)


def test_loss_uses_the_resolved_scale() -> None:
    from hbt.engine.backbones import load_backbone

    model = load_backbone("tiny-random")
    assert make_loss(model, RunConfig(backbone="tiny-random")).scale == GENERIC_TRAIN_DEFAULTS["scale"]
    assert make_loss(model, RunConfig(backbone="tiny-random", scale=7.0)).scale == 7.0
