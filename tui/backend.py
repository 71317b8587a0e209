"""Everything the TUI asks of the engine, in one place (the engine's public API only; the engine never imports this).

Screens talk to a `Backend`; tests hand the app a subclass that fakes the slow or changing parts (the grid runner,
the preset catalogue) so that the UI flow runs for real without a model.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..engine.common.errors import ConfigError, UserError
from ..engine.common.text import safe
from ..engine.common.vocabulary import EXPORT_FORMAT_FILES
from ..engine.data.registry import DATASETS
from ..engine.evaluation.results import first_dataset, headline
from ..engine.runs import presets
from ..engine.runs.control import GridFollower, cancel_grid
from ..engine.runs.executor import ExecutorSpec, check_installed, validate
from ..engine.runs.grid_doc import peek_grid, read_grid
from ..engine.runs.jobs import submitter_alive
from ..engine.runs.presets import Preset, apply_overrides, cell_id, load_preset, preset_to_dict
from ..engine.runs.rundir import RunDir
from ..engine.runs.store import ResultsStore
from .run_state import CellSnapshot

if TYPE_CHECKING:
    from ..engine.runs.control import GridFollower


class GridProcess(Protocol):
    """A grid's submitting process as the TUI sees it."""

    pid: int

    def poll(self) -> int | None: ...  # its exit code once it has ended

    def error_line(self) -> str: ...  # the one line it printed when it failed ("" when none)


class SubmitProcess:
    """The submitting process the TUI started; its stderr (one line on failure) is drained without blocking."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.pid = proc.pid
        self._err = b""
        if proc.stderr is not None:
            os.set_blocking(proc.stderr.fileno(), False)

    def _drain(self) -> None:
        if self.proc.stderr is None:
            return
        with contextlib.suppress(OSError, ValueError):
            while chunk := self.proc.stderr.read(65536):
                self._err = (self._err + chunk)[-8192:]

    def poll(self) -> int | None:
        self._drain()
        code = self.proc.poll()
        if code is not None:
            self._drain()
        return code

    def error_line(self) -> str:
        lines = [line for line in self._err.decode("utf-8", "replace").splitlines() if line.strip()]
        return safe(lines[-1].removeprefix("hbt: ")) if lines else ""


DATASET_FOLDERS = {"miracl-judged": "miracl"}  # the folder under the data dir, where it is not the dataset's name


@dataclass(frozen=True)
class PresetInfo:
    """One row of the preset picker; `error` when the preset file cannot be loaded right now."""

    name: str
    description: str
    n_cells: int
    error: str = ""


@dataclass(frozen=True)
class BackboneInfo:
    name: str
    offline: bool | None  # None: unknown (the backbone registry could not tell)
    note: str = ""


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    languages: tuple[str, ...]
    parallel: bool


@dataclass
class GridChoices:
    """What the Setup screen collects. None means "the preset's value" unless said otherwise."""

    backbones: list[str | None]  # None: the engine's default backbone
    strategies: list[str]
    baseline: bool
    hybrid_p: float | str | list[float] | None
    langs: list[str] | None  # None: every language of the evaluation datasets
    train_langs: list[str] | None  # None: every language of the training set
    train_data: str
    eval_data: list[str]
    data_dir: str | None  # None: $HBT_DATA_DIR, else fetched online
    steps: int | None
    batch_size: int | None
    max_queries: int | None  # None: every query
    seeds: list[int] = field(default_factory=lambda: [0])
    executor: ExecutorSpec | None = None  # None: the preset's [executor] (local when it has none)
    settings: dict[str, Any] = field(default_factory=dict)  # the other [run] settings the form gave (Setup's "more")


def error_text(exc: BaseException) -> str:
    """One line for the user: a UserError's own message, anything else prefixed with its type."""
    if isinstance(exc, UserError):
        return safe(str(exc))
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return safe(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)


def default_data_dir() -> str | None:
    """$HBT_DATA_DIR, else ../shared/data when that folder exists, else None (online)."""
    env = os.environ.get("HBT_DATA_DIR")
    if env:
        return env
    shared = Path("..") / "shared" / "data"
    return str(shared) if shared.is_dir() else None


