"""The hbt terminal app: Setup → Run → Results, plus History; `hbt-tui` starts it.

The TUI is a client: every grid, local ones too, runs in its own submitting process (`hbt.engine.runs.submit`, whose
cells run in it or as worker processes / Slurm jobs / Ray tasks), never in the TUI's process. The app follows the grid
folder on a timer (each cell's events.jsonl, grid.json's job records) and folds the events into one `RunState` that the
Run screen renders; it can attach to a grid started elsewhere (`hbt-bench run`, another terminal), detach, and quit
while the grid goes on.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.timer import Timer
from textual.worker import Worker, WorkerState

from ..engine.common.errors import UserError
from ..engine.common.events import RunFinished
from ..engine.common.vocabulary import EXPORT_FORMAT_NAMES
from ..engine.runs.presets import Preset
from .backend import Backend, GridProcess, display_path, error_text
from .host import AppHost
from .messages import AttachGrid, LaunchGrid, OpenResults
from .run_state import LogLine, RunState
from .screens.base import SectionScreen
from .screens.confirm import ConfirmScreen, QuitGridScreen
from .screens.doctor import DoctorScreen
from .screens.help import HelpScreen
from .screens.history import HistoryScreen
from .screens.results import ResultsScreen
from .screens.run import RunScreen
from .screens.setup import SetupScreen

if TYPE_CHECKING:
    from ..engine.runs.control import GridFollower

DARK, LIGHT = "textual-dark", "textual-light"
POLL_S = 0.5  # how often the followed grid's folder is read


def stop_text(state: RunState, asked: bool = False) -> str:
    """What a stop does, said before (the dialog) or as it is asked (the log): training cells stop after their step,
    a cell being evaluated at once (issue 23 item 15: the dialog promised the next step, the evaluation ran on)."""
    evaluating = [c.id for c in state.cells.values() if c.status == "running" and c.step >= c.total_steps]
    now = f"; {', '.join(evaluating)} (evaluating) stops at once, its trained model kept" if evaluating else ""
    if asked:
        return f"stop requested: training cells stop after their current step{now}"
    return (
        f"{state.name} stops: a cell in training stops after its current step (checkpointed), a cell being evaluated "
        f"stops at once (its trained model is kept; the resume evaluates it again){now}. Finished cells are kept; "
        "History (4, then u) resumes the grid."
    )


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
        attach_path: Path | str | None = None,
        poll_s: float = POLL_S,
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
        self.attach_path = Path(attach_path) if attach_path is not None else None
        self.poll_s = poll_s
        self.grid_process: GridProcess | None = None  # the submitting process this TUI started (None: attached)
        self.follower: GridFollower | None = None  # the followed grid's folder
        self._poller: Timer | None = None
        self.quitting = False  # 'stop and quit' confirmed: exit once the grid has stopped

    def on_mount(self) -> None:
        self.theme = self.initial_theme
        if self.attach_path is not None:
            self.attach(self.attach_path)
        elif self.open_path is not None:
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
        """Quit; while a grid runs (it is its own process) ask first: leave it running, or stop it and quit."""
        if not self.grid_running:
            self.exit()
            return
        if self.quitting:  # asked again while it stops: quit now (the grid's process finishes stopping alone)
            self.exit()
            return
        if isinstance(self.screen, QuitGridScreen | ConfirmScreen):
            return
        state = self.run_state
        assert state is not None
        self.push_screen(
            QuitGridScreen(
                "Quit hbt-tui while the grid runs?",
                f"{state.name} runs in its own process and goes on without hbt-tui: attach to it again from History "
                f"(4, then a) or see it with `hbt-bench status {display_path(state.out)}`. Or stop it first: cells "
                "in training stop after their current step (checkpointed), a cell being evaluated at once (its trained "
                "model is kept); History (u) resumes the grid.",
            ),
            self._quit_answered,
        )

    def _quit_answered(self, answer: str | None) -> None:
        if answer == "keep" or (answer == "stop" and not self.grid_running):
            self.exit()
        elif answer == "stop":
            self.quitting = True
            self.cancel_run()
            self.notify("quitting once the grid has stopped (ctrl+q again: now; it goes on stopping)", title="quit")

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
                stop_text(state),
                yes="Stop grid",
            ),
            lambda yes: self.cancel_run() if yes else None,
        )

    def on_unmount(self) -> None:
        if self._poller is not None:
            self._poller.stop()

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
            yield SystemCommand("Detach from the grid", f"{state.name} goes on without hbt-tui", self.detach)
        if state is not None:
            yield SystemCommand(
                "Open results of the current grid", str(state.out), partial(self.open_results, state.out)
            )
        history = self.section("history")
        if isinstance(history, HistoryScreen) and history.is_mounted and (row := history.selected()) is not None:
            yield SystemCommand("Open the selected run in Results", f"History: {row.name}", history.action_open)
            if row.kind == "grid":
                yield SystemCommand("Resume the selected grid", f"History: {row.name}", history.action_resume)
                yield SystemCommand("Attach to the selected grid", f"History: {row.name}", history.action_attach)
            yield SystemCommand("Reindex History", "rebuild the results index of the runs root", history.action_reindex)
        results = self.section("results")
        if isinstance(results, ResultsScreen) and results.is_mounted and results.report is not None:
            # (start-up: statsmodels, scipy)
            from .screens.results import TABS

            for fmt, name in EXPORT_FORMAT_NAMES.items():
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

    def on_attach_grid(self, message: AttachGrid) -> None:
        self.attach(message.out)

    def launch(self, preset: Preset, out: Path, resume: bool = False) -> bool:
        """Start the grid's own submitting process and follow it (resume: the grid keeps its recorded executor)."""
        if self.grid_running:
            self.notify("a grid is already running here: stop it (ctrl+c) or detach (d) first", severity="warning")
            return False
        state = self._new_state(preset.name, Path(out), preset.run.batch_size)
        for backbone, strategy, seed in preset.cells():
            state.add_cell(self.backend.cell_id(backbone, strategy, seed), backbone or "default", strategy, seed)
        where = "" if resume else f" on {preset.executor.describe()}"
        state.log(f"grid {preset.name}: {len(state.cells)} cells → {display_path(out)}{where}" + " (resumed)" * resume)
        if resume:
            state.seed(self.backend.grid_snapshot(Path(out)))
        self._show(state)
        try:
            self.grid_process = self.backend.launch_grid(preset, Path(out), resume=resume, keep_executor=resume)
        except (OSError, UserError) as exc:
            state.finish("failed", error_text(exc))
            self.show_error(exc, title="grid failed")
            return False
        state.log(f"submitting process started (pid {self.grid_process.pid}): the grid runs outside hbt-tui")
        self._start_following(Path(out))
        return True

    def attach(self, out: Path) -> bool:
        """Follow a grid started elsewhere (hbt-bench run, another terminal): its cells from their folders, from
        the start of each one's events; quitting or detaching leaves it running."""
        if self.grid_running:
            self.notify("a grid is already followed here: detach (d) first", severity="warning")
            return False
        try:
            preset = self.backend.grid_preset(Path(out))
        except UserError as exc:
            self.show_error(exc, title="cannot attach")
            return False
        state = self._new_state(preset.name, Path(out), preset.run.batch_size)
        for backbone, strategy, seed in preset.cells():
            state.add_cell(self.backend.cell_id(backbone, strategy, seed), backbone or "default", strategy, seed)
        state.log(f"attached to {display_path(out)} (started elsewhere; detach with d, the grid goes on)")
        self.grid_process = None
        self._show(state)
        self._start_following(Path(out))
        return True

    def detach(self) -> None:
        """Stop following the grid; it goes on in its own process (History: a attaches again)."""
        state = self.run_state
        if state is None or not state.running:
            return
        self._stop_following()
        self.grid_process = None
        state.finish("detached")
        self._updated(state.log(f"detached: the grid goes on; History (4, then a) attaches to {state.name} again"))

    def _new_state(self, name: str, out: Path, batch_size: int) -> RunState:
        return RunState(name=name, out=out, batch_size=batch_size, started_at=self.now())

    def _show(self, state: RunState) -> None:
        self.run_state = state
        self.quitting = False
        self.switch_mode("run")
        run = self.section("run")
        if isinstance(run, RunScreen) and run.is_mounted:
            run.rebuild()

    def _start_following(self, out: Path) -> None:
        self.follower = self.backend.follow(out)
        if self._poller is None:
            self._poller = self.set_interval(self.poll_s, self.poll_grid)
        else:
            self._poller.resume()
        self.call_after_refresh(self.poll_grid)  # (once the Run screen it draws on is composed)

    def _stop_following(self) -> None:
        self.follower = None
        if self._poller is not None:
            self._poller.pause()

    def poll_grid(self) -> None:
        """Fold what the grid folder gained since the last poll; settle the grid once its process has ended."""
        state, follower = self.run_state, self.follower
        if state is None or follower is None:
            return
        # whether the process has ended is asked BEFORE the folder is read: what it wrote before it ended is then
        # in this poll (asked after, its last cell's events could land between the two and the cell be lost)
        ended = self._ended()
        update = follower.poll()
        finished_cell = False
        lines = []
        for event in update.events:
            if (line := state.apply(event)) is not None:
                lines.append(line)
            finished_cell |= isinstance(event, RunFinished)
        placed = {cid: (c.executor, c.job_id, c.node) for cid, c in state.cells.items()}
        state.place(update.jobs)
        moved = placed != {cid: (c.executor, c.job_id, c.node) for cid, c in state.cells.items()}
        if update.events or moved:  # (nothing new: nothing to redraw, the keys keep the frames)
            self._updated_many(lines)
        if finished_cell:
            self._follow()
        if ended is not None:
            self._grid_done(*ended)

    def _ended(self) -> tuple[str, str] | None:
        """(status, error) once the grid's process has ended: its exit code when this TUI started it, else what
        grid.json says (or that its submitter is gone)."""
        if self.grid_process is not None:
            code = self.grid_process.poll()
            if code is None:
                return None
            error = self.grid_process.error_line()  # (exit 1 with a line: an internal error; without: a cell failed)
            status = {0: "complete", 1: "failed" if error else "complete", 130: "cancelled"}.get(code, "failed")
            if status == "failed" and not error:
                error = f"the grid's process exited with code {code}"
            return status, error
        assert self.follower is not None
        return self.follower.ended()

    def _grid_done(self, status: str, error: str) -> None:
        state = self.run_state
        assert state is not None
        self._stop_following()
        self.grid_process = None
        if status == "cancelled" or (status != "complete" and state.status == "cancelling"):
            status = "cancelled"
        state.finish(status, error)
        counts = state.counts()
        done, failed = counts.get("complete", 0), counts.get("failed", 0)
        text = f"grid {status}: {done} complete, {failed} failed → {display_path(state.out)}"
        warn = bool(failed) or status != "complete"
        self._updated(state.log(text, "warning" if warn else "result"))
        if error:
            self._updated(state.log(error, "error"))
            self.errors.append(error)
            self.notify(error, title=f"grid {status}", severity="error", timeout=10)
        else:
            self.notify(text, title="grid", severity="warning" if warn else "information")
        self._follow()
        if self.quitting:
            self.exit()

    def _follow(self) -> None:
        """Results showing the running grid reloads it (a cell finished, or the grid ended)."""
        results = self.section("results")
        if self.run_state is not None and isinstance(results, ResultsScreen):
            results.follow(self.run_state.out)

    def cancel_run(self) -> None:
        """Stop the grid: its submitting process is asked (SIGINT), or its jobs are cancelled directly."""
        state = self.run_state
        if state is None or state.status != "running":
            return
        state.status = "cancelling"
        self._updated(state.log(stop_text(state, asked=True), "warning"))
        self._cancel_grid(state.out)

    @work(thread=True, group="cancel", exit_on_error=False)
    def _cancel_grid(self, out: Path) -> str:
        return self.backend.cancel_grid(out)  # (scancel, a Ray connection: may take seconds, never in the UI)

    def _updated(self, line: LogLine | None) -> None:
        self._updated_many([line] if line is not None else [])

    def _updated_many(self, lines: list[LogLine]) -> None:
        run = self.section("run")
        if isinstance(run, RunScreen) and run.is_mounted:
            run.apply_lines(lines)
        if isinstance(self.screen, SectionScreen) and self.screen.is_mounted and self.screen is not run:
            self.screen.update_status()  # the section in view shows the grid's progress in its top bar too

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The app's own workers (worker messages do not bubble: each screen handles its own the same way)."""
        worker = event.worker
        state = self.run_state
        if worker.group == "cancel" and event.state == WorkerState.SUCCESS and state is not None:
            self._updated(state.log(str(worker.result), "warning"))
        elif event.state == WorkerState.ERROR:
            self.show_error(worker.error, title=f"{worker.group or worker.name} failed")

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
    parser.add_argument("--attach", default=None, metavar="GRID", help="follow a grid started elsewhere on Run")
    parser.add_argument("--light", action="store_true", help="start with the light theme")
    return parser.parse_args(argv)


_SCREENS_SEE: type[AppHost] = HbtApp  # mypy holds the app to what the screens use of it (host.AppHost)


def entry(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    app = HbtApp(
        runs_root=args.runs_root,
        data_dir=args.data_dir,
        start_preset=args.preset,
        open_path=args.open,
        theme=LIGHT if args.light else DARK,
        attach_path=args.attach,
    )
    app.run()
    state = app.run_state
    if state is not None and state.running:  # quit while it runs: it goes on in its own process
        going = "goes on stopping" if state.status == "cancelling" else "goes on"
        print(f"hbt-tui: the grid {going} without hbt-tui: hbt-bench status {state.out}", file=sys.stderr)


main = entry  # the name older installs of the console script call


if __name__ == "__main__":
    entry()
