"""A grid: every cell (backbone x strategy x seed, plus untrained baselines) as a run directory."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Any

from hbt.engine.common.errors import UserError
from hbt.engine.common.events import EventBus, JsonlSink, RunFinished
from hbt.engine.common.io import ensure_dir, read_json, write_json, write_text
from hbt.engine.runs.config import RunConfig
from hbt.engine.runs.executor import ExecutorSpec, check_available, spec_from_dict
from hbt.engine.runs.interrupts import Cancelled
from hbt.engine.runs.jobs import ENDED, QUEUED, RUNNING, GridRecord, JobRecord, this_host
from hbt.engine.runs.presets import Preset, cell_id
from hbt.engine.runs.rundir import RunDir
from hbt.engine.training.train import NonFiniteLoss

GRID_SCHEMA = "hbt.grid/1"


def grid_document(preset: Preset, executor: ExecutorSpec | None = None) -> dict[str, Any]:
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
        "executor": (executor or preset.executor).to_dict(),
        "cells": cells,
    }


def _bad(out: Path, what: str) -> UserError:
    return UserError(f"{out / 'grid.json'}: {what} (the grid folder's grid.json was edited or damaged)")


def read_grid(out: Path) -> dict[str, Any]:
    """grid.json, checked as untrusted input: every problem is a one-line UserError naming the file; each cell's
    `dir` must stay inside the grid folder."""
    try:
        doc = read_json(out / "grid.json")
    except (OSError, ValueError) as exc:
        raise UserError(f"{out / 'grid.json'} is empty or not JSON ({type(exc).__name__}): cannot resume it") from None
    if not isinstance(doc, dict) or doc.get("schema") != GRID_SCHEMA:
        raise _bad(out, f"not a grid (expected an object with schema {GRID_SCHEMA!r})")
    if not isinstance(doc.get("preset"), str):
        raise _bad(out, "'preset' should be a string")
    if not isinstance(doc.get("run"), dict):
        raise _bad(out, "'run' should be an object")
    try:
        RunConfig.from_dict(doc["run"]).validate()
    except (TypeError, ValueError, UserError) as exc:
        raise _bad(out, f"[run] {exc}") from None
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
        if cell.get("job") is not None and JobRecord.from_dict(cell["job"]) is None:
            raise _bad(out, f"cells[{i}].job should be a job record (executor, id, node, ...)")
        target = (out / cell["dir"]).resolve()
        if not cell["dir"].strip() or Path(cell["dir"]).is_absolute() or root not in target.parents:
            raise _bad(out, f"cells[{i}].dir {cell['dir']!r} leaves the grid folder")
    if doc.get("executor") is not None and not isinstance(doc["executor"], dict):
        raise _bad(out, "'executor' should be an object")
    return doc


def cell_states(out: Path) -> list[dict[str, Any]]:
    """Every cell of the grid at `out`: id, dir, status (complete only with a valid results.json) and error."""
    try:
        doc = read_grid(out)
    except UserError:
        return []
    states = []
    for cell in doc["cells"]:
        run = RunDir(out / cell["dir"])
        status = run.status()
        state = "complete" if run.is_complete() else str(status.get("status") or "pending")
        if state == "complete" or not run.path.exists():
            state = "complete" if state == "complete" else "pending"
        error = status.get("error") if isinstance(status.get("error"), str) else ""
        states.append({"id": cell["id"], "dir": cell["dir"], "status": state, "error": error})
    return states


def _stamp(run: RunDir) -> tuple[int, int] | None:
    """run.json's mtime and size: unchanged after a failed attempt means the attempt never marked the cell."""
    try:
        st = run.status_file.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


def record_failure(
    run: RunDir, error: str, bus: EventBus, traceback_text: str | None = None, config: RunConfig | None = None
) -> None:
    """Mark a cell failed with its one-line reason (and traceback.txt), in run.json and events.jsonl, and tell the
    display: for a failure met before the cell's own bookkeeping started (config, data, model)."""
    event = RunFinished(run_dir=str(run.path), status="failed", error=error)
    bus.emit(event)  # (the bus stamps the cell id on it)
    extra: dict[str, Any] = {}
    with contextlib.suppress(UserError):  # a folder that cannot be written (disk full...): the display said why
        ensure_dir(run.path)
        if config is not None and not run.config_file.exists():  # so that `list runs` and History show the cell
            write_json(run.config_file, config.to_dict())
        if traceback_text:
            trace = run.path / "traceback.txt"
            write_text(trace, traceback_text)
            extra["traceback"] = str(trace)
        run.mark("failed", error=error, **extra)
        sink = JsonlSink(run.events_file)
        try:
            sink(event)
        finally:
            sink.close()


