"""common.locks.exclusive_lock: the one flock helper (bundled model conversion, the results store's index)."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest
from hbt.engine.common.locks import exclusive_lock


def _held_elsewhere(path: Path) -> bool:
    """True when another open file description cannot take the lock without waiting."""
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


@pytest.mark.parametrize("kind", ["folder", "lock file"])
def test_lock_is_held_for_the_block_only(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "root" if kind == "folder" else tmp_path / ".model.lock"
    if kind == "folder":
        target.mkdir()
    with exclusive_lock(target):
        assert target.exists() and _held_elsewhere(target)
    assert not _held_elsewhere(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]  # a folder's lock writes no file
    if kind == "folder":
        assert list(target.iterdir()) == []


def test_lock_is_released_when_the_block_raises(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), exclusive_lock(tmp_path):
        raise RuntimeError("boom")
    assert not _held_elsewhere(tmp_path)
