"""Where hbt keeps caches (converted models, embeddings): $HBT_CACHE_DIR or the user cache dir."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def cache_dir() -> Path:
    root = os.environ.get("HBT_CACHE_DIR") or platformdirs.user_cache_dir("hbt")
    path = Path(root).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path
