"""Torn run files: events.jsonl cut mid-append or holding garbage, and a deleted or corrupt results index (issue 7).

Readers skip what they cannot parse and keep everything before it; the results store rebuilds its index from the
run folders, and still lists a root it cannot write.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hbt.engine.common.errors import OutputError, UserError
from hbt.engine.common.events import JsonlSink, Log, RunFinished, RunStarted, Stage, read_events
from hbt.engine.runs.store import INDEX_NAME, ResultsStore
from hypothesis import given
from hypothesis import strategies as st

from tests.malformed_common import FAST, fresh_dir
from tests.test_report_fixtures import make_grid, write_run

# ---- torn events.jsonl -----------------------------------------------------------------------------------------

EVENTS = [
    RunStarted(t=1.0, run_dir="r", config={"a": "é"}),
    Stage(t=2.0, name="load-data", detail="xquad-r"),
    Log(t=3.0, level="info", message="line\u2028separator and 日本"),  # not a line break in JSONL
    RunFinished(t=4.0, run_dir="r", status="complete"),
]


def write_events(path: Path, events: list[Any]) -> list[int]:
    """Write events through JsonlSink; returns each event's end offset (bytes, newline excluded)."""
    sink = JsonlSink(path)
    ends = []
    for event in events:
        sink(event)
        ends.append(path.stat().st_size - 1)
    sink.close()
    return ends


@FAST
@given(cut=st.integers(0, 10_000), n=st.integers(1, len(EVENTS)))
def test_read_events_skips_a_torn_tail_and_the_sink_appends_after_it(cut: int, n: int) -> None:
    with fresh_dir() as root:
        path = root / "events.jsonl"
        ends = write_events(path, EVENTS[:n])
        raw = path.read_bytes()
        cut %= len(raw) + 1
        path.write_bytes(raw[:cut])  # a crash mid-append, possibly mid-character
        kept = [e for e, end in zip(EVENTS[:n], ends, strict=True) if end <= cut]
        assert read_events(path) == kept
        write_events(path, [Log(t=9.0, level="info", message="resumed")])  # a resumed run appends
        assert read_events(path) == [*kept, Log(t=9.0, level="info", message="resumed")]


def test_read_events_skips_garbage_lines(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    write_events(path, EVENTS[:2])
    with open(path, "ab") as fh:
        fh.write(b"\xff\xfe garbage\n")  # not UTF-8
        fh.write(b'[1, 2]\n42\n"text"\nnull\n{}\n')  # JSON, but not events
        fh.write(b'{"type": "no_such_kind"}\n{"type": "stage"}\n{"type": ["x"]}\n')  # unknown / incomplete
        fh.write(b"[" * 50_000 + b"\n")  # nested too deeply for the parser
    write_events(path, EVENTS[2:])
    with open(path, "ab") as fh:
        fh.write(b'{"type": "log", "level": "info", "mess')
    assert read_events(path) == EVENTS
    assert read_events(tmp_path / "missing.jsonl") == []


# ---- the results store: torn files and a corrupt index ---------------------------------------------------------


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    make_grid(root / "grid-a", seeds=(0,))
    write_run(root / "single", "none", 0)
    # a run killed before run.json was written: config.json + an events.jsonl with garbage and a torn tail
    killed = root / "killed"
    write_run(killed, "xx", 1)
    for name in ("run.json", "results.json"):
        (killed / name).unlink()
    with open(killed / "events.jsonl", "ab") as fh:
        fh.write(
            b"\x00garbage\n"
            + json.dumps(RunFinished(t=50.0, run_dir="k", status="failed", error="boom").to_dict()).encode()
        )
        fh.write(b'\n{"type": "stage", "t": 51.0, "na')
    return root


def stable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "indexed"} for r in rows]


def test_store_reads_a_torn_events_file(runs: Path) -> None:
    store = ResultsStore(runs)
    store.reindex()
    killed = store.get("killed")
    assert killed is not None
    assert (killed["status"], killed["error"], killed["started"], killed["updated"]) == ("failed", "boom", 1.0, 50.0)
    assert killed["strategy"] == "xx" and killed["mono_map"] is None


GARBAGE = [b"", b"garbage", b"SQLite format 3\x00" + b"\xff" * 4000, bytes(range(256)) * 40]


@pytest.mark.parametrize("garbage", [*GARBAGE, "truncated", "flipped"], ids=lambda g: str(g)[:12])
def test_store_rebuilds_a_deleted_or_corrupt_index(runs: Path, garbage: bytes | str) -> None:
    store = ResultsStore(runs)
    n = store.reindex()
    before = stable(store.list_runs())
    assert len(before) == n == 4 + 2
    index = runs / INDEX_NAME
    good = index.read_bytes()
    index.unlink()
    assert stable(store.list_runs()) == before  # rebuilt on read
    if garbage == "truncated":
        content = good[: len(good) // 2]
    elif garbage == "flipped":  # damaged pages beyond the header: only an integrity check notices
        flipped = bytearray(good)
        for i in range(4096, len(flipped), 7):
            flipped[i] ^= 0x55
        content = bytes(flipped)
    else:
        assert isinstance(garbage, bytes)
        content = garbage
    index.write_bytes(content)
    assert stable(store.list_runs()) == before
    assert store.refresh() >= 0 and stable(store.list_runs()) == before
    index.write_bytes(content)
    assert store.reindex() == n and stable(store.list_runs()) == before
    assert not [p for p in runs.iterdir() if p.name.endswith(".tmp")]


def test_store_lists_a_root_it_cannot_write(runs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = stable(ResultsStore(runs).list_runs())
    (runs / INDEX_NAME).write_bytes(b"corrupt")

    def read_only(path: Any, data: bytes) -> None:
        raise OutputError(f"cannot write {path}: read-only file system — choose another --out")

    monkeypatch.setattr("hbt.engine.runs.store.write_bytes", read_only)
    assert stable(ResultsStore(runs).list_runs()) == before
    store = ResultsStore(runs)  # what `hbt-bench list runs` does: refresh, then list
    write_run(runs / "new", "xy", 0)
    assert store.refresh() == len(before) + 1  # the corrupt file is rebuilt in memory, plus the new run
    assert len(store.list_runs()) == len(before) + 1
    assert (runs / INDEX_NAME).read_bytes() == b"corrupt"
    with pytest.raises(UserError, match="read-only file system"):
        store.reindex()  # an explicit rebuild says that it could not write
