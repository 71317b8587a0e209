"""The frozen bottom's outputs on disk, shared by processes: the cells of a grid run as worker processes or jobs.

A `FrozenCache` lives in one process; a cell run as its own process (`--executor processes|slurm|ray`, torchrun
ranks) would compute the bottom of every training and evaluation text again. `FrozenDisk` keeps them on disk
(`$HBT_FROZEN_DIR`, default `<HBT_CACHE_DIR>/frozen`; one folder per frozen part), one safetensors shard per batch:

- a shard's name is the digest of its rows' keys, so two processes computing the same batch (the same texts, cut
  the same way) name the same shard; its rows are [tokens, hidden] float32, exactly as computed;
- a batch is computed under a claim (a POSIX flock on `<shard>.lock`): a second process waits for the first and
  then reads its shard, or, warming (`wait=False`), moves on to another batch, so two workers warming the same
  texts split them; the lock of a process that died is released by the kernel;
- writes are atomic (temp file, fsync, rename); a reader skips shards removed under it (they are recomputed);
- the folder is bounded (HBT_FROZEN_DISK_MB, default 8192): beyond it the oldest shards are removed.

Whether a process uses it: HBT_FROZEN_CACHE_DISK=1 / 0 forces it on / off; unset, worker processes use it and the
local executor (which shares the bottom in memory) does not.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save

from ..common.errors import OutputError
from ..common.io import atomic_open, ensure_dir

FORMAT = "hbt-frozen-v1"
DEFAULT_DISK_MB = 8192
SUFFIX = ".safetensors"


def disk_tier_wanted(default: bool) -> bool:
    """HBT_FROZEN_CACHE_DISK=1/0 when set, else `default` (True in worker processes, False in the local grid)."""
    value = os.environ.get("HBT_FROZEN_CACHE_DISK", "").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    return default


def default_disk_bytes() -> int:
    try:
        mb = float(os.environ.get("HBT_FROZEN_DISK_MB", DEFAULT_DISK_MB))
    except ValueError:
        mb = DEFAULT_DISK_MB
    return int(max(mb, 0) * 2**20)


def shard_name(keys: list[str]) -> str:
    """The shard of a batch: a digest of its rows' keys, in order."""
    return hashlib.blake2b("\n".join(keys).encode(), digest_size=16).hexdigest()


