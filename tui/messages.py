"""Typed messages between the engine worker, the app and its screens."""

from __future__ import annotations

from pathlib import Path

from hbt.engine.common.events import Event
from hbt.engine.runs.presets import Preset
from textual.message import Message


class EngineEvent(Message):
    """One engine event, posted to the app from the grid worker thread (via `App.call_from_thread`)."""

    def __init__(self, event: Event) -> None:
        self.event = event
        super().__init__()


class LaunchGrid(Message):
    """Setup asks the app to run a validated preset into `out`; History asks it to resume the grid in `out`."""

    def __init__(self, preset: Preset, out: Path, resume: bool = False) -> None:
        self.preset = preset
        self.out = out
        self.resume = resume
        super().__init__()


class OpenResults(Message):
    """Show the results of a grid or run directory (from History, or when a grid finishes)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__()
