"""Passage ids must be unique in a streamed corpus (MIRACL's docs-*.jsonl.gz, XOR-Retrieve's TSV), which can be far
larger than memory (MIRACL en: 32.9M passages): a set of the ids would not fit.

`IdTally` keeps an 8-byte hash of each id (8 bytes a passage: 263 MB for MIRACL en), and at the end of the stream
names the hashes seen twice; `first_repeat` then streams the corpus once more, keeping only the ids with those
hashes, to find the exact repeat and where both copies are (a hash collision is never reported as a repeat).
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable

import numpy as np


class IdTally:
    """The hashes of every id of one stream (hashes are per process: tally and check in the same one)."""

    def __init__(self) -> None:
        self._hashes = array("q")

    def add(self, pid: str) -> None:
        self._hashes.append(hash(pid))

    def __len__(self) -> int:
        return len(self._hashes)

    def repeated(self) -> set[int]:
        """The hashes that occur more than once (empty for a corpus of unique ids, barring 64-bit collisions)."""
        if len(self._hashes) < 2:
            return set()
        ordered = np.sort(np.frombuffer(self._hashes, dtype=np.int64))
        return {int(h) for h in ordered[1:][ordered[1:] == ordered[:-1]]}


def first_repeat(located: Iterable[tuple[str, str]], hashes: set[int]) -> tuple[str, str, str] | None:
    """(id, where first seen, where seen again) of the first id that repeats among (where, id) pairs whose hash is
    in `hashes`, or None (the hashes collided for different ids)."""
    seen: dict[str, str] = {}
    for where, pid in located:
        if hash(pid) not in hashes:
            continue
        if pid in seen:
            return pid, seen[pid], where
        seen[pid] = where
    return None
