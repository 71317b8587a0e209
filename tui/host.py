"""What the section screens use of the app (`HbtApp`), as a protocol below both: the screens read the app's state
and call its few actions through it, without importing `app` (which imports every screen)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from .backend import Backend
from .run_state import RunState


class AppHost(Protocol):
    """The app's side the screens see; `HbtApp` is the one implementation."""

    backend: Backend
    runs_root: Path
    data_dir: str | None
    start_preset: str | None
    now: Callable[[], float]  # the clock (the tests fix it)
    run_state: RunState | None  # the followed grid, None before one starts
    pending_results: Path | None  # a run or grid folder the Results screen opens when it next shows
    last_export: Path | None

    def action_stop_grid(self) -> None: ...

    def detach(self) -> None: ...

    def open_results(self, path: Path | str) -> None: ...

    def show_error(self, error: BaseException | None, title: str = "error", log: bool = True) -> None: ...
