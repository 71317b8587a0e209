"""One typed event stream for progress: the CLI (Rich), the TUI and RUN_DIR/events.jsonl all consume it."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

from .io import ensure_dir, write_error


@dataclass(frozen=True, kw_only=True)
class Event:
    kind: ClassVar[str] = "event"
    t: float = field(default_factory=time.time)
    cell: str = ""  # grid cell id ("" outside a grid)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, **asdict(self)}


@dataclass(frozen=True, kw_only=True)
class Stage(Event):
    """A phase begins: load-data, load-model, encode, search, train, evaluate, write."""

    kind: ClassVar[str] = "stage"
    name: str
    detail: str = ""


@dataclass(frozen=True, kw_only=True)
class Progress(Event):
    kind: ClassVar[str] = "progress"
    task: str
    done: int
    total: int


@dataclass(frozen=True, kw_only=True)
class TrainStep(Event):
    kind: ClassVar[str] = "train_step"
    step: int
    total_steps: int
    epoch: float
    loss: float
    lr: float
    batches: dict[str, int]  # cumulative batch composition, e.g. {"xx": 12, "xy": 8}
    samples_per_s: float
    strategy: str = ""


@dataclass(frozen=True, kw_only=True)
class EvalDone(Event):
    kind: ClassVar[str] = "eval_done"
    dataset: str
    summary: dict[str, float | None]  # results.headline: {"mono_map": .., ...}; None: the setting had no queries


@dataclass(frozen=True, kw_only=True)
class Log(Event):
    kind: ClassVar[str] = "log"
    level: str
    message: str


@dataclass(frozen=True, kw_only=True)
class RunStarted(Event):
    kind: ClassVar[str] = "run_started"
    run_dir: str
    config: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class RunFinished(Event):
    kind: ClassVar[str] = "run_finished"
    run_dir: str
    status: str  # complete | failed | cancelled
    error: str = ""


EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls for cls in (Stage, Progress, TrainStep, EvalDone, Log, RunStarted, RunFinished)
}

Listener = Callable[[Event], None]


def event_from_dict(data: dict[str, Any]) -> Event:
    cls = EVENT_TYPES[data["type"]]
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


class EventBus:
    """Fan-out of events to listeners. Thread-safe; a failing listener never breaks the run."""

    def __init__(self, *listeners: Listener) -> None:
        self._listeners: list[Listener] = list(listeners)
        self._lock = threading.Lock()
        self.cell = ""

    def subscribe(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def emit(self, event: Event) -> None:
        if self.cell and not event.cell:
            object.__setattr__(event, "cell", self.cell)
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            with contextlib.suppress(Exception):  # a broken display must not stop training
                listener(event)

    def stage(self, name: str, detail: str = "") -> None:
        self.emit(Stage(name=name, detail=detail))

    def progress(self, task: str, done: int, total: int) -> None:
        self.emit(Progress(task=task, done=done, total=total))

    def log(self, message: str, level: str = "info") -> None:
        self.emit(Log(level=level, message=message))


NULL_BUS = EventBus()


class JsonlSink:
    """Appends events to a JSONL file, one line each, flushed per event (tolerant readers skip a torn tail).

    Opening a file whose last line was torn by a crash first ends that line, so the next event starts a line of
    its own instead of being glued to the garbage (and lost). An unwritable folder raises an OutputError.
    """

    def __init__(self, path: Path, kinds: set[str] | None = None) -> None:
        ensure_dir(path.parent)
        try:
            torn = _ends_mid_line(path)
            self._fh = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
            if torn:
                self._fh.write("\n")
                self._fh.flush()
        except OSError as exc:
            raise write_error(path, exc) from exc
        self._kinds = kinds
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        if self._kinds is not None and event.kind not in self._kinds:
            return
        line = json.dumps(event.to_dict(), ensure_ascii=False)
        with self._lock:
            self._fh.write(line + "\n")
            self._fh.flush()

    def close(self) -> None:
        """Close the file; never raises: the events are a log beside run.json and results.json, and a full disk
        met while flushing its last line must not hide the error that ended the run (which says which file)."""
        with contextlib.suppress(OSError):
            self._fh.close()


def _ends_mid_line(path: Path) -> bool:
    """True when `path` is a non-empty file whose last byte is not a newline (a torn append)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            if fh.tell() == 0:
                return False
            fh.seek(-1, 2)
            return fh.read(1) != b"\n"
    except FileNotFoundError:
        return False


def read_events(path: Path) -> list[Event]:
    """Read events.jsonl, skipping torn, garbage or unknown lines (append-only files may end mid-line after a
    crash, even mid-character); every well-formed event is kept."""
    out: list[Event] = []
    try:
        raw = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return out
    for chunk in raw.split(b"\n"):
        try:
            data = json.loads(chunk.decode("utf-8"))
            if isinstance(data, dict):
                out.append(event_from_dict(data))
        except (ValueError, KeyError, TypeError, RecursionError):  # ValueError covers JSON and UTF-8 errors
            continue
    return out


class EventTail:
    """Follows an events.jsonl another process appends to: each `read()` returns the events of the complete lines
    written since the last one (a torn last line waits for the next read; garbage lines are skipped). `start` is the
    byte offset to begin at (0: the whole file, earlier attempts included)."""

    def __init__(self, path: Path, start: int = 0) -> None:
        self.path = path
        self.offset = start

    @classmethod
    def at_end(cls, path: Path) -> EventTail:
        """A tail that reports only what is appended from now on."""
        try:
            size = path.stat().st_size
        except OSError:
            size = 0
        return cls(path, size)

    def read(self) -> list[Event]:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                chunk = fh.read()
        except OSError:
            return []
        end = chunk.rfind(b"\n") + 1
        self.offset += end
        out: list[Event] = []
        for line in chunk[:end].splitlines():
            try:
                data = json.loads(line.decode("utf-8"))
                if isinstance(data, dict):
                    out.append(event_from_dict(data))
            except (ValueError, KeyError, TypeError, RecursionError):
                continue
        return out
