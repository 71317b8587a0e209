"""Typed messages between the app and its screens."""

from __future__ import annotations

from pathlib import Path

from textual.message import Message

from ..engine.runs.presets import Preset


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


class AttachGrid(Message):
    """History asks the app to follow a grid that runs elsewhere (started by hbt-bench run or another terminal)."""

    def __init__(self, out: Path) -> None:
        self.out = out
        super().__init__()
