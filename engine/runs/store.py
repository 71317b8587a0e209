"""A results index: one SQLite table over every run directory under a root folder (`<root>/index.sqlite`).

The run directories are the source of truth; the index is a cache that makes listing and comparing hundreds of
runs instant, and can be thrown away at any time (`reindex` rebuilds it from scratch, `refresh` updates the rows
whose files changed). A run directory is any folder under the root with a config.json and one of run.json,
results.json or events.jsonl; the walk does not descend into a run directory (its model/ and checkpoints/ also
hold config.json files) nor into hidden folders.

Writes are atomic: the database is built or updated in memory, serialized, and written with
`hbt.engine.common.io.write_bytes` (temp file + rename), so a reader never sees a half-written index and no journal file
is ever left beside it. Writers on one machine serialize on an advisory lock of the root folder. A corrupt or
outdated index file (bad bytes anywhere: it is integrity-checked on load) is rebuilt on the next read, and a
root that cannot be written is still listed (from an index built in memory). A torn or malformed results.json marks
the run "interrupted" (its headline metrics stay empty); a missing or torn run.json is stood in for by events.jsonl
(whose torn or garbage lines are skipped); indexing never raises for a bad run directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..common.errors import OutputError, UserError
from ..common.events import RunFinished, RunStarted, read_events
from ..common.io import read_json_object, write_bytes
from ..common.locks import exclusive_lock
from ..evaluation.results import HEADLINE_FIELD, SETTINGS, DatasetSummary, first_dataset, headline, number
from .rundir import read_results

INDEX_NAME = "index.sqlite"
SCHEMA_VERSION = 1

COLUMNS: tuple[tuple[str, str], ...] = (
    ("key", "TEXT PRIMARY KEY"),  # the run directory relative to the root (posix), unique
    ("id", "TEXT"),  # run id: results.json run_id, else the directory name (grid cell id in a grid)
    ("path", "TEXT"),  # absolute path of the run directory
    ("grid", "TEXT"),  # name of the grid directory holding the run (None outside a grid)
    ("backbone", "TEXT"),
    ("strategy", "TEXT"),
    ("seed", "INTEGER"),
    ("status", "TEXT"),
    ("started", "REAL"),
    ("updated", "REAL"),
    ("error", "TEXT"),
    ("dataset", "TEXT"),  # the first evaluation dataset (the headline metrics are its macro mAP)
    ("datasets", "TEXT"),  # JSON list of every evaluation dataset with results
    *((HEADLINE_FIELD[s], "REAL") for s in SETTINGS),  # mono_map, cross_map, multi_map
    ("steps", "INTEGER"),
    ("final_loss", "REAL"),
    ("signature", "TEXT"),  # mtime and size of config.json, run.json, results.json: what refresh() compares
    ("indexed", "REAL"),
)
NAMES = tuple(name for name, _ in COLUMNS)
_HIDDEN_IN_ROWS = ("signature",)
_RUN_MARKERS = ("run.json", "results.json", "events.jsonl")
_SIGNED_FILES = ("config.json", "run.json", "results.json")


def _is_run_dir(path: Path) -> bool:
    return (path / "config.json").is_file() and any((path / m).is_file() for m in _RUN_MARKERS)


def _signature(path: Path) -> str:
    parts = []
    # without run.json the status comes from events.jsonl, so its changes must show too
    names = _SIGNED_FILES if (path / "run.json").is_file() else (*_SIGNED_FILES, "events.jsonl")
    for name in names:
        try:
            st = (path / name).stat()
            parts.append(f"{st.st_mtime_ns}:{st.st_size}")
        except OSError:
            parts.append("-")
    return "|".join(parts)


def _status_from_events(path: Path) -> dict[str, Any]:
    """What events.jsonl tells when run.json is missing or unreadable: when the run started and last logged, and
    how it finished if it did (torn or garbage lines are skipped by read_events)."""
    events = read_events(path)
    out: dict[str, Any] = {}
    for event in events:
        if isinstance(event, RunStarted) and "started" not in out:
            out["started"] = event.t
        elif isinstance(event, RunFinished) and isinstance(event.status, str):
            out["status"] = event.status
            out["error"] = event.error or None
    if events:
        out["updated"] = events[-1].t
    return out


def _headline(datasets: dict[str, DatasetSummary], config: dict[str, Any]) -> dict[str, Any]:
    """dataset, datasets and mono/cross/multi macro mAP of the first evaluation dataset (results.headline: None,
    shown as results.MISSING, when a setting had no queries)."""
    preferred = config.get("eval_data") or []
    first = first_dataset(datasets, preferred)
    order = [d for d in preferred if d in datasets] + list(datasets)
    return {"dataset": first, "datasets": json.dumps(list(dict.fromkeys(order))), **headline(datasets[first])}


class ResultsStore:
    """The SQLite index of the run directories under `root` (see the module docstring)."""

    def __init__(self, root: str | Path, db_path: str | Path | None = None) -> None:
        self.root = Path(root)
        self.db_path = Path(db_path) if db_path is not None else self.root / INDEX_NAME
        self._unsaved: bytes | None = None  # the index refresh() could not write (read-only root), used instead

    # ---- discovery -------------------------------------------------------------------------------------------

    def run_dirs(self) -> list[Path]:
        """Every run directory under the root, sorted (not descending into run or hidden directories)."""
        found: list[Path] = []
        if not self.root.is_dir():
            return found
        for dirpath, dirnames, _ in os.walk(self.root):
            here = Path(dirpath)
            if _is_run_dir(here):
                found.append(here)
                dirnames[:] = []
                continue
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        return sorted(found)

    def _key(self, run_dir: Path) -> str:
        try:
            rel = run_dir.resolve().relative_to(self.root.resolve())
        except ValueError:
            raise UserError(f"{run_dir} is not under the results root {self.root}") from None
        return rel.as_posix()

    def _grid_of(self, run_dir: Path) -> str | None:
        """The grid directory name when the run is a cell (<grid>/cells/<id> beside <grid>/grid.json)."""
        parent = run_dir.resolve().parent
        if parent.name == "cells" and (parent.parent / "grid.json").is_file():
            return parent.parent.name
        return None

    def _row(self, run_dir: Path) -> dict[str, Any]:
        """The index row of one run directory; never raises for a bad run (it is marked and kept)."""
        row: dict[str, Any] = dict.fromkeys(NAMES)
        row.update(key=self._key(run_dir), id=run_dir.name, path=str(run_dir.resolve()), indexed=time.time())
        row["signature"] = _signature(run_dir)
        try:
            row["grid"] = self._grid_of(run_dir)
            config, _ = read_json_object(run_dir / "config.json")
            status, _ = read_json_object(run_dir / "run.json")
            results, problem = read_json_object(run_dir / "results.json")
            datasets = None
            if results is not None:  # the same test as --resume's "is this cell complete?" (rundir.results_problem)
                datasets, problem = read_results(results)
            status = status or _status_from_events(run_dir / "events.jsonl")
            config = config or dict((results or {}).get("config") or {})
            row["backbone"] = config.get("backbone")
            row["strategy"] = config.get("strategy")
            seed = config.get("seed")
            row["seed"] = seed if isinstance(seed, int) and not isinstance(seed, bool) else None
            row["status"] = str(status.get("status") or "interrupted")
            row["started"] = number(status.get("started"))
            row["updated"] = number(status.get("updated"))
            row["error"] = status.get("error") if isinstance(status.get("error"), str) else None
            if results is not None and datasets is not None:
                try:
                    row.update(_headline(datasets, config))
                    row["id"] = str(results.get("run_id") or row["id"])
                    training = results.get("training")
                    if isinstance(training, dict):
                        row["steps"] = training.get("steps") if isinstance(training.get("steps"), int) else None
                        row["final_loss"] = number(training.get("final_loss"))
                except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
                    problem = f"results.json malformed ({type(exc).__name__}: {exc})"
            if problem:
                row["status"] = "interrupted"
                row["error"] = problem
            elif results is None and row["status"] == "complete":
                row["status"] = "interrupted"
                row["error"] = "marked complete but results.json is missing"
        except Exception as exc:  # the index must never crash on one odd directory
            row["status"] = "interrupted"
            row["error"] = f"could not index ({type(exc).__name__}: {exc})"
        return row

    # ---- database --------------------------------------------------------------------------------------------

    @staticmethod
    def _create(conn: sqlite3.Connection) -> None:
        cols = ", ".join(f"{name} {kind}" for name, kind in COLUMNS)
        conn.execute(f"CREATE TABLE runs ({cols})")
        conn.execute("CREATE INDEX runs_id ON runs(id)")
        conn.execute("CREATE INDEX runs_status ON runs(status)")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _load(self) -> sqlite3.Connection | None:
        """The index in an in-memory connection, or None when it is missing, corrupt or of another schema."""
        try:
            data = self._unsaved if self._unsaved is not None else self.db_path.read_bytes()
        except OSError:
            return None
        if not data:  # an empty file (sqlite's deserialize raises MemoryError on it)
            return None
        conn = sqlite3.connect(":memory:")
        try:
            conn.deserialize(data)
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            names = [r[1] for r in conn.execute("PRAGMA table_info(runs)")]
            ok = conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"  # damaged pages fail later queries
            if version != SCHEMA_VERSION or tuple(names) != NAMES or not ok:
                conn.close()
                return None
        except (sqlite3.DatabaseError, MemoryError):
            conn.close()
            return None
        return conn

    def _build(self) -> tuple[sqlite3.Connection, int]:
        """A fresh in-memory index of every run directory, and the number of runs in it."""
        conn = sqlite3.connect(":memory:")
        self._create(conn)
        dirs = self.run_dirs()
        for run_dir in dirs:
            self._put(conn, self._row(run_dir))
        return conn, len(dirs)

    def _save(self, conn: sqlite3.Connection, required: bool = True) -> None:
        """Write the index file; when not `required` (refresh, listing) an unwritable root keeps it in memory."""
        conn.commit()
        try:
            write_bytes(self.db_path, conn.serialize())
            self._unsaved = None
        except OutputError:
            if required:
                raise
            self._unsaved = conn.serialize()

    @staticmethod
    def _put(conn: sqlite3.Connection, row: dict[str, Any]) -> None:
        marks = ", ".join("?" for _ in NAMES)
        conn.execute(f"INSERT OR REPLACE INTO runs ({', '.join(NAMES)}) VALUES ({marks})", [row[n] for n in NAMES])

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """An exclusive advisory lock on the root folder (no lock file is written); a no-op where unsupported."""
        with exclusive_lock(self.root):
            yield

    def _check_root(self) -> None:
        if not self.root.is_dir():
            raise UserError(f"results root {self.root} does not exist or is not a folder")

    # ---- public API ------------------------------------------------------------------------------------------

    def reindex(self) -> int:
        """Rebuild the index from scratch from the run directories; returns the number of runs indexed."""
        self._check_root()
        with self._lock():
            conn, n = self._build()
            try:
                self._save(conn)
            finally:
                conn.close()
        return n

    def refresh(self) -> int:
        """Bring the index up to date cheaply (stat only for unchanged runs); returns the rows added/changed/dropped."""
        self._check_root()
        with self._lock():
            conn = self._load()
            if conn is None:
                conn = sqlite3.connect(":memory:")
                self._create(conn)
            try:
                known = dict(conn.execute("SELECT key, signature FROM runs").fetchall())
                changed = 0
                seen = set()
                for run_dir in self.run_dirs():
                    key = self._key(run_dir)
                    seen.add(key)
                    if known.get(key) != _signature(run_dir):
                        self._put(conn, self._row(run_dir))
                        changed += 1
                for key in set(known) - seen:
                    conn.execute("DELETE FROM runs WHERE key = ?", (key,))
                    changed += 1
                if changed or not self.db_path.exists():
                    self._save(conn, required=False)
            finally:
                conn.close()
        return changed

    def upsert(self, run_dir: str | Path) -> dict[str, Any] | None:
        """Index (or re-index) one run directory; a directory that is no longer a run is dropped (None)."""
        self._check_root()
        path = Path(run_dir)
        key = self._key(path)
        with self._lock():
            conn = self._load()
            if conn is None:  # no index yet (or a bad one): build everything, which includes this run
                conn, _ = self._build()
            try:
                row = self._row(path) if _is_run_dir(path) else None
                if row is None:
                    conn.execute("DELETE FROM runs WHERE key = ?", (key,))
                else:
                    self._put(conn, row)
                self._save(conn)
            finally:
                conn.close()
        return self._public(row) if row else None

    def _reader(self) -> sqlite3.Connection | None:
        """The index to query: the file, else one rebuilt (and saved when the root is writable)."""
        conn = self._load()
        if conn is None and self.root.is_dir():
            with self._lock():
                conn, _ = self._build()
                self._save(conn, required=False)  # a read-only root is still listed
        return conn

    @staticmethod
    def _public(row: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in row.items() if k not in _HIDDEN_IN_ROWS}
        if isinstance(out.get("datasets"), str):
            try:
                out["datasets"] = json.loads(out["datasets"])
            except ValueError:
                out["datasets"] = []
        out["datasets"] = out.get("datasets") or []
        return out

    def _query(self, where: str = "", params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        conn = self._reader()
        if conn is None:
            return []
        try:
            conn.row_factory = sqlite3.Row
            sql = f"SELECT * FROM runs {where} ORDER BY started IS NULL, started, key"
            return [self._public(dict(r)) for r in conn.execute(sql, params)]
        finally:
            conn.close()

    def list_runs(self, status: str | None = None) -> list[dict[str, Any]]:
        """Every indexed run (optionally only those with `status`), oldest first; builds the index if missing.

        Each row: key, id, path, grid, backbone, strategy, seed, status, started, updated, error, dataset,
        datasets, mono_map, cross_map, multi_map (macro mAP of the first eval dataset), steps, final_loss, indexed.
        """
        if status is None:
            return self._query()
        return self._query("WHERE status = ?", (status,))

    def get(self, run_id: str) -> dict[str, Any] | None:
        """One run by key (path under the root), by path, or by id (the latest started when ids repeat)."""
        rows = self._query("WHERE key = ? OR id = ? OR path = ?", (run_id, run_id, run_id))
        if not rows:
            with contextlib.suppress(OSError, UserError):
                key = self._key(Path(run_id))
                rows = self._query("WHERE key = ?", (key,))
        if not rows:
            return None
        exact = [r for r in rows if run_id in (r["key"], r["path"])]
        return exact[0] if exact else rows[-1]
