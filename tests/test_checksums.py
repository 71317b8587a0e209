"""Content checksums of input files: remembered by path + inode + mtime + size, recomputed when the content moves."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from hbt.engine.common import checksums
from hbt.engine.common.checksums import describe_file, file_sha256


@pytest.fixture(autouse=True)
def fresh_memory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HBT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(checksums, "_memory", {})


def test_equals_hashlib_and_is_remembered_across_processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "docs-0.jsonl"
    data.write_bytes(b'{"docid": "1#0"}\n' * 100_000)
    want = hashlib.sha256(data.read_bytes()).hexdigest()
    assert file_sha256(data) == want
    monkeypatch.setattr(checksums, "_memory", {})  # a new process: only the memo file remains
    calls: list[Path] = []
    real = checksums._digest
    monkeypatch.setattr(checksums, "_digest", lambda p: calls.append(p) or real(p))
    assert file_sha256(data) == want and calls == []  # served from <cache>/checksums.json


def test_same_name_and_size_new_content_is_hashed_again(tmp_path: Path) -> None:
    data = tmp_path / "qrels.tsv"
    data.write_text("q1 Q0 d1 1\n", "utf-8")
    before = file_sha256(data)
    stat = data.stat()
    data.write_text("q1 Q0 d2 1\n", "utf-8")  # docids swapped in place: same name and size
    os.utime(data, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert data.stat().st_size == stat.st_size
    assert file_sha256(data) != before == hashlib.sha256(b"q1 Q0 d1 1\n").hexdigest()


def test_unwritable_memo_only_costs_a_rehash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder should be", "utf-8")
    monkeypatch.setenv("HBT_CACHE_DIR", str(blocked))
    data = tmp_path / "x.json"
    data.write_text("{}", "utf-8")
    assert file_sha256(data) == hashlib.sha256(b"{}").hexdigest()


def test_describe_names_the_file_relative_to_its_root(tmp_path: Path) -> None:
    (tmp_path / "xquad-r").mkdir()
    data = tmp_path / "xquad-r" / "de.json"
    data.write_text("{}", "utf-8")
    assert describe_file(data, tmp_path) == (
        "xquad-r/de.json",
        {"sha256": hashlib.sha256(b"{}").hexdigest(), "bytes": 2},
    )
    assert describe_file(data, tmp_path / "elsewhere")[0] == str(data.resolve())
