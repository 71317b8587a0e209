"""Stopping cleanly: a cancel request ends training after the current step (with a checkpoint); a second Ctrl-C
stops at once. Finished cells are never touched; the interrupted one resumes from its checkpoint."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any


class Cancelled(Exception):
    """The user asked to stop. Raised after the current step's checkpoint is written."""

    def __init__(self, where: str, step: int | None = None, checkpoint: str | None = None) -> None:
        at = f" at step {step}" if step is not None else ""
        super().__init__(f"stopped {where}{at}")
        self.step = step
        self.checkpoint = checkpoint


class CancelFlag:
    """A thread-safe 'please stop' flag: call it to ask whether a stop was requested. While `at_once` is set (the work
    in progress can be dropped without losing anything: a cell's evaluation, its trained model saved), the first
    Ctrl-C stops at once instead of at the next step."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.at_once = False

    def set(self) -> None:
        self._event.set()

    def __call__(self) -> bool:
        return self._event.is_set()


@contextmanager
def sigint_cancels(flag: CancelFlag, notify: Callable[[str], Any] | None = None) -> Iterator[CancelFlag]:
    """Within the block, the first Ctrl-C sets `flag` (stop after the current step), the second raises
    KeyboardInterrupt (stop now). Outside the main thread, signals cannot be handled: the block just runs."""
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if flag() or flag.at_once:
            flag.set()
            raise KeyboardInterrupt
        flag.set()
        message = "stopping after the current step (checkpoint kept); press Ctrl-C again to stop at once"
        (notify or (lambda m: print(f"hbt: {m}", file=sys.stderr)))(message)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def stops_at_once(cancel: Any, where: Callable[[], str]) -> Iterator[None]:
    """Within the block a stop request takes effect at once (`CancelFlag.at_once`): a first Ctrl-C (a cancel's
    SIGINT) becomes `Cancelled(where())`; a second one stays a KeyboardInterrupt."""
    if not isinstance(cancel, CancelFlag):
        yield
        return
    cancel.at_once = True
    try:
        yield
    except KeyboardInterrupt:
        if cancel.at_once and cancel():
            raise Cancelled(where()) from None
        raise
    finally:
        cancel.at_once = False
