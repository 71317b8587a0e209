from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("HBT_TEST_DATA_DIR", REPO.parent / "shared" / "data"))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HBT_CACHE_DIR", str(REPO / ".hbt-test-cache"))
if os.environ.get("HBT_DATA_DIR"):  # tests change directory: pin a relative data dir to where pytest started
    os.environ["HBT_DATA_DIR"] = str(Path(os.environ["HBT_DATA_DIR"]).resolve())


@pytest.fixture
def data_folder(tmp_path: Path) -> Path:
    """An empty data folder (the TUI tests' --data-dir)."""
    folder = tmp_path / "data"
    folder.mkdir()
    return folder


@pytest.fixture
def data_dir() -> Path:
    if not (SHARED_DATA / "xquad-r" / "en.json").exists():
        pytest.skip(f"real LAReQA data not found at {SHARED_DATA} (set HBT_TEST_DATA_DIR to its folder)")
    return SHARED_DATA


class CountingEncoder:
    """Deterministic pseudo-embeddings (hash of text; words shared across texts share directions).

    Counts every text it is asked to encode, to prove each unique text is encoded exactly once.
    """

    def __init__(self, dim: int = 32, fingerprint: str = "counting") -> None:
        self.dim = dim
        self.fingerprint = fingerprint
        self.calls: list[tuple[str, str]] = []

    def _vec(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float64)
        for tok in text.lower().split() or [""]:
            seed = int.from_bytes(hashlib.blake2b(tok.encode(), digest_size=8).digest(), "little")
            v += np.random.default_rng(seed).standard_normal(self.dim)
        n = np.linalg.norm(v)
        return (v / n if n else v).astype(np.float32)

    def encode(self, texts: Sequence[str], role: str) -> np.ndarray:
        self.calls += [(role, t) for t in texts]
        return np.stack([self._vec(t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)


@pytest.fixture
def counting_encoder() -> CountingEncoder:
    return CountingEncoder()
