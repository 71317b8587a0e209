"""grid.json, the one module that writes and reads it. A grid document as types: `GridDoc` (the preset's name and
settings, where its cells run, the submitting process, the stack) and `GridCell` (one cell: backbone, strategy, seed,
folder, an alpha sweep's alpha, its job); `CellState` is a cell as its folder says it is now. The runner, the CLI
(`status`, `cancel`, `show`), the report and the TUI read grid.json through here: `read_grid` checks it as untrusted
input (one line naming the file), `peek_grid` is for followers that must not stop on a half-written or foreign file.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..common.errors import UserError
from ..common.io import read_json, read_json_object
from ..common.run_config import RunConfig
from ..common.vocabulary import BASELINE, parse_arm
from .executor import ExecutorSpec
from .jobs import JobRecord
from .presets import Preset, cell_id, check_run_types
from .rundir import RunDir

GRID_SCHEMA = "hbt.grid/1"
GRID_FILE = "grid.json"


@dataclass(frozen=True)
class GridCell:
    """One cell of a grid as grid.json lists it."""

    id: str
    backbone: str | None
    strategy: str
    seed: int
    dir: str  # relative to the grid folder
    hybrid_p: float | None = None  # an alpha sweep's cell carries its alpha
    job: JobRecord | None = None  # where it was submitted (executors other than local)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GridCell:
        alpha = data.get("hybrid_p")
        return cls(
            id=str(data["id"]),
            backbone=data.get("backbone"),
            strategy=str(data["strategy"]),
            seed=int(data["seed"]),
            dir=str(data["dir"]),
            hybrid_p=None if alpha is None else float(alpha),
            job=JobRecord.from_dict(data.get("job")),
        )

    def config(self, base: RunConfig) -> RunConfig:
        """The run settings of this cell: the grid's, with the cell's backbone, strategy, seed (and alpha)."""
        config = replace(base, backbone=self.backbone, strategy=self.strategy, seed=self.seed)
        return config if self.hybrid_p is None else replace(config, hybrid_p=self.hybrid_p)


@dataclass
class GridDoc:
    """grid.json as types; `raw` is the document itself (what the submitting process updates and writes back)."""

    preset: str
    run: dict[str, Any]
    cells: list[GridCell]
    executor: dict[str, Any] | None = None
    submitter: dict[str, Any] = field(default_factory=dict)
    noninferiority_margin: float | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GridDoc:
        margin = data.get("noninferiority_margin")
        return cls(
            preset=str(data.get("preset", "")),
            run=dict(data["run"]) if isinstance(data.get("run"), dict) else {},
            cells=[GridCell.from_dict(c) for c in data["cells"]],
            executor=data.get("executor") if isinstance(data.get("executor"), dict) else None,
            submitter=dict(data["submitter"]) if isinstance(data.get("submitter"), dict) else {},
            noninferiority_margin=float(margin) if isinstance(margin, int | float) and not isinstance(margin, bool)
            else None,
            raw=data,
        )  # fmt: skip

    def preset_of(self, source: str) -> Preset:
        """The preset the grid was started with (to resume it as it began)."""
        trained = [c for c in self.cells if c.strategy != BASELINE]
        return Preset(
            name=self.preset,
            backbones=list(dict.fromkeys(c.backbone for c in self.cells)),
            strategies=list(dict.fromkeys(c.strategy for c in trained)),
            seeds=list(dict.fromkeys(c.seed for c in trained)) or [self.cells[0].seed],
            baseline=any(c.strategy == BASELINE for c in self.cells),
            run=RunConfig.from_dict(self.run),
            source=source,
        )


def grid_document(preset: Preset, executor: ExecutorSpec | None = None) -> dict[str, Any]:
    """A new grid.json: the preset's settings, where its cells run and every cell; a cell of an alpha sweep carries its
    own `hybrid_p`."""
    cells = []
    for backbone, arm, seed in preset.cells():
        cid = cell_id(backbone, arm, seed)
        strategy, alpha = parse_arm(arm)
        cell = {"id": cid, "backbone": backbone, "strategy": strategy, "seed": seed, "dir": f"cells/{cid}"}
        cells.append(cell if alpha is None else {**cell, "hybrid_p": alpha})
    doc = {
        "schema": GRID_SCHEMA,
        "preset": preset.name,
        "source": preset.source,
        "created": time.time(),
        "run": preset.run.to_dict(),
        "executor": (executor or preset.executor).to_dict(),
        "cells": cells,
    }
    if preset.noninferiority_margin is not None:
        doc["noninferiority_margin"] = preset.noninferiority_margin
    return doc


def _bad(out: Path, what: str) -> UserError:
    return UserError(f"{out / GRID_FILE}: {what} (the grid folder's grid.json was edited or damaged)")


def read_grid(out: Path) -> GridDoc:
    """grid.json, checked as untrusted input: every problem is a one-line UserError naming the file; each cell's
    `dir` must stay inside the grid folder."""
    try:
        doc = read_json(out / GRID_FILE)
    except (OSError, ValueError) as exc:
        raise UserError(f"{out / GRID_FILE} is empty or not JSON ({type(exc).__name__}): cannot resume it") from None
    if not isinstance(doc, dict) or doc.get("schema") != GRID_SCHEMA:
        raise _bad(out, f"not a grid (expected an object with schema {GRID_SCHEMA!r})")
    if not isinstance(doc.get("preset"), str):
        raise _bad(out, "'preset' should be a string")
    if not isinstance(doc.get("run"), dict):
        raise _bad(out, "'run' should be an object")
    try:
        check_run_types(doc["run"], "[run]")
        RunConfig.from_dict(doc["run"]).validate()
    except (TypeError, ValueError, UserError) as exc:
        raise _bad(out, str(exc) if str(exc).startswith("[run]") else f"[run] {exc}") from None
    cells = doc.get("cells")
    if not isinstance(cells, list):
        raise _bad(out, "'cells' should be a list")
    root = out.resolve()
    kinds = {"id": str, "strategy": str, "seed": int, "dir": str}
    for i, cell in enumerate(cells):
        if not isinstance(cell, dict):
            raise _bad(out, f"cells[{i}] should be an object")
        for key, kind in kinds.items():
            value = cell.get(key)
            if not isinstance(value, kind) or isinstance(value, bool):
                raise _bad(out, f"cells[{i}].{key} should be {kind.__name__}, got {value!r}")
        if cell.get("backbone") is not None and not isinstance(cell["backbone"], str):
            raise _bad(out, f"cells[{i}].backbone should be a string")
        alpha = cell.get("hybrid_p")
        if alpha is not None and (isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 <= alpha <= 1):
            raise _bad(out, f"cells[{i}].hybrid_p should be a number in [0, 1], got {alpha!r}")
        if cell.get("job") is not None and JobRecord.from_dict(cell["job"]) is None:
            raise _bad(out, f"cells[{i}].job should be a job record (executor, id, node, ...)")
        target = (out / cell["dir"]).resolve()
        if not cell["dir"].strip() or Path(cell["dir"]).is_absolute() or root not in target.parents:
            raise _bad(out, f"cells[{i}].dir {cell['dir']!r} leaves the grid folder")
    if doc.get("executor") is not None and not isinstance(doc["executor"], dict):
        raise _bad(out, "'executor' should be an object")
    return GridDoc.from_dict(doc)


def peek_grid(out: Path) -> GridDoc | None:
    """grid.json for a follower (the TUI, a status line): None when it is missing, half-written or not a grid; cells
    it cannot read are left out rather than stopping the reader."""
    doc, _ = read_json_object(out / GRID_FILE)
    if doc is None or not isinstance(doc.get("cells"), list):
        return None
    cells = []
    for cell in doc["cells"]:
        try:
            cells.append(GridCell.from_dict(cell))
        except (KeyError, TypeError, ValueError):
            continue
    return replace(GridDoc.from_dict({**doc, "cells": []}), cells=cells, raw=doc)


@dataclass(frozen=True)
class CellState:
    """A grid cell as its folder says it is now."""

    id: str
    dir: str
    status: str  # complete (a valid results.json) | pending (never started) | what run.json says
    error: str = ""


def cell_states(out: Path) -> list[CellState]:
    """Every cell of the grid at `out`, in the grid's order (none when grid.json cannot be read)."""
    try:
        doc = read_grid(out)
    except UserError:
        return []
    states = []
    for cell in doc.cells:
        run = RunDir(out / cell.dir)
        status = run.status()
        state = "complete" if run.is_complete() else str(status.get("status") or "pending")
        if state == "complete" or not run.path.exists():
            state = "complete" if state == "complete" else "pending"
        error = status.get("error")
        states.append(CellState(cell.id, cell.dir, state, error if isinstance(error, str) else ""))
    return states