class FrozenDisk:
    """(fingerprint, token key) -> [tokens, hidden] tensor, in safetensors shards under `root`."""

    def __init__(self, root: str | Path, max_bytes: int | None = None) -> None:
        self.root = Path(root)
        self.max_bytes = default_disk_bytes() if max_bytes is None else max_bytes
        self.error = ""  # set when a write failed: the tier then only reads (it is only a cache)
        self._index: dict[tuple[str, str], tuple[Path, int, int]] = {}  # -> (shard, first row, tokens)
        self._seen: set[Path] = set()
        self._lock = threading.Lock()

    def folder(self, fingerprint: str) -> Path:
        return self.root / hashlib.blake2b(fingerprint.encode(), digest_size=16).hexdigest()

    # -- reading -----------------------------------------------------------------------------------------------
    def _refresh(self, fingerprint: str) -> None:
        """Index the shards of `fingerprint` written since the last look (their headers only)."""
        folder = self.folder(fingerprint)
        try:
            names = [n for n in os.listdir(folder) if n.endswith(SUFFIX)]
        except OSError:  # not made yet, or unreadable: nothing to read
            return
        for name in names:
            path = folder / name
            if path in self._seen:
                continue
            try:
                with safe_open(str(path), framework="pt") as shard:
                    meta = shard.metadata() or {}
                keys, lengths = json.loads(meta["keys"]), json.loads(meta["lengths"])
            except (OSError, ValueError, KeyError, RuntimeError, SafetensorError):
                continue  # removed meanwhile, or not ours: skipped (its rows are computed again)
            if meta.get("format") != FORMAT or meta.get("fingerprint") != fingerprint or len(keys) != len(lengths):
                continue
            self._seen.add(path)
            start = 0
            for key, n in zip(keys, lengths, strict=True):
                self._index.setdefault((fingerprint, str(key)), (path, start, int(n)))
                start += int(n)

    def read(self, fingerprint: str, keys: list[str]) -> dict[str, Any]:
        """The rows of `keys` found on disk (a key missing, or whose shard was removed, is left out)."""
        with self._lock:
            if any((fingerprint, k) not in self._index for k in keys):
                self._refresh(fingerprint)
            by_shard: dict[Path, list[tuple[str, int, int]]] = {}
            for key in keys:
                hit = self._index.get((fingerprint, key))
                if hit is not None:
                    by_shard.setdefault(hit[0], []).append((key, hit[1], hit[2]))
            found: dict[str, Any] = {}
            for path, rows in by_shard.items():
                try:
                    with safe_open(str(path), framework="pt") as shard:
                        states = shard.get_slice("states")
                        for key, start, n in rows:
                            found[key] = states[start : start + n].clone()
                except (OSError, RuntimeError, ValueError, SafetensorError):  # removed (another's bound) or damaged
                    self._seen.discard(path)
                    for key, _, _ in rows:
                        self._index.pop((fingerprint, key), None)
            return found

    # -- computing and writing ---------------------------------------------------------------------------------
    @contextlib.contextmanager
    def claim(self, fingerprint: str, name: str, wait: bool = True) -> Iterator[bool]:
        """Hold the claim on computing shard `name` (yields True), waiting for another holder when `wait`; without
        `wait`, yields False at once when another process holds it. Yields True, unlocked, where flock is missing."""
        try:
            # (POSIX only)
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            yield True
            return
        try:
            path = ensure_dir(self.folder(fingerprint)) / f"{name}.lock"
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except (OSError, OutputError) as exc:  # an unwritable cache folder: the tier stops writing, the run goes on
            self.error = self.error or str(exc)
            yield True
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            except OSError:  # no flock on this file system: compute without a claim
                yield True
                return
            try:
                yield True
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(path)  # a waiter re-reads the shard after it gets the (old) lock
        finally:
            os.close(fd)

    def write(self, fingerprint: str, name: str, keys: list[str], rows: list[Any]) -> None:
        """Store one computed batch as shard `name` (atomic); a failed write turns the tier read-only."""
        if self.error or not keys:
            return
        meta = {"format": FORMAT, "fingerprint": fingerprint, "keys": json.dumps(keys),
                "lengths": json.dumps([int(r.shape[0]) for r in rows])}  # fmt: skip
        states = np.ascontiguousarray(np.concatenate([r.float().numpy() for r in rows]), dtype=np.float32)
        blob = save({"states": states}, metadata=meta)
        path = self.folder(fingerprint) / f"{name}{SUFFIX}"
        try:
            with atomic_open(path, "wb", encoding=None) as out:
                out.write(blob)
        except OutputError as exc:  # a full disk, a read-only folder: only a cache, the run goes on
            self.error = str(exc)
            return
        self._bound()

    def _bound(self) -> None:
        """Remove the oldest shards while the folder holds more than `max_bytes`."""
        shards: list[tuple[float, int, Path]] = []
        with contextlib.suppress(OSError):
            for folder in os.scandir(self.root):
                if not folder.is_dir():
                    continue
                for entry in os.scandir(folder.path):
                    if entry.name.endswith(SUFFIX):
                        with contextlib.suppress(OSError):
                            info = entry.stat()
                            shards.append((info.st_mtime, info.st_size, Path(entry.path)))
        total = sum(size for _, size, _ in shards)
        for _, size, path in sorted(shards):
            if total <= self.max_bytes:
                break
            with contextlib.suppress(OSError):
                path.unlink()
                total -= size

    def nbytes(self) -> int:
        total = 0
        with contextlib.suppress(OSError):
            for folder in os.scandir(self.root):
                if folder.is_dir():
                    total += sum(e.stat().st_size for e in os.scandir(folder.path) if e.name.endswith(SUFFIX))
        return total