def run_grid(
    preset: Preset,
    out: Path,
    bus: EventBus,
    resume: bool = False,
    cancel: Any = None,
    runner: Any = None,
    executor: ExecutorSpec | None = None,
    follower: bool = False,
) -> dict[str, int]:
    """Run every cell not yet complete. A cell whose loss goes NaN, or that crashes, is marked failed and the grid
    goes on; a user error (bad data dir, offline) stops the grid, since every cell would meet it. `runner` runs a
    cell (default: in this process; `hbt.engine.training.launch.LaunchedRunner` under torchrun / accelerate).
    `executor`: where the cells run (default: the preset's for a new grid, the one grid.json recorded on resume);
    anything but `local` submits each cell as a job and follows it (`hbt.engine.runs.dispatch`). `follower`: a torchrun
    node other than 0, taking part in node 0's grid without writing its grid.json."""
    from hbt.engine.runs.config import check_config
    from hbt.engine.runs.run import execute

    grid_file = out / "grid.json"
    fresh = False
    if resume:
        if not grid_file.exists():
            raise UserError(f"{out}: not a grid directory (no grid.json) to resume")
        doc = read_grid(out)
        if preset.name != doc["preset"]:
            raise UserError(
                f"{out} is a grid of preset {doc['preset']!r}, not {preset.name!r}: "
                f"resume it with hbt-bench run {doc['preset']} --resume {out}"
            )
        previous = spec_from_dict(doc.get("executor"))
        spec = executor or previous
        doc["executor"] = spec.to_dict()
    else:
        if grid_file.exists():
            raise UserError(f"{out} already holds a grid; pass --resume {out} to continue it, or pick another --out")
        spec = previous = executor or preset.executor
        doc = grid_document(preset, spec)
        for cell in doc["cells"]:  # every cell's settings are valid before the grid folder exists
            check_config(replace(preset.run, backbone=cell["backbone"], strategy=cell["strategy"], seed=cell["seed"]))
        fresh = not out.exists()
    check_available(spec)  # its extra installed, sbatch on PATH, the Ray head answering: before anything is written
    record = GridRecord(out, doc, read_only=follower)
    record.set_submitter("running", executor=spec.kind)  # (writes grid.json: the submitter is its only writer)
    status = "failed"
    try:
        base = _base_config(doc, preset, resume)
        if spec.kind == "local":
            summary = _run_cells(record, base, out, bus, resume, cancel, runner or execute)
        else:
            summary = _dispatch(record, spec, previous, base, bus, resume, cancel)
        status = "cancelled" if summary["cancelled"] else "complete"
        return summary
    except UserError:
        if not resume and fresh and not any(RunDir(out / c["dir"]).is_complete() for c in doc["cells"]):
            shutil.rmtree(out, ignore_errors=True)  # a user error met before any cell finished leaves nothing
        raise
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        if grid_file.exists():
            with contextlib.suppress(UserError):
                record.set_submitter(status)


def _base_config(doc: dict[str, Any], preset: Preset, resume: bool) -> RunConfig:
    """A resumed grid keeps the settings it started with; only the data location may change."""
    base = RunConfig.from_dict(doc["run"]) if resume else preset.run
    if resume and preset.run.data_dir:
        base = replace(base, data_dir=preset.run.data_dir)
    return base


def _dispatch(
    record: GridRecord,
    spec: ExecutorSpec,
    previous: ExecutorSpec,
    base: RunConfig,
    bus: EventBus,
    resume: bool,
    cancel: Any,
) -> dict[str, int]:
    from hbt.engine.runs.dispatch import Dispatcher, backend_for

    backend = backend_for(spec, record.out, record.doc)
    address = getattr(backend, "address", None)  # a Ray instance this process started: status/cancel can join it
    if isinstance(address, str) and address != spec.ray.address:
        record.update_submitter(ray_address=address)
    earlier = backend_for(previous, record.out, record.doc) if resume and previous.kind != spec.kind else None
    nproc = spec.slurm.gpus if spec.kind == "slurm" else 1
    return Dispatcher(record, base, bus, backend, earlier, nproc=nproc).run(resume, cancel)


def _run_cells(
    record: GridRecord, base: RunConfig, out: Path, bus: EventBus, resume: bool, cancel: Any, runner: Any
) -> dict[str, int]:
    doc = record.doc
    summary = {"complete": 0, "failed": 0, "skipped": 0, "cancelled": 0}
    total = len(doc["cells"])
    host, pid = this_host(), str(os.getpid())
    for cell in doc["cells"]:  # the cells this process will run, in order: queued in it (what `status` shows)
        if not RunDir(out / cell["dir"]).is_complete():
            record.set_job(cell["id"], JobRecord("local", submitted=time.time(), state=QUEUED, host=host))
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
        attempt = _stamp(run)
        job = JobRecord("local", id=pid, node=host, host=host, submitted=time.time(), state=RUNNING, raw="RUNNING")
        record.set_job(cell["id"], job)
        try:
            runner(config, run.path, bus, cancel=cancel, resume=resume)
            summary["complete"] += 1
        except Cancelled:
            summary["cancelled"] = 1  # the cell is marked cancelled with its checkpoint; --resume picks it up
            break
        except NonFiniteLoss as exc:
            run.mark("failed", error=str(exc), step=exc.step, last_finite_loss=exc.last_finite)
            summary["failed"] += 1
        except UserError as exc:
            if _stamp(run) == attempt:  # met while preparing (data, model): the cell still says why
                record_failure(run, str(exc), bus, config=config)
            raise
        except Exception as exc:
            if _stamp(run) == attempt:  # execute() did not get to mark it (it failed while preparing)
                error = f"{type(exc).__name__}: {exc}"
                record_failure(run, error, bus, traceback_text=traceback.format_exc(), config=config)
            summary["failed"] += 1  # the cell is marked failed with its reason and traceback.txt
        finally:
            bus.cell = ""
            record.set_job(cell["id"], replace(job, state=ENDED, raw=str(run.status().get("status") or "ended")))
    if not summary["cancelled"]:
        bus.progress("grid", total, total)
    return summary
