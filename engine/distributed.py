"""Which process am I? torchrun and `accelerate launch` both export RANK / WORLD_SIZE / LOCAL_RANK."""

from __future__ import annotations

import os


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main() -> bool:
    """Rank 0 alone writes events, results, models and indexes; the other ranks only train."""
    return rank() == 0
