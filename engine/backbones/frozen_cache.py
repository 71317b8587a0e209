"""A bounded in-memory store of a frozen bottom's outputs (token hidden states), one entry per unique text.

Keys are (fingerprint of the frozen part, digest of the text's token ids): a different frozen part (any weight of
the embeddings or bottom layers changed, another split point) never sees another part's entries. Entries are the
unpadded [tokens, hidden] float32 states. The store is process-wide (`SHARED`), so the cells of one grid that share
a frozen bottom share its outputs: training texts seen by an earlier cell and evaluation texts encoded by the
baseline are not recomputed. Least recently used entries are dropped beyond `max_bytes`
(HBT_FROZEN_CACHE_MB, default 2048). With a disk tier attached (`frozen_disk`: worker processes), entries missing
here are looked up in the cache folder, where other processes' cells left them, before they are computed.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from ..common.paths import cache_root
from .frozen_disk import FrozenDisk, disk_tier_wanted

DEFAULT_MB = 2048


def default_max_bytes() -> int:
    try:
        mb = float(os.environ.get("HBT_FROZEN_CACHE_MB", DEFAULT_MB))
    except ValueError:
        mb = DEFAULT_MB
    return int(max(mb, 0) * 2**20)


def token_key(ids: Any, types: Any = None) -> str:
    """Digest of one text's (unpadded) token ids, and token type ids when the tokenizer gives them."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(ids.detach().to("cpu", copy=False).numpy().astype("int64").tobytes())
    if types is not None:
        digest.update(b"\0" + types.detach().to("cpu", copy=False).numpy().astype("int64").tobytes())
    return digest.hexdigest()


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    evictions: int = 0
    compute_s: float = 0.0  # seconds spent computing the frozen part for misses
    computed: int = 0  # rows computed here (misses not found on disk)
    disk_hits: int = 0  # rows read from the disk tier

    def to_dict(self) -> dict[str, float]:
        return {"hits": self.hits, "misses": self.misses, "evictions": self.evictions,
                "compute_s": round(self.compute_s, 3), "computed": self.computed,
                "disk_hits": self.disk_hits}  # fmt: skip


class FrozenCache:
    """LRU map (fingerprint, token key) -> CPU tensor [tokens, hidden], bounded by bytes."""

    def __init__(self, max_bytes: int | None = None) -> None:
        self.max_bytes = default_max_bytes() if max_bytes is None else max_bytes
        self._items: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._lock = threading.Lock()
        self.nbytes = 0
        self.stats = CacheStats()
        self.disk: FrozenDisk | None = None

    def __len__(self) -> int:
        return len(self._items)

    def get(self, fingerprint: str, key: str) -> Any | None:
        with self._lock:
            value = self._items.get((fingerprint, key))
            if value is None:
                self.stats.misses += 1
                return None
            self._items.move_to_end((fingerprint, key))
            self.stats.hits += 1
            return value

    def put(self, fingerprint: str, key: str, value: Any) -> None:
        size = value.element_size() * value.nelement()
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop((fingerprint, key), None)
            if old is not None:
                self.nbytes -= old.element_size() * old.nelement()
            self._items[(fingerprint, key)] = value
            self.nbytes += size
            while self.nbytes > self.max_bytes and self._items:
                _, dropped = self._items.popitem(last=False)
                self.nbytes -= dropped.element_size() * dropped.nelement()
                self.stats.evictions += 1

    def entries(self, fingerprint: str) -> int:
        with self._lock:
            return sum(1 for fp, _ in self._items if fp == fingerprint)

    def rows(self, fingerprint: str) -> dict[str, Any]:
        """token key -> entry, for one frozen part (what is held now)."""
        with self._lock:
            return {key: value for (fp, key), value in self._items.items() if fp == fingerprint}

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.nbytes = 0
            self.stats = CacheStats()


SHARED = FrozenCache()


def share_through_disk(default: bool) -> FrozenDisk | None:
    """Attach the disk tier ($HBT_FROZEN_DIR, default `<cache>/frozen`) to the process-wide store when wanted
    (`disk_tier_wanted`: worker processes pass True, the local grid False); the tier attached, or None."""
    if disk_tier_wanted(default) and SHARED.disk is None:
        SHARED.disk = FrozenDisk(os.environ.get("HBT_FROZEN_DIR") or cache_root() / "frozen")
    return SHARED.disk
