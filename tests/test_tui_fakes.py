"""Fakes for the TUI tests (a grid runner that emits realistic engine events and writes a real grid directory),
plus unit tests of the pieces that need no app: the run state, the results model, the history rows."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hbt.engine.common.errors import UserError
from hbt.engine.common.events import EvalDone, Event, EventBus, Progress, RunFinished, RunStarted, Stage, TrainStep
from hbt.engine.common.io import read_json, write_json
from hbt.engine.common.run_config import RunConfig
from hbt.engine.runs.jobs import GridRecord, JobRecord
from hbt.engine.runs.presets import Preset
from hbt.engine.runs.rundir import RunDir
from hbt.tui.backend import BackboneInfo, Backend, PresetInfo, error_text

T0 = 1_767_225_600.0  # 2026-01-01 00:00 UTC: every fake timestamp derives from it
STRATEGY_BASE = {"none": 0.30, "xx": 0.55, "xy": 0.50, "hybrid": 0.58}
N_QUERIES = 12


def _cell_id(backbone: str | None, strategy: str, seed: int) -> str:
    return Backend().cell_id(backbone, strategy, seed)


def _metric(v: float) -> dict[str, float]:
    v = round(min(max(v, 0.0), 1.0), 4)
    return {
        "map": v,
        "mrr@10": round(min(v + 0.02, 1.0), 4),
        "recall@10": round(min(v + 0.2, 1.0), 4),
        "n_queries": N_QUERIES,
    }


def _macro(block: dict[str, dict[str, float]]) -> dict[str, float]:
    keys = ("map", "mrr@10", "recall@10")
    return {k: round(sum(m[k] for m in block.values()) / len(block), 4) for k in keys} if block else {}


def fake_summary(strategy: str, seed: int, langs: tuple[str, ...]) -> dict[str, Any]:
    """A results.json dataset block with the engine's layout and deterministic numbers."""
    base = STRATEGY_BASE.get(strategy, 0.4) + 0.01 * seed
    mono = {x: _metric(base + 0.05 * i) for i, x in enumerate(langs)}
    cross = {
        f"{x}-{y}": _metric(base - 0.12 + 0.03 * i + 0.01 * j + (0.08 if strategy == "xy" else 0.0))
        for i, x in enumerate(langs)
        for j, y in enumerate(langs)
        if x != y
    }
    multi = {x: _metric(base - 0.05 + 0.03 * i) for i, x in enumerate(langs)}
    excess = {"none": 0.30, "xx": 0.35, "xy": 0.05, "hybrid": 0.12}.get(strategy, 0.2)
    bias = {
        x: {
            "own_share@10": round(0.5 + excess + 0.01 * i, 4),
            "pool_share": 0.5,
            "own_excess@10": round(excess + 0.01 * i, 4),
            "rank_gap": round(-2.0 * excess - i, 4),
        }
        for i, x in enumerate(langs)
    }
    multi_maps = [m["map"] for m in multi.values()]
    return {
        "languages": list(langs),
        "n_queries": N_QUERIES * len(langs),
        "n_candidates": N_QUERIES * len(langs),
        "monolingual": {"per_language": mono, "macro": _macro(mono)},
        "cross_lingual": {"per_pair": cross, "macro": _macro(cross)},
        "multilingual": {"per_language": multi, "macro": _macro(multi), "all": _macro(multi)},
        "language_bias": {
            "per_language": bias,
            "own_excess@10": round(sum(b["own_excess@10"] for b in bias.values()) / len(bias), 4),
            "rank_gap": round(sum(b["rank_gap"] for b in bias.values()) / len(bias), 4),
            "map_spread": round(max(multi_maps) - min(multi_maps), 4),
        },
    }


