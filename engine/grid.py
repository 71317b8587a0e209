"""A grid: every cell (backbone x strategy x seed, plus untrained baselines) as a run directory."""

from __future__ import annotations

import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from hbt.engine.config import RunConfig
from hbt.engine.errors import UserError
from hbt.engine.events import EventBus
from hbt.engine.interrupts import Cancelled
from hbt.engine.io import read_json, write_json
from hbt.engine.presets import Preset, cell_id
from hbt.engine.rundir import RunDir
from hbt.engine.train import NonFiniteLoss

GRID_SCHEMA = "hbt.grid/1"


def grid_document(preset: Preset) -> dict[str, Any]:
    cells = []
    for backbone, strategy, seed in preset.cells():
        cid = cell_id(backbone, strategy, seed)
        cells.append({"id": cid, "backbone": backbone, "strategy": strategy, "seed": seed, "dir": f"cells/{cid}"})
    return {
        "schema": GRID_SCHEMA,
        "preset": preset.name,
        "source": preset.source,
        "created": time.time(),
        "run": preset.run.to_dict(),
        "cells": cells,
    }


def run_grid(
    preset: Preset, out: Path, bus: EventBus, resume: bool = False, cancel: Any = None, runner: Any = None
) -> dict[str, int]:
    """Run every cell not yet complete. A cell whose loss goes NaN, or that crashes, is marked failed and the grid
    goes on; a user error (bad data dir, offline) stops the grid, since every cell would meet it. `runner` runs a
    cell (default: in this process; `hbt.engine.launch.LaunchedRunner` under torchrun / accelerate)."""
    from hbt.engine.run import check_config, execute

    grid_file = out / "grid.json"
    fresh = False
    if resume:
        if not grid_file.exists():
            raise UserError(f"{out}: not a grid directory (no grid.json) to resume")
        doc = read_json(grid_file)
    else:
        if grid_file.exists():
            raise UserError(f"{out} already holds a grid; pass --resume {out} to continue it, or pick another --out")
        doc = grid_document(preset)
        for cell in doc["cells"]:  # every cell's settings are valid before the grid folder exists
            check_config(replace(preset.run, backbone=cell["backbone"], strategy=cell["strategy"], seed=cell["seed"]))
        fresh = not out.exists()
        write_json(grid_file, doc)
    try:
        return _run_cells(doc, preset, out, bus, resume, cancel, runner or execute)
    except UserError:
        if not resume and fresh and not any(RunDir(out / c["dir"]).is_complete() for c in doc["cells"]):
            shutil.rmtree(out, ignore_errors=True)  # a user error met before any cell finished leaves nothing
        raise


def _run_cells(
    doc: dict[str, Any], preset: Preset, out: Path, bus: EventBus, resume: bool, cancel: Any, runner: Any
) -> dict[str, int]:
    # a resumed grid keeps the settings it started with; only the data location may change
    base = RunConfig.from_dict(doc["run"]) if resume else preset.run
    if resume and preset.run.data_dir:
        base = replace(base, data_dir=preset.run.data_dir)
    summary = {"complete": 0, "failed": 0, "skipped": 0, "cancelled": 0}
    total = len(doc["cells"])
    for i, cell in enumerate(doc["cells"]):
        run = RunDir(out / cell["dir"])
        if run.is_complete():
            summary["skipped"] += 1
            summary["complete"] += 1
            continue
        if cancel is not None and cancel():
            summary["cancelled"] = 1
            break
        config = replace(base, backbone=cell["backbone"], strategy=cell["strategy"], seed=cell["seed"])
        bus.cell = cell["id"]
        bus.progress("grid", i, total)
        try:
            runner(config, run.path, bus, cancel=cancel, resume=resume)
            summary["complete"] += 1
        except Cancelled:
            summary["cancelled"] = 1  # the cell is marked cancelled with its checkpoint; --resume picks it up
            break
        except NonFiniteLoss as exc:
            run.mark("failed", error=str(exc), step=exc.step, last_finite_loss=exc.last_finite)
            summary["failed"] += 1
        except UserError:
            raise
        except Exception:
            summary["failed"] += 1  # execute() marked the cell failed and wrote traceback.txt
        finally:
            bus.cell = ""
    if not summary["cancelled"]:
        bus.progress("grid", total, total)
    return summary
