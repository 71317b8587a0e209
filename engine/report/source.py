"""What a report reads: one run directory or a grid directory of cells, loaded tolerantly.

A torn or missing results.json / per_query.json never raises here: the cell is kept with a `problem` and the
report skips it with a note. Only a path that is neither a run nor a grid directory is a user error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from ..common.errors import UserError
from ..common.events import TrainStep, read_events
from ..common.io import read_json_object
from ..common.vocabulary import BASELINE, arm_name
from ..evaluation.results import DatasetSummary, evaluation_max_length, read_datasets
from ..runs.grid_doc import GRID_FILE, GridCell, peek_grid
from ..runs.rundir import RunDir


def _read_results(doc: dict[str, Any]) -> tuple[dict[str, DatasetSummary], str | None]:
    """Every dataset's summary, or ({}, why the file is malformed) (results.DatasetSummary.from_json's reason)."""
    try:
        return read_datasets(doc), None
    except ValueError as exc:
        return {}, str(exc) if str(exc).startswith("results.json") else f"results.json {exc}"


@dataclass
class Cell:
    """One run directory: its identity (from grid.json or config.json) and, when readable, its results."""

    id: str
    path: Path
    backbone: str
    strategy: str
    seed: int
    status: str
    results: dict[str, Any] | None = None
    problem: str | None = None  # why there are no usable results
    summaries: dict[str, DatasetSummary] = field(default_factory=dict)  # results.json's datasets, validated
    hybrid_p: float | None = None  # the cell's alpha in an alpha sweep (grid.json), else None

    @property
    def arm(self) -> str:
        """What the report compares: the strategy, or 'hybrid-a0.25' for one alpha of a sweep."""
        return arm_name(self.strategy, self.hybrid_p)

    @property
    def eval_max_length(self) -> int | None:
        """The token length its evaluation texts were cut at (results.json), None when not recorded."""

        return evaluation_max_length(self.results or {})

    @property
    def run(self) -> RunDir:
        return RunDir(self.path)

    @property
    def ok(self) -> bool:
        return self.results is not None

    @cached_property
    def datasets(self) -> dict[str, DatasetSummary]:
        """Each evaluation dataset's summary (the typed results model), in results.json's order."""
        if self.summaries or self.results is None:
            return self.summaries
        return _read_results(self.results)[0]  # a Cell made from a results document

    @cached_property
    def per_query(self) -> dict[str, Any] | None:
        """per_query.json ({dataset: {setting key: {query id: AP}}}), or None when missing or torn."""
        doc, _ = read_json_object(self.run.per_query_file)
        return doc

    @cached_property
    def loss_curve(self) -> list[tuple[int, float]]:
        """(step, loss) from results.json training.loss_curve, else from events.jsonl TrainStep events."""
        training = (self.results or {}).get("training")
        if isinstance(training, dict):
            try:
                curve = [(int(s), float(v)) for s, v in training.get("loss_curve") or []]
            except (TypeError, ValueError):
                curve = []
            if curve:
                return curve
        steps = [e for e in read_events(self.run.events_file) if isinstance(e, TrainStep)]
        return [(e.step, float(e.loss)) for e in steps]


@dataclass
class Source:
    """A run directory (kind 'run', one cell) or a grid directory (kind 'grid')."""

    path: Path
    kind: str
    name: str
    cells: list[Cell] = field(default_factory=list)
    margin: float | None = None  # grid.json's noninferiority_margin (the claims' margin), None: the default

    @property
    def complete(self) -> list[Cell]:
        return [c for c in self.cells if c.ok]

    @property
    def skipped(self) -> list[Cell]:
        return [c for c in self.cells if not c.ok]

    def backbones(self) -> list[str]:
        return list(dict.fromkeys(c.backbone for c in self.cells))

    def datasets(self) -> list[str]:
        """Evaluation datasets, in the order the cells list them."""
        names: dict[str, None] = {}
        for cell in self.complete:
            for name in cell.datasets:
                names.setdefault(name, None)
        return list(names)


def is_run_dir(path: Path) -> bool:
    """A run directory has config.json and at least one of run.json, results.json, events.jsonl."""
    run = RunDir(path)
    return run.config_file.is_file() and any(p.is_file() for p in (run.status_file, run.results_file, run.events_file))


def load_cell(path: Path, entry: GridCell | None = None) -> Cell:
    """Load one run directory; `entry` is its grid.json cell (identity wins over config.json when given)."""
    run = RunDir(path)
    config, _ = read_json_object(run.config_file)
    results, problem = read_json_object(run.results_file)
    summaries: dict[str, DatasetSummary] = {}
    if results is not None:
        summaries, problem = _read_results(results)
        if problem:
            results = None
    config = config or dict((results or {}).get("config") or {})
    try:
        status = str(run.status().get("status", "interrupted"))
    except (OSError, ValueError, AttributeError):  # run.json unreadable or not an object
        status = "interrupted"
    if not path.is_dir():
        problem = "not run yet (no run directory)"  # a planned cell that never started is pending, not lost
    elif results is None and run.results_file.exists():
        if status in ("complete", "running"):
            status = "interrupted"  # a torn or malformed results file: the run did not finish writing it
    elif results is None:
        problem = f"no results ({status})"
    if entry is not None:
        return Cell(entry.id, path, str(entry.backbone or config.get("backbone") or "default"), entry.strategy,
                    entry.seed, status, results, problem, summaries, hybrid_p=entry.hybrid_p)  # fmt: skip
    try:
        seed = int(config.get("seed", 0) or 0)
    except (TypeError, ValueError):
        seed = 0
    return Cell(
        id=str((results or {}).get("run_id") or path.name),
        path=path,
        backbone=str(config.get("backbone") or "default"),
        strategy=str(config.get("strategy") or BASELINE),
        seed=seed,
        status=status,
        results=results,
        problem=problem,
        summaries=summaries,
    )


def load_source(path: str | Path) -> Source:
    """Load a grid directory (grid.json) or a run directory (config.json); anything else is a UserError."""
    root = Path(path)
    if not root.exists():
        raise UserError(f"{root} does not exist")
    if not root.is_dir():
        raise UserError(f"{root} is not a run or grid directory (it is a file)")
    grid_file = root / GRID_FILE
    if grid_file.is_file():
        grid = peek_grid(root)  # (a report reads what it can: cells it cannot read are left out)
        if grid is None:
            _, why = read_json_object(grid_file)
            raise UserError(f"{grid_file} is not a valid grid file ({why or 'no cells list'})")
        cells = [load_cell(root / cell.dir, cell) for cell in grid.cells]
        return Source(root, "grid", grid.preset or root.name, cells, grid.noninferiority_margin)
    if is_run_dir(root):
        return Source(root, "run", root.name, [load_cell(root)])
    raise UserError(f"{root} is not a run or grid directory (no grid.json or config.json with run.json)")


def require_results(source: Source) -> list[Cell]:
    """The cells with usable results; a UserError (one line) when there are none."""
    cells = source.complete
    if not cells:
        if source.kind == "run":
            cell = source.cells[0]
            raise UserError(f"run {source.path} has no results: {cell.problem or cell.status}")
        raise UserError(f"grid {source.path} has no finished cell with results yet ({len(source.cells)} cells)")
    return cells