def fake_per_query(strategy: str, seed: int, langs: tuple[str, ...]) -> dict[str, dict[str, float]]:
    offset = {"none": 0, "xx": 23, "xy": 41, "hybrid": 57}.get(strategy, 7) + 3 * seed
    out: dict[str, dict[str, float]] = {}
    for x in langs:
        ids = [f"q{k}" for k in range(N_QUERIES)]
        out[f"mono/{x}"] = {q: ((k * 37 + offset) % 100) / 100 for k, q in enumerate(ids)}
        out[f"multi/{x}"] = {q: ((k * 29 + offset) % 100) / 100 for k, q in enumerate(ids)}
        for y in langs:
            if y != x:
                out[f"cross/{x}-{y}"] = {q: ((k * 31 + offset) % 100) / 100 for k, q in enumerate(ids)}
    return out


def loss_at(strategy: str, step: int) -> float:
    return round({"xx": 1.4, "xy": 1.6, "hybrid": 1.5}.get(strategy, 1.5) / (1 + 0.35 * step), 4)


def write_cell(
    cell_dir: Path,
    config: dict[str, Any],
    strategy: str,
    seed: int,
    langs: tuple[str, ...],
    curve: list[tuple[int, float]],
    started: float,
) -> None:
    """A complete run directory: config.json, run.json, results.json, per_query.json."""
    write_json(cell_dir / "config.json", config)
    training = None
    if strategy != "none":
        training = {
            "steps": curve[-1][0] if curve else 0,
            "loss_curve": [list(p) for p in curve],
            "final_loss": curve[-1][1] if curve else None,
        }
    results = {
        "schema": "hbt.results/1",
        "run_id": cell_dir.name,
        "config": config,
        "training": training,
        "datasets": {"xquad-r": fake_summary(strategy, seed, langs)},
    }
    write_json(cell_dir / "per_query.json", {"xquad-r": fake_per_query(strategy, seed, langs)})
    write_json(cell_dir / "results.json", results)
    write_json(cell_dir / "run.json", {"status": "complete", "started": started, "updated": started + 30})


