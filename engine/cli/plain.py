"""Progress where no terminal is attached (CI logs, nohup, a pipe): plain lines, no Rich bars or decorations.

One line per stage and log message, and for long work (encoding, search, training, a grid) a periodic
"task N/M (P%), rate, ETA" line: at most one per task every `interval` seconds (HBT_PROGRESS_INTERVAL, default 10),
plus the line that completes the task.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from ..common.events import Event, Log, RunFinished, Stage, TrainStep
from ..common.events import Progress as ProgressEvent
from ..common.text import safe


def _interval() -> float:
    try:
        return max(float(os.environ.get("HBT_PROGRESS_INTERVAL", "10")), 0.0)
    except ValueError:
        return 10.0


def eta(seconds: float) -> str:
    whole = max(round(seconds), 0)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


@dataclass
class _Task:
    started: float
    first_done: int
    last_print: float
    last_done: int = -1
    seen: int = 0


class PlainListener:
    """Consumes the event stream like the Rich listener, writing plain timestamped lines to `stream`."""

    def __init__(
        self, stream: TextIO | None = None, interval: float | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.stream = stream or sys.stderr
        self.interval = _interval() if interval is None else interval
        self.clock = clock
        self.tasks: dict[str, _Task] = {}

    def __enter__(self) -> PlainListener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stream.flush()

    def _line(self, text: str, stream: TextIO | None = None) -> None:
        stamp = time.strftime("%H:%M:%S")
        out = stream or self.stream
        out.write(f"{stamp} {safe(text)}\n")  # names and errors come from files: control characters escaped
        out.flush()

    def notice(self, message: str) -> None:
        """A one-off line on stderr (the first Ctrl-C's 'stopping after the current step')."""
        self._line(f"hbt: {message}", sys.stderr)

    def _progress(self, key: str, done: int, total: int, unit: str, extra: str = "") -> None:
        now = self.clock()
        task = self.tasks.get(key)
        if task is None or done < task.seen:  # a new task, or a task of that name started over
            self.tasks[key] = _Task(started=now, first_done=done, last_print=now, seen=done)
            return
        task.seen = done
        finished = total > 0 and done >= total
        if done == task.last_done or (not finished and now - task.last_print < self.interval):
            return
        task.last_print, task.last_done = now, done
        elapsed = now - task.started
        rate = (done - task.first_done) / elapsed if elapsed > 0 else 0.0
        left = f", ETA {eta((total - done) / rate)}" if rate > 0 and not finished else ""
        pct = f" ({100 * done / total:.0f}%)" if total > 0 else ""
        took = f", took {eta(elapsed)}" if finished else ""
        self._line(f"{key} {done}/{total}{pct}, {rate:.2f} {unit}/s{left}{took}{extra}")

    def __call__(self, event: Event) -> None:
        prefix = f"[{event.cell}] " if event.cell else ""
        if isinstance(event, ProgressEvent):
            unit = "cells" if event.task == "grid" else "items"
            self._progress(f"{prefix}{event.task}", event.done, event.total, unit)
        elif isinstance(event, TrainStep):
            extra = f", loss {event.loss:.4f}"
            self._progress(f"{prefix}train {event.strategy}", event.step, event.total_steps, "steps", extra)
        elif isinstance(event, Stage):
            self._line(f"{prefix}{event.name} {event.detail}".rstrip())
        elif isinstance(event, Log):
            self._line(f"{prefix}{'warning: ' if event.level == 'warning' else ''}{event.message}")
        elif isinstance(event, RunFinished) and event.status != "complete":
            self._line(f"{prefix}{event.status} {event.error}".rstrip())


def listener_for(console: Any) -> Any:
    """Rich bars on a terminal, plain lines otherwise (on the console's stream, where the bars would go)."""
    if getattr(console, "is_terminal", False):
        # (start-up: scipy)
        from .display import RichListener

        return RichListener(console)
    return PlainListener(getattr(console, "file", None) or sys.stdout)
