"""Streamed corpus encoding: shards + ids on disk, sliced across ranks, resumable by shard, never mixed encodings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hbt.engine.common.errors import ConfigError
from hbt.engine.encoding.corpus_shards import (
    CorpusOptions,
    CorpusShards,
    complete_shards,
    encode_corpus,
    vectors_name,
)
from hbt.engine.encoding.shard_files import ShardedPool

from tests.conftest import CountingEncoder

PASSAGES = [(f"{i // 3}#{i % 3}", f"passage number {i} about topic {i % 5}") for i in range(23)]


def _expected(enc: CountingEncoder) -> np.ndarray:
    return np.stack([enc._vec(t) for _, t in PASSAGES])


def test_encode_corpus_matches_direct_encoding(tmp_path: Path) -> None:
    enc = CountingEncoder()
    shards, n = encode_corpus(enc, iter(PASSAGES), tmp_path, CorpusOptions(shard_size=5), rank=0, world_size=1)
    assert shards is not None and n == 23
    assert shards.pool.sizes == (5, 5, 5, 5, 3)
    np.testing.assert_array_equal(ShardedPool.open(tmp_path).to_array(), _expected(enc))
    assert list(CorpusShards.open(tmp_path).iter_ids()) == [pid for pid, _ in PASSAGES]
    assert shards.rows_of({"7#1", "0#0", "absent"}) == {"7#1": 22, "0#0": 0}
    again, n2 = encode_corpus(
        enc, iter(()), tmp_path, CorpusOptions(shard_size=5), rank=0, world_size=1
    )  # complete: nothing read
    assert again is not None and n2 == 0 and again.pool.n_rows == 23


def test_ranks_encode_disjoint_slices_and_rank0_writes_the_manifest(tmp_path: Path) -> None:
    encs = [CountingEncoder(), CountingEncoder()]
    none, n1 = encode_corpus(encs[1], iter(PASSAGES), tmp_path, CorpusOptions(shard_size=5), rank=1, world_size=2)
    assert none is None and n1 == 10  # shards 1 and 3
    assert complete_shards(tmp_path) == {1, 3} and not (tmp_path / "manifest.json").exists()
    shards, n0 = encode_corpus(
        encs[0], iter(PASSAGES), tmp_path, CorpusOptions(shard_size=5), rank=0, world_size=2, wait_s=5
    )
    assert shards is not None and n0 == 13  # shards 0, 2, 4
    assert {t for _, t in encs[0].calls}.isdisjoint({t for _, t in encs[1].calls})
    np.testing.assert_array_equal(shards.pool.to_array(), _expected(encs[0]))


def test_rank0_gives_up_when_a_rank_never_delivers(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"shards \[1, 3\] never appeared .* rerun to resume"):
        encode_corpus(
            CountingEncoder(), iter(PASSAGES), tmp_path, CorpusOptions(shard_size=5), rank=0, world_size=2, wait_s=0.2
        )


def test_resume_skips_complete_shards(tmp_path: Path) -> None:
    class Stop(Exception):
        pass

    def crash_after_two(j: int, rows: int) -> None:
        if j == 1:
            raise Stop

    first = CountingEncoder()
    with pytest.raises(Stop):
        encode_corpus(
            first, iter(PASSAGES), tmp_path, CorpusOptions(shard_size=5), rank=0, world_size=1, on_shard=crash_after_two
        )
    (tmp_path / f".{vectors_name(2)}.abc.tmp").write_bytes(b"half a shard")  # what kill -9 mid-write leaves
    second = CountingEncoder()
    shards, n = encode_corpus(second, iter(PASSAGES), tmp_path, CorpusOptions(shard_size=5), rank=0, world_size=1)
    assert n == 13 and len(second.calls) == 13  # shards 2, 3, 4 only
    assert not list(tmp_path.glob(".*.tmp"))
    assert shards is not None
    np.testing.assert_array_equal(shards.pool.to_array(), _expected(second))


def test_another_encoding_is_never_mixed_in(tmp_path: Path) -> None:
    encode_corpus(CountingEncoder(), iter(PASSAGES[:7]), tmp_path, CorpusOptions(shard_size=5), rank=1, world_size=2)
    with pytest.raises(ConfigError, match=r"holds shards of another encoding .*encoder"):
        encode_corpus(
            CountingEncoder(fingerprint="other"), iter(PASSAGES), tmp_path, CorpusOptions(shard_size=5), rank=0
        )
    with pytest.raises(ConfigError, match="differs in shard_size"):
        encode_corpus(CountingEncoder(), iter(PASSAGES), tmp_path, CorpusOptions(shard_size=4), rank=0)


CHILD = """
import sys, time
sys.path.insert(0, {repo!r})
from hbt.engine.encoding.corpus_shards import CorpusOptions, encode_corpus
from tests.conftest import CountingEncoder
from tests.test_corpus_shards import PASSAGES

class Slow(CountingEncoder):
    def encode(self, texts, role):
        time.sleep(0.3)
        return super().encode(texts, role)

encode_corpus(Slow(), iter(PASSAGES), {root!r}, CorpusOptions(shard_size=5), rank=0, world_size=1)
"""


def test_kill_9_mid_encode_then_resume(tmp_path: Path) -> None:
    """A real SIGKILL while encoding: complete shards survive, the rerun encodes only the missing ones."""
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import REPO

    root = tmp_path / "shards"
    child = subprocess.Popen([sys.executable, "-c", CHILD.format(repo=str(REPO), root=str(root))], cwd=REPO)
    deadline = time.monotonic() + 120
    while not (root.exists() and len(complete_shards(root)) >= 2):
        assert child.poll() is None and time.monotonic() < deadline, "the child ended or stalled before the kill"
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    done = complete_shards(root)
    assert 2 <= len(done) < 5 and not (root / "manifest.json").exists()
    enc = CountingEncoder()
    shards, n = encode_corpus(enc, iter(PASSAGES), root, CorpusOptions(shard_size=5), rank=0, world_size=1)
    assert n == 23 - 5 * len(done) and len(enc.calls) == n
    assert shards is not None
    np.testing.assert_array_equal(shards.pool.to_array(), _expected(enc))