def display_path(path: Path | str) -> str:
    """A path as the user typed it would look: relative to the working folder when under it."""
    p = Path(path)
    if not p.is_absolute():
        return safe(p)
    try:
        return safe(p.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return safe(p)  # folder names are shown with control characters escaped


class Backend:
    """The engine as the TUI sees it. Every method may raise a UserError with a one-line message."""

    # ---- catalogue ---------------------------------------------------------------------------------------------

    def presets(self) -> list[PresetInfo]:
        try:
            return [PresetInfo(name, desc, n) for name, desc, n in presets.list_presets()]
        except Exception:  # one broken preset must not hide the others: load them one by one
            rows = []
            for path in sorted(presets.builtin_dir().glob("*.toml")):
                try:
                    p = presets.load_preset(str(path))
                    rows.append(PresetInfo(path.stem, p.description, len(p.cells())))
                except Exception as exc:
                    rows.append(PresetInfo(path.stem, "", 0, error_text(exc)))
            return rows

    def load_preset(self, name: str) -> Preset:
        return load_preset(name)

    def blank_preset(self) -> Preset:
        """The starting point of a grid built by hand (engine defaults)."""
        return Preset(name="custom", description="built in the TUI", backbones=[None])

    def backbones(self) -> list[BackboneInfo]:
        try:
            # (optional: its absence is handled here)
            from ..engine.backbones import list_backbones
        except ImportError:
            return []
        try:
            rows = list_backbones()
        except Exception:
            return []
        out = []
        for row in rows:
            offline = row.get("available_offline_now")
            note = str(row.get("description") or row.get("note") or row.get("notes") or "")
            out.append(BackboneInfo(str(row["name"]), None if offline is None else bool(offline), note))
        return out

    def datasets(self) -> list[DatasetInfo]:
        return [DatasetInfo(s.name, tuple(s.languages), bool(s.parallel)) for s in DATASETS.values()]

    def default_data_dir(self) -> str | None:
        return default_data_dir()

    def dataset_local(self, name: str, data_dir: str | None) -> bool | None:
        """Whether `data_dir` holds dataset `name` (its folder, as the engine's registry lays it out, with a file in
        it); None when there is no usable data dir (the engine then fetches online)."""

        if not data_dir or not Path(data_dir).expanduser().is_dir() or name not in DATASETS:
            return None
        folder = Path(data_dir).expanduser() / DATASET_FOLDERS.get(name, name)
        try:
            return folder.is_dir() and any(p.is_file() for p in folder.rglob("*"))
        except OSError:
            return False

    # ---- building a grid ---------------------------------------------------------------------------------------

    def build(self, base: Preset, choices: GridChoices) -> Preset:
        """The preset `base` with the Setup screen's choices applied and validated by the engine's one path
        (`apply_overrides`: the grid's checks and `check_config` for every strategy); a UserError whose `key` names
        the field at fault when invalid. Only an empty choice is refused here, in the screen's own words."""

        if not choices.backbones:
            raise ConfigError("pick at least one backbone", key="backbones")
        if not choices.eval_data:
            raise ConfigError("pick at least one evaluation dataset", key="eval_data")
        if not choices.strategies and not choices.baseline:
            raise ConfigError("nothing to run: pick a strategy or keep the untrained baseline", key="strategies")
        if not choices.seeds:
            raise ConfigError("seeds: give at least one integer", key="seeds")
        run = replace(
            base.run,
            train_data=choices.train_data,
            eval_data=list(choices.eval_data),
            langs=choices.langs,
            train_langs=choices.train_langs,
            max_queries=choices.max_queries,
            data_dir=choices.data_dir,
        )
        preset = replace(base, baseline=choices.baseline, run=run)
        preset = apply_overrides(
            preset,
            name_flags=False,
            hybrid_p=choices.hybrid_p,  # a number, 'proportional' or an alpha sweep (a list)
            seeds=choices.seeds,
            backbones=list(choices.backbones),
            strategies=list(choices.strategies),
            steps=choices.steps,
            batch_size=choices.batch_size,
            **choices.settings,
        )
        if choices.executor is not None:
            preset = replace(preset, executor=validate(choices.executor))
        check_installed(preset.executor)  # the extra installed, sbatch on PATH (a Ray head is asked at launch)
        return preset

    # ---- running: every grid runs in its own submitting process; the TUI follows its folder ---------------------

    def launch_grid(self, preset: Preset, out: Path, resume: bool = False, keep_executor: bool = False) -> GridProcess:
        """Start the grid's submitting process (`python -m hbt.engine.runs.submit`), never inside the TUI: its own
        session, so it outlives the TUI (quit, detach) and a Ctrl-C in the terminal does not reach it."""

        command = [sys.executable, "-m", "hbt.engine.runs.submit", "--out", str(out)]
        command += ["--resume"] * resume + ["--keep-executor"] * keep_executor
        proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(preset_to_dict(preset)).encode())
        proc.stdin.close()
        return SubmitProcess(proc)

    def follow(self, grid: Path) -> GridFollower:
        return GridFollower(grid)

    def grid_live(self, grid: Path) -> bool:
        """Whether the grid's submitting process still runs here (a resume would be a second runner: attach)."""

        doc = peek_grid(grid)
        return doc is not None and submitter_alive(doc.raw) is True

    def cancel_grid(self, grid: Path) -> str:
        """Stop a grid (launched here or elsewhere): its submitter is asked, or its jobs are cancelled directly."""

        return cancel_grid(grid)

    def grid_preset(self, grid: Path) -> Preset:
        """The preset a grid directory was started with (its grid.json), to resume it as it began."""

        grid_doc = read_grid(grid)  # (checked: a resume must not start from a damaged grid.json)
        return replace(grid_doc.preset_of(str(grid / "grid.json")), name=safe(grid_doc.preset or grid.name))

    def grid_snapshot(self, grid: Path) -> list[CellSnapshot]:
        """The state of every cell of a grid directory before it is resumed: complete cells (the engine's own
        `RunDir.is_complete`, which a resume skips) with their headline metrics and loss curve, the others with the
        status and reason their run.json recorded ("pending" when the cell never started)."""

        grid_doc = peek_grid(grid)
        out: list[CellSnapshot] = []
        for cell in grid_doc.cells if grid_doc is not None else []:
            cid, run = cell.id, RunDir(grid / cell.dir)
            if not run.path.is_dir():
                out.append(CellSnapshot(cid, "pending"))
                continue
            status = run.status()
            recorded = status.get("step")
            step = recorded if isinstance(recorded, int) else 0
            complete = run.complete_results(status)
            if complete is None:
                state = str(status.get("status") or "interrupted")
                out.append(CellSnapshot(cid, state, str(status.get("error") or ""), step))
                continue
            metrics: dict[str, float] = {}
            curve: list[tuple[int, float]] = []
            try:
                results, datasets = complete
                first = first_dataset(datasets, results.get("config", {}).get("eval_data") or [])
                metrics = {k: v for k, v in headline(datasets[first]).items() if v is not None}
                training = results.get("training") or {}
                curve = [(int(x), float(y)) for x, y in training.get("loss_curve") or []]
                step = int(training.get("steps") or (curve[-1][0] if curve else 0))
            except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError):
                pass  # complete by the engine's rule; its numbers are shown by Results
            out.append(CellSnapshot(cid, "complete", step=step, metrics=metrics, loss_curve=curve))
        return out

    def cell_id(self, backbone: str | None, strategy: str, seed: int) -> str:
        return cell_id(backbone, strategy, seed)

    # ---- results -----------------------------------------------------------------------------------------------

    def load_report(self, path: Path) -> Any:
        # (start-up: statsmodels, scipy)
        from .report import load_report

        return load_report(path)

    def export(self, path: Path, fmt: str) -> Path:
        # (start-up: statsmodels, scipy)
        from ..engine.report.export import export

        if fmt not in EXPORT_FORMAT_FILES:
            raise ConfigError(f"unknown format {fmt!r} (allowed: {', '.join(EXPORT_FORMAT_FILES)})")
        output = path / EXPORT_FORMAT_FILES[fmt]  # the file each export writes into the grid folder
        export(path, fmt, output)
        return output

    def list_runs(self, root: Path, reindex: bool = False) -> list[dict[str, Any]]:
        store = ResultsStore(root)
        if not root.is_dir():
            raise UserError(f"runs root {root} does not exist or is not a folder")
        if reindex:
            store.reindex()
        else:
            store.refresh()
        return store.list_runs()