class FakeEngine:
    """Stands in for hbt.engine.runs.grid.run_grid: the same events in the same order, a real grid directory.

    pause_at=(cell index, step): block there until `resume` is set (`reached` tells the test it got there).
    fail_at=(cell index, step): raise `error` there (after the events before it).
    """

    def __init__(
        self,
        steps: int = 4,
        pause_at: tuple[int, int] | None = None,
        fail_at: tuple[int, int] | None = None,
        error: Exception | None = None,
    ) -> None:
        self.steps = steps
        self.pause_at = pause_at
        self.fail_at = fail_at
        self.error = error or RuntimeError("boom: the fake engine failed")
        self.reached = threading.Event()
        self.resume = threading.Event()
        self.calls = 0

    def _checkpoint(self, where: tuple[int, int]) -> None:
        if self.fail_at == where:
            raise self.error
        if self.pause_at == where:
            self.reached.set()
            self.resume.wait(timeout=120)  # (a busy machine: the test's keys may take long)

    def __call__(
        self, preset: Preset, out: Path, bus: EventBus, cancel: Callable[[], bool], resume: bool = False
    ) -> dict[str, int]:
        self.calls += 1
        langs = tuple(preset.run.langs or ("de", "en"))
        cells = []
        if resume:  # like the engine: the grid's own cells; complete ones are skipped without an event
            cells = read_json(out / "grid.json")["cells"]
        else:
            for backbone, strategy, seed in preset.cells():
                cid = _cell_id(backbone, strategy, seed)
                cells.append(
                    {"id": cid, "backbone": backbone, "strategy": strategy, "seed": seed, "dir": f"cells/{cid}"}
                )
            write_json(
                out / "grid.json",
                {
                    "schema": "hbt.grid/1",
                    "preset": preset.name,
                    "source": preset.source,
                    "created": T0,
                    "run": preset.run.to_dict(),
                    "cells": cells,
                },
            )
        summary = {"complete": 0, "failed": 0, "skipped": 0}
        t = T0
        grid = GridRecord(out, read_json(out / "grid.json"))  # like the submitter: each cell's job in grid.json
        for i, cell in enumerate(cells):
            if resume and RunDir(out / cell["dir"]).is_complete():
                summary["complete"] += 1
                summary["skipped"] += 1
                continue
            if cancel():
                break
            grid.set_job(cell["id"], JobRecord("processes", id=str(4200 + i), node="node-a", submitted=t))
            bus.cell = cell["id"]
            bus.emit(Progress(task="grid", done=i, total=len(cells), t=t))
            cell_dir = out / cell["dir"]
            config = {
                **preset.run.to_dict(),
                "backbone": cell["backbone"] or "default",
                "strategy": cell["strategy"],
                "seed": cell["seed"],
            }
            bus.emit(RunStarted(run_dir=str(cell_dir), config=config, t=t))
            bus.emit(Stage(name="load-model", detail=str(cell["backbone"]), t=t))
            curve: list[tuple[int, float]] = []
            strategy = cell["strategy"]
            if strategy != "none":
                bus.emit(Stage(name="train", detail=f"{strategy}: {self.steps} steps x 4 pairs", t=t))
                for step in range(1, self.steps + 1):
                    self._checkpoint((i, step))
                    loss = loss_at(strategy, step)
                    curve.append((step, loss))
                    xx = {"xx": step, "xy": 0}.get(strategy, (step + 1) // 2)
                    bus.emit(
                        TrainStep(
                            step=step,
                            total_steps=self.steps,
                            epoch=step / self.steps,
                            loss=loss,
                            lr=1e-3 * (1 - (step - 1) / self.steps),
                            batches={"xx": xx, "xy": step - xx},
                            samples_per_s=16.0,
                            strategy=strategy,
                            t=t + step,
                        )
                    )
                    if cancel():
                        break  # like the trainer: stop at this step, then evaluate what was trained
            bus.emit(Stage(name="evaluate", detail="xquad-r", t=t))
            block = fake_summary(strategy, cell["seed"], langs)
            bus.emit(
                EvalDone(
                    dataset="xquad-r",
                    t=t,
                    summary={
                        "mono_map": block["monolingual"]["macro"]["map"],
                        "cross_map": block["cross_lingual"]["macro"]["map"],
                        "multi_map": block["multilingual"]["macro"]["map"],
                    },
                )
            )
            write_cell(cell_dir, config, strategy, cell["seed"], langs, curve, T0 + 60 * i)
            bus.emit(RunFinished(run_dir=str(cell_dir), status="complete", t=t))
            summary["complete"] += 1
            bus.cell = ""
            t += 60
        bus.emit(Progress(task="grid", done=len(cells), total=len(cells), t=t))
        return summary


class CellFiles:
    """Writes each engine event into its cell's events.jsonl, as the worker of a cell does (the TUI follows them)."""

    def __init__(self, out: Path) -> None:
        self.out = out

    def __call__(self, event: Event) -> None:
        if not event.cell or (event.kind == "progress" and getattr(event, "task", "") == "grid"):
            return
        path = self.out / "cells" / event.cell / "events.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(event.to_dict()) + "\n")


class FakeGridProcess:
    """Stands in for the grid's submitting process (hbt.engine.runs.submit): the fake engine runs in a thread of the
    test (never the app's), writing a real grid folder the app follows; exit codes as the real one's."""

    def __init__(self, engine: FakeEngine, preset: Preset, out: Path, resume: bool) -> None:
        self.pid = os.getpid()
        self.out = out
        self.cancel = threading.Event()
        self.code: int | None = None
        self.error = ""
        out.mkdir(parents=True, exist_ok=True)
        bus = EventBus(CellFiles(out))
        self.thread = threading.Thread(target=self._run, args=(engine, preset, out, bus, resume), daemon=True)
        self.thread.start()

    def _run(self, engine: FakeEngine, preset: Preset, out: Path, bus: EventBus, resume: bool) -> None:
        try:
            engine(preset, out, bus, self.cancel.is_set, resume)
            self.code = 130 if self.cancel.is_set() else 0
        except Exception as exc:
            self.error = error_text(exc)
            self.code = 2 if isinstance(exc, UserError) else 1

    def poll(self) -> int | None:
        return None if self.thread.is_alive() else self.code

    def error_line(self) -> str:
        return self.error

    def join(self, timeout: float = 20.0) -> None:
        self.thread.join(timeout)


FAKE_PRESETS = [
    PresetInfo("quick", "offline mE5-small: xx / xy / hybrid, MLQA-R -> XQuAD-R, 7 languages, 30 steps", 4),
    PresetInfo("smoke", "plumbing test: tiny random model, 2 languages, 3 steps per cell", 4),
]
FAKE_BACKBONES = [
    BackboneInfo("tiny-random", True, "random weights, for tests"),
    BackboneInfo("me5-small", False, ""),
]


class FakeBackend(Backend):
    """The real engine for presets and validation; a fake grid runner; optionally a fixed catalogue."""

    def __init__(self, engine: FakeEngine | None = None, fixed_catalogue: bool = False) -> None:
        self.engine = engine or FakeEngine()
        self.fixed_catalogue = fixed_catalogue
        self.resumed: list[bool] = []  # the resume flag of every launch
        self.real_data = False  # True: dataset_local looks at the data folder for real
        self.process: FakeGridProcess | None = None
        self.launched: list[Preset] = []  # the preset of every launch

    def presets(self) -> list[PresetInfo]:
        return list(FAKE_PRESETS) if self.fixed_catalogue else super().presets()

    def backbones(self) -> list[BackboneInfo]:
        return list(FAKE_BACKBONES) if self.fixed_catalogue else super().backbones()

    def dataset_local(self, name: str, data_dir: str | None) -> bool | None:
        """Like ../shared/data: LAReQA (xquad-r, mlqa-r) is there, TyDi and MIRACL are not (the fake engine reads
        no data, so the test data folder may be empty)."""
        if self.real_data:
            return super().dataset_local(name, data_dir)
        return None if not data_dir else name in ("xquad-r", "mlqa-r")

    def launch_grid(
        self, preset: Preset, out: Path, resume: bool = False, keep_executor: bool = False
    ) -> FakeGridProcess:
        self.resumed.append(resume)
        self.launched.append(preset)
        self.process = FakeGridProcess(self.engine, preset, out, resume)
        return self.process

    def cancel_grid(self, grid: Path) -> str:
        """Like the engine's cancel of a grid whose submitter runs here: it is asked (here: the fake's flag)."""
        if self.process is not None and self.process.poll() is None:
            self.process.cancel.set()
            return f"asked the submitting process (pid {self.process.pid}) to cancel"
        return "nothing to cancel: no cell of the grid is queued or running"

    def grid_live(self, grid: Path) -> bool:
        return self.process is not None and self.process.out == grid and self.process.poll() is None


def make_grid(
    root: Path,
    name: str = "smoke-20260101-000000",
    strategies: tuple[str, ...] = ("xx", "xy", "hybrid"),
    seeds: tuple[int, ...] = (0,),
    langs: tuple[str, ...] = ("de", "en"),
    started: float = T0,
) -> Path:
    """A finished grid directory (baseline + strategies x seeds), as FakeEngine writes it."""
    out = root / name
    cells = []
    specs = [("tiny-random", "none", seeds[0])] + [("tiny-random", s, seed) for s in strategies for seed in seeds]
    for i, (backbone, strategy, seed) in enumerate(specs):
        cid = _cell_id(backbone, strategy, seed)
        cells.append({"id": cid, "backbone": backbone, "strategy": strategy, "seed": seed, "dir": f"cells/{cid}"})
        config = {
            "backbone": backbone,
            "strategy": strategy,
            "seed": seed,
            "eval_data": ["xquad-r"],
            "langs": list(langs),
        }
        curve = [(s, loss_at(strategy, s)) for s in range(1, 5)] if strategy != "none" else []
        write_cell(out / "cells" / cid, config, strategy, seed, langs, curve, started + 60 * i)
    run = RunConfig(eval_data=["xquad-r"], langs=list(langs)).to_dict()  # as the engine writes it: the grid's settings
    grid = {"schema": "hbt.grid/1", "preset": "smoke", "source": "smoke", "created": started, "run": run}
    grid["cells"] = cells
    write_json(out / "grid.json", grid)
    return out


# ---- unit tests of the app-free pieces --------------------------------------------------------------------------


def test_run_state_folds_engine_events() -> None:
    from hbt.tui.run_state import RunState

    preset = Preset(name="smoke", backbones=["tiny-random"], strategies=["xx", "hybrid"])
    state = RunState(name="smoke", out=Path("runs/x"), batch_size=4)
    for backbone, strategy, seed in preset.cells():
        state.add_cell(_cell_id(backbone, strategy, seed), str(backbone), strategy, seed)
    bus = EventBus(state.apply)
    cid = _cell_id("tiny-random", "xx", 0)
    bus.cell = cid
    bus.emit(Progress(task="grid", done=1, total=3))
    bus.emit(
        TrainStep(
            step=1, total_steps=4, epoch=0.25, loss=1.0, lr=1e-3, batches={"xx": 1}, samples_per_s=8.0, strategy="xx"
        )
    )
    bus.emit(
        TrainStep(
            step=2, total_steps=4, epoch=0.5, loss=0.8, lr=1e-3, batches={"xx": 2}, samples_per_s=8.0, strategy="xx"
        )
    )
    assert state.cells[cid].status == "running"
    assert state.curves() == {"xx": [(1.0, 1.0), (2.0, 0.8)]}
    assert state.eta_s() == pytest.approx(1.0)  # 2 steps left at 8 samples/s / 4 per batch
    bus.emit(EvalDone(dataset="xquad-r", summary={"mono_map": 0.5, "cross_map": 0.4, "multi_map": 0.3}))
    bus.emit(RunFinished(run_dir="x", status="complete"))
    assert state.cells[cid].status == "complete"
    assert state.cells[cid].metrics["cross_map"] == 0.4
    state.finish("cancelled")
    statuses = {c.strategy: c.status for c in state.cells.values()}
    assert statuses == {"none": "cancelled", "xx": "complete", "hybrid": "cancelled"}


def test_results_model_from_a_fake_grid(tmp_path: Path) -> None:
    from hbt.tui.report import load_report

    grid = make_grid(tmp_path, seeds=(0, 1))
    report = load_report(grid)
    assert report.kind == "grid" and len(report.cells) == 7
    (group,) = report.groups
    assert group.strategies == ["none", "xx", "xy", "hybrid"]
    assert group.per_language["mono"].columns == ["language", "none", "xx", "xy", "hybrid"]
    assert set(report.loss_curves()) == {"xx", "xy", "hybrid"}
    columns, rows = report.bias_per_language(group, "xy")
    assert columns[0] == "language" and [r[0] for r in rows] == ["de", "en"]


def test_history_rows_group_cells_by_grid(tmp_path: Path) -> None:
    from hbt.tui.screens.history import history_rows

    make_grid(tmp_path, "old", started=T0)
    make_grid(tmp_path, "new", started=T0 + 86_400)
    rows = history_rows(Backend().list_runs(tmp_path), tmp_path)
    assert [r.name for r in rows] == ["new", "old"]
    assert rows[0].kind == "grid" and sum(rows[0].statuses.values()) == 4 and rows[0].status == "complete"
    best = rows[0].best["mono_map"]
    assert best is not None and best[1] == "hybrid"
