"""The hbt terminal app: Setup → Run → Results, plus History; `hbt-tui` starts it.

The grid runs in a worker thread; engine events cross to the UI as `EngineEvent` messages and are folded into one
`RunState` that the Run screen renders.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import ClassVar

from hbt.engine.common.events import EventBus, RunFinished
from hbt.engine.runs.presets import Preset
from hbt.tui.backend import Backend, display_path, error_text
from hbt.tui.messages import EngineEvent, LaunchGrid, OpenResults
from hbt.tui.run_state import LogLine, RunState
from hbt.tui.screens.base import SectionScreen
from hbt.tui.screens.confirm import ConfirmScreen
from hbt.tui.screens.doctor import DoctorScreen
from hbt.tui.screens.help import HelpScreen
from hbt.tui.screens.history import HistoryScreen
from hbt.tui.screens.results import ResultsScreen
from hbt.tui.screens.run import RunScreen
from hbt.tui.screens.setup import SetupScreen
from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.worker import Worker, WorkerState

DARK, LIGHT = "textual-dark", "textual-light"
SECTIONS: dict[str, type[SectionScreen]] = {
    "setup": SetupScreen,
    "run": RunScreen,
    "results": ResultsScreen,
    "history": HistoryScreen,
}


class HbtApp(App[None]):
    """hbt: fine-tune multilingual encoders with X-X / X-Y / hybrid batches and compare them zero-shot."""

    CSS_PATH = "hbt.tcss"
    TITLE = "hbt"
    SUB_TITLE = "multilingual dense retrieval benchmark"
    MODES: ClassVar[dict[str, str | Callable[[], Screen]]] = dict(SECTIONS)  # type: ignore[arg-type]
    DEFAULT_MODE: ClassVar[str] = "setup"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark,f1", "help", "Help"),
        *(Binding(str(i), f"section('{mode}')", mode.capitalize(), show=False) for i, mode in enumerate(SECTIONS, 1)),
        Binding("ctrl+t", "toggle_theme", "Theme"),
        Binding("ctrl+q", "quit", "Quit", priority=True),
        Binding("ctrl+c", "help_quit", "Stop grid (when one runs)", show=False),
    ]

    def __init__(
        self,
        *,
        backend: Backend | None = None,
        runs_root: Path | str = "runs",
        data_dir: str | None = None,
        start_preset: str | None = None,
        open_path: Path | str | None = None,
        theme: str = DARK,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.backend = backend or Backend()
        self.runs_root = Path(runs_root)
        self.data_dir = data_dir if data_dir is not None else self.backend.default_data_dir()
        self.start_preset = start_preset
        self.open_path = Path(open_path) if open_path is not None else None
        self.now = clock
        self.initial_theme = theme
        self.run_state: RunState | None = None
        self.pending_results: Path | None = None
        self.last_export: Path | None = None
        self.errors: list[str] = []  # every worker error shown to the user (newest last)
        self._cancel = threading.Event()
        self._grid_worker: Worker[dict[str, int]] | None = None
        self.quitting = False  # quit confirmed while a grid runs: exit once it has stopped

    def on_mount(self) -> None:
        self.theme = self.initial_theme
        if self.open_path is not None:
            self.open_results(self.open_path)

    # ---- navigation --------------------------------------------------------------------------------------------

    def section(self, mode: str) -> SectionScreen | None:
        """The screen of a section, once it exists."""
        try:
            stack = self.get_screen_stack(mode)
        except KeyError:
            return None
        return stack[0] if stack and isinstance(stack[0], SectionScreen) else None

    def action_section(self, mode: str) -> None:
        self.switch_mode(mode)

    def action_doctor(self) -> None:
        if not isinstance(self.screen, DoctorScreen):
            self.push_screen(DoctorScreen(self.data_dir))

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        sections: list[tuple[str, str, list[BindingType]]] = [
            (
                "Everywhere",
                "1-4 switch section (or click the top bar; in a text field press Esc first); Tab moves between "
                "controls; ctrl+p opens the command palette.",
                self.BINDINGS,
            )
        ]
        for mode, cls in SECTIONS.items():
            sections.append((mode.capitalize(), cls.HELP, list(cls.BINDINGS)))
        self.push_screen(HelpScreen(sections))

    def action_toggle_theme(self) -> None:
        self.theme = LIGHT if self.theme == DARK else DARK

    @property
    def grid_running(self) -> bool:
        return self.run_state is not None and self.run_state.running

    async def action_quit(self) -> None:
        """Quit; while a grid runs, ask first, stop it at its next step (checkpointed), then quit."""
        if not self.grid_running:
            self.exit()
            return
        if self.quitting:  # asked again while stopping: at once (the cell in flight ends as interrupted)
            self._cancel.set()
            self.exit()
            return
        if isinstance(self.screen, ConfirmScreen):
            return
        state = self.run_state
        assert state is not None
        self.push_screen(
            ConfirmScreen(
                "Quit hbt while the grid runs?",
                f"{state.name} is running. Quitting stops it at its next training step: finished cells are kept "
                "and the cell in flight is checkpointed, so History (4, then u) can resume the grid.",
                yes="Stop and quit",
            ),
            self._quit_confirmed,
        )

    def _quit_confirmed(self, yes: bool | None) -> None:
        if not yes:
            return
        if not self.grid_running:  # it finished while the question was open
            self.exit()
            return
        self.quitting = True
        self.cancel_run()
        self.notify("quitting once the grid has stopped at its next step (ctrl+q again: at once)", title="quit")

    def action_help_quit(self) -> None:
        """ctrl+c: stop the running grid (after asking), as in hbt-bench; otherwise Textual's hint on quitting."""
        if self.run_state is not None and self.run_state.status == "running":
            self.action_stop_grid()
        else:
            super().action_help_quit()

    def action_stop_grid(self) -> None:
        state = self.run_state
        if state is None or state.status != "running" or isinstance(self.screen, ConfirmScreen):
            return
        self.push_screen(
            ConfirmScreen(
                "Stop the grid?",
                f"{state.name} stops at its next training step: finished cells are kept and the cell in flight is "
                "checkpointed; History (4, then u) resumes it.",
                yes="Stop grid",
            ),
            lambda yes: self.cancel_run() if yes else None,
        )

    def on_unmount(self) -> None:
        self._cancel.set()

    # ---- command palette ---------------------------------------------------------------------------------------

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """The app's own commands in ctrl+p, after Textual's (theme, keys, screenshot, quit); each one is only
        offered where it can run now."""
        yield from super().get_system_commands(screen)
        for mode in SECTIONS:
            yield SystemCommand(
                f"Go to {mode.capitalize()}", f"switch to the {mode} section", partial(self.switch_mode, mode)
            )
        yield SystemCommand(
            "Toggle light/dark theme", "switch between textual-dark and textual-light", self.action_toggle_theme
        )
        yield SystemCommand(
            "Doctor", "check the install: python, torch, packages vs the lock, data, cache, hub", self.action_doctor
        )
        setup = self.section("setup")
        if isinstance(setup, SetupScreen) and setup.is_mounted and setup.validation.preset is not None:
            yield SystemCommand(
                "Launch grid", f"run the grid set up on Setup ({setup.base_name})", self._launch_from_setup
            )
        state = self.run_state
        if state is not None and state.status == "running":
            yield SystemCommand(
                "Stop the running grid", f"{state.name}: stop at the next step (asks first)", self.action_stop_grid
            )
        if state is not None:
            yield SystemCommand(
                "Open results of the current grid", str(state.out), partial(self.open_results, state.out)
            )
        history = self.section("history")
        if isinstance(history, HistoryScreen) and history.is_mounted and (row := history.selected()) is not None:
            yield SystemCommand("Open the selected run in Results", f"History: {row.name}", history.action_open)
            if row.kind == "grid":
                yield SystemCommand("Resume the selected grid", f"History: {row.name}", history.action_resume)
            yield SystemCommand("Reindex History", "rebuild the results index of the runs root", history.action_reindex)
        results = self.section("results")
        if isinstance(results, ResultsScreen) and results.is_mounted and results.report is not None:
            from hbt.tui.screens.export import NAMES
            from hbt.tui.screens.results import TABS

            for fmt, name in NAMES.items():
                yield SystemCommand(
                    f"Export report as {name}", f"into {results.report.path}", partial(results.export_now, fmt)
                )
            for tab in TABS:
                yield SystemCommand(
                    f"Results view: {results.tab_title(tab)}",
                    "show this view of the open results",
                    partial(results.show_view, tab),
                )

    def _launch_from_setup(self) -> None:
        setup = self.section("setup")
        if isinstance(setup, SetupScreen):
            setup.action_launch()

    # ---- running a grid ----------------------------------------------------------------------------------------

    def on_launch_grid(self, message: LaunchGrid) -> None:
        self.launch(message.preset, message.out, message.resume)

    def launch(self, preset: Preset, out: Path, resume: bool = False) -> bool:
        if self.run_state is not None and self.run_state.running:
            self.notify("a grid is already running: stop it first (ctrl+c)", severity="warning")
            return False
        state = RunState(name=preset.name, out=Path(out), batch_size=preset.run.batch_size)
        for backbone, strategy, seed in preset.cells():
            state.add_cell(self.backend.cell_id(backbone, strategy, seed), backbone or "default", strategy, seed)
        state.log(
            f"grid {preset.name}: {len(state.cells)} cells → {display_path(out)}" + (" (resumed)" if resume else "")
        )
        if resume:
            state.seed(self.backend.grid_snapshot(Path(out)))
        self.run_state = state
        self._cancel = threading.Event()
        self.switch_mode("run")
        run = self.section("run")
        if isinstance(run, RunScreen) and run.is_mounted:
            run.rebuild()
        self._grid_worker = self._run_grid(preset, Path(out), self._cancel, resume)
        return True

    @work(thread=True, group="grid", exit_on_error=False)
    def _run_grid(self, preset: Preset, out: Path, cancel: threading.Event, resume: bool) -> dict[str, int]:
        bus = EventBus()

        def forward(event: object) -> None:
            self.call_from_thread(self.post_message, EngineEvent(event))  # type: ignore[arg-type]

        bus.subscribe(forward)
        return self.backend.run_grid(preset, out, bus, cancel.is_set, resume=resume)

    def on_engine_event(self, message: EngineEvent) -> None:
        if self.run_state is None:
            return
        self._updated(self.run_state.apply(message.event))
        if isinstance(message.event, RunFinished):
            self._follow()

    def _follow(self) -> None:
        """Results showing the running grid reloads it (a cell finished, or the grid ended)."""
        results = self.section("results")
        if self.run_state is not None and isinstance(results, ResultsScreen):
            results.follow(self.run_state.out)

    def cancel_run(self) -> None:
        state = self.run_state
        if state is None or state.status != "running":
            return
        self._cancel.set()
        state.status = "cancelling"
        self._updated(state.log("cancel requested: stopping at the next training step", "warning"))

    def _updated(self, line: LogLine | None) -> None:
        run = self.section("run")
        if isinstance(run, RunScreen) and run.is_mounted:
            run.apply_update(line)
        if isinstance(self.screen, SectionScreen) and self.screen.is_mounted and self.screen is not run:
            self.screen.update_status()  # the section in view shows the grid's progress in its top bar too

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The app's own workers (worker messages do not bubble: each screen handles its own the same way)."""
        worker = event.worker
        if worker.group == "grid":
            self._grid_done(event)
        elif event.state == WorkerState.ERROR:
            self.show_error(worker.error, title=f"{worker.group or worker.name} failed")

    def _grid_done(self, event: Worker.StateChanged) -> None:
        state = self.run_state
        if state is None or event.worker is not self._grid_worker:
            return
        if event.state == WorkerState.SUCCESS:
            summary = event.worker.result or {}
            status = "cancelled" if self._cancel.is_set() else "complete"
            state.finish(status)
            done, failed = summary.get("complete", 0), summary.get("failed", 0)
            text = f"grid {status}: {done} complete, {failed} failed → {display_path(state.out)}"
            self._updated(state.log(text, "warning" if failed or status == "cancelled" else "result"))
            self.notify(text, title="grid", severity="warning" if failed or status == "cancelled" else "information")
        elif event.state == WorkerState.ERROR:
            message = error_text(event.worker.error) if event.worker.error else "the grid stopped"
            state.finish("failed", message)
            self._updated(state.log(message, "error"))
            self.show_error(event.worker.error, title="grid failed", log=False)
        elif event.state == WorkerState.CANCELLED:
            state.finish("cancelled")
            self._updated(state.log("grid cancelled", "warning"))
        if event.state in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            self._follow()
            if self.quitting:
                self.exit()

    def show_error(self, error: BaseException | None, title: str = "error", log: bool = True) -> None:
        """A worker's exception: a notification, the app's error list, and the run log when a run exists."""
        message = error_text(error) if error is not None else title
        self.errors.append(message)
        self.log.error(f"{title}: {message}")
        if log and self.run_state is not None:
            self._updated(self.run_state.log(f"{title}: {message}", "error"))
        self.notify(message, title=title, severity="error", timeout=10)

    # ---- results -----------------------------------------------------------------------------------------------

    def on_open_results(self, message: OpenResults) -> None:
        self.open_results(message.path)

    def open_results(self, path: Path | str) -> None:
        self.switch_mode("results")
        screen = self.section("results")
        if isinstance(screen, ResultsScreen) and screen.is_mounted:
            screen.open(Path(path))
        else:
            self.pending_results = Path(path)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="hbt-tui", description=HbtApp.__doc__)
    parser.add_argument("--runs-root", default="runs", help="where grids are written and History looks (./runs)")
    parser.add_argument("--data-dir", default=None, help="LAReQA data folder ($HBT_DATA_DIR, else ../shared/data)")
    parser.add_argument("--preset", default=None, help="preset selected on Setup at start")
    parser.add_argument("--open", default=None, metavar="DIR", help="open a grid or run directory in Results")
    parser.add_argument("--light", action="store_true", help="start with the light theme")
    return parser.parse_args(argv)


def entry(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    app = HbtApp(
        runs_root=args.runs_root,
        data_dir=args.data_dir,
        start_preset=args.preset,
        open_path=args.open,
        theme=LIGHT if args.light else DARK,
    )
    app.run()
    if app.grid_running:  # quit at once (ctrl+q twice): the worker thread finishes its step before the process ends
        print("hbt-tui: the grid stops at its next training step; resume it from History (u)", file=sys.stderr)


main = entry  # the name older installs of the console script call


if __name__ == "__main__":
    entry()
