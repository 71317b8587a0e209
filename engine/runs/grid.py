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

from ..common.errors import UserError
from ..common.events import EventBus
from ..common.interrupts import Cancelled
from ..common.io import ensure_dir, read_json_object, write_json
from ..common.run_config import RunConfig
from ..common.vocabulary import BASELINE
from ..training.train import NonFiniteLoss
from . import stack
from .dispatch import Dispatcher, backend_for
from .executor import ExecutorSpec, check_available, spec_from_dict
from .grid_doc import GridCell, grid_document, read_grid
from .grid_lock import grid_lock
from .jobs import ENDED, QUEUED, RUNNING, GridRecord, JobRecord, this_host
from .presets import Preset, check_preset
from .rundir import RunDir, record_failure


def _stamp(run: RunDir) -> tuple[int, int] | None:
    """run.json's mtime and size: unchanged after a failed attempt means the attempt never marked the cell."""
    try:
        st = run.status_file.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


def check_stack(out: Path, doc: dict[str, Any], allow_change: bool) -> None:
    """A resumed grid continues on the software stack it was made with: another stack stops it with one line, unless
    `allow_change`, which records the change in grid.json (`stack_changes`) and goes on."""
    current = stack.describe()
    before = doc.get("stack") if isinstance(doc.get("stack"), dict) else None
    if before is None:  # a grid made before grids recorded their stack: its finished cells tell
        before = next((r for c in doc["cells"] if (r := stack.recorded(_results_of(out / c["dir"])))), None)
    if before is None or stack.same(before, current):
        return
    change = stack.change_line(before, current)
    if not allow_change:
        raise UserError(
            f"{out} was made with another software stack ({change}): resuming would mix stacks in one grid. "
            "Install its stack (pip install -c requirements.lock ...; see `hbt-bench doctor`), or pass "
            "--allow-stack-change to continue anyway (recorded in grid.json)"
        )
    changes: list[Any] = list(doc.get("stack_changes") or [])
    entry = {"at": time.time(), "from": before.get("packages_sha256"), "to": current["packages_sha256"]}
    doc["stack_changes"] = [*changes, {**entry, "changes": stack.differences(before["packages"], current["packages"])}]
    doc["stack"] = stack.summary(current)
    write_json(out / "grid.json", doc)


def _results_of(path: Path) -> Any:
    doc, _ = read_json_object(RunDir(path).results_file)
    return doc


def run_grid(
    preset: Preset,
    out: Path,
    bus: EventBus,
    resume: bool = False,
    cancel: Any = None,
    runner: Any = None,
    allow_stack_change: bool = False,
    node_rank: int = 0,
    executor: ExecutorSpec | None = None,
) -> dict[str, int]:
    """Run every cell not yet complete. A cell whose loss goes NaN, or that crashes, is marked failed and the grid
    goes on; a user error (bad data dir, offline) stops the grid, since every cell would meet it. `runner` runs a
    cell (default: in this process; `hbt.engine.runs.launch.LaunchedRunner` under torchrun / accelerate).
    Everything a user set is checked before the grid folder is made; the grid is held by one runner at a time
    (grid_lock; `node_rank` > 0: a follower node of a multi-node launch, holding its own lock and never writing
    grid.json). A resumed grid must run on the stack it was made with (`check_stack`). `executor`: where the cells
    run (default: the preset's for a new grid, the one grid.json recorded on resume); anything but `local` submits
    each cell as a job and follows it (`hbt.engine.runs.dispatch`)."""
    grid_file = out / "grid.json"
    if resume:
        if not grid_file.exists():
            raise UserError(f"{out}: not a grid directory (no grid.json) to resume")
        doc = read_grid(out).raw  # (checked; the runner keeps and updates the document itself)
        if preset.name != doc["preset"]:
            raise UserError(
                f"{out} is a grid of preset {doc['preset']!r}, not {preset.name!r}: "
                f"resume it with hbt-bench run {doc['preset']} --resume {out}"
            )
        previous = spec_from_dict(doc.get("executor"))
        spec = executor or previous
        check_available(spec)  # its extra installed, sbatch on PATH, the Ray head answering: before anything else
        doc["executor"] = spec.to_dict()
    else:
        if grid_file.exists():
            raise UserError(f"{out} already holds a grid; pass --resume {out} to continue it, or pick another --out")
        spec = previous = executor or preset.executor
        check_available(spec)  # its extra installed, sbatch on PATH, the Ray head answering: before anything else
        doc = {**grid_document(preset, spec), "stack": stack.summary(stack.describe())}
        check_preset(preset)  # valid before the grid folder exists (each cell runs check_config once as it starts)
        check_training_budget(preset)
    fresh = not out.exists()
    ensure_dir(out)
    created = False
    try:
        with grid_lock(out, lambda line: bus.log(line, "warning"), node_rank):
            if resume:
                check_stack(out, doc, allow_stack_change)  # (it may record a change in grid.json: under the lock)
            elif grid_file.exists():  # another runner created it meanwhile
                raise UserError(f"{out} already holds a grid; pass --resume {out} to continue it")
            record = GridRecord(out, doc, read_only=node_rank > 0)
            record.set_submitter("running", executor=spec.kind)  # (writes grid.json: the submitter is its only writer)
            created = not resume
            return _run_recorded(record, spec, previous, _base_config(doc, preset, resume), bus, resume, cancel, runner)
    except UserError:
        if created and fresh and not any(RunDir(out / c["dir"]).is_complete() for c in doc["cells"]):
            shutil.rmtree(out, ignore_errors=True)  # a user error met before any cell finished leaves nothing
        raise


def _run_recorded(
    record: GridRecord,
    spec: ExecutorSpec,
    previous: ExecutorSpec,
    base: RunConfig,
    bus: EventBus,
    resume: bool,
    cancel: Any,
    runner: Any,
) -> dict[str, int]:
    """The cells, here or through the executor, with the submitter's state in grid.json kept true to the end."""
    # (start-up: faiss)
    from .run import execute

    status = "failed"
    try:
        if spec.kind == "local":
            summary = _run_cells(record, base, record.out, bus, resume, cancel, runner or execute)
        else:
            summary = _dispatch(record, spec, previous, base, bus, resume, cancel)
        status = "cancelled" if summary["cancelled"] else "complete"
        return summary
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        if (record.out / "grid.json").exists():
            with contextlib.suppress(UserError):
                record.set_submitter(status)


def check_training_budget(preset: Preset) -> None:
    """The step budget of the grid's trained cells against its training data (run.check_budget), before anything is
    created: the pair count is the same for every trained cell (it depends on the data settings, not the strategy)."""
    # (start-up: faiss)
    from .run import build_training_table, check_budget, dataset_split

    trained = [s for s in preset.strategies if s != BASELINE]
    if not trained or not preset.run.steps:
        return
    config = replace(preset.run, backbone=preset.backbones[0], strategy=trained[0], seed=preset.seeds[0])
    check_budget(config, build_training_table(config, dataset_split(config)))


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
        config = GridCell.from_dict(cell).config(base)
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
