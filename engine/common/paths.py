"""Where hbt keeps caches (converted models, embeddings): $HBT_CACHE_DIR or the user cache dir."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

CACHE_FIX = "set HBT_CACHE_DIR to another folder"  # what a user does when the cache folder cannot be written


def cache_root(override: str | Path | None = None) -> Path:
    """`override` when given, else `$HBT_CACHE_DIR`, else `platformdirs.user_cache_dir("hbt")` (not created)."""
    root = override if override is not None else os.environ.get("HBT_CACHE_DIR") or platformdirs.user_cache_dir("hbt")
    return Path(root).expanduser()
