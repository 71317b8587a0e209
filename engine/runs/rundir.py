"""A run directory: the source of truth for one cell (config, status, events, results, model)."""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..common.errors import UserError
from ..common.events import EventBus, JsonlSink, RunFinished
from ..common.io import ensure_dir, read_json, read_json_object, write_json, write_text
from ..common.run_config import RunConfig
from ..evaluation.results import DatasetSummary, read_datasets

STATUSES = ("running", "complete", "failed", "cancelled", "interrupted")
RUNS_ROOT = Path("runs")  # where a run or grid goes when no --out is given (relative to the working folder)
# what an attempt's end leaves in run.json: a new attempt (running) or a success starts without them
ATTEMPT_KEYS = ("error", "step", "checkpoint", "traceback", "last_finite_loss", "note", "user_error")


def default_out(kind: str, root: Path = RUNS_ROOT, now: float | None = None) -> Path:
    """Where a run or grid goes without --out: `<root>/<YYYYmmdd-HHMMSS>-<kind>` (kind: a preset's name, `eval`,
    `train-<strategy>`), in local time. One naming for the CLI and the TUI, so their folders sort by time together."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(time.time() if now is None else now))
    return Path(root) / f"{stamp}-{kind}"


def results_problem(path: Path) -> str | None:
    """Why results.json at `path` is not a usable result (None when it is): missing, unreadable, not an object, or
    without a dataset's headline metrics. One definition for `--resume` (complete?) and the index (interrupted?)."""
    doc, why = read_json_object(path)
    if doc is None:
        return why or "results.json is missing"
    return read_results(doc)[1]


def read_results(doc: dict[str, Any]) -> tuple[dict[str, DatasetSummary] | None, str | None]:
    """(every dataset's summary, None) of a parsed results.json, or (None, why it is malformed)."""
    try:
        return read_datasets(doc), None
    except ValueError as exc:
        return None, f"results.json malformed ({exc})"


@dataclass(frozen=True)
class RunDir:
    path: Path

    @property
    def config_file(self) -> Path:
        return self.path / "config.json"

    @property
    def status_file(self) -> Path:
        return self.path / "run.json"

    @property
    def events_file(self) -> Path:
        return self.path / "events.jsonl"

    @property
    def results_file(self) -> Path:
        return self.path / "results.json"

    @property
    def per_query_file(self) -> Path:
        return self.path / "per_query.json"

    @property
    def training_file(self) -> Path:
        """The training record, written once the trained model is saved (a resume then skips training)."""
        return self.path / "training.json"

    @property
    def model_dir(self) -> Path:
        return self.path / "model"

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / "checkpoints"

    def status(self) -> dict[str, Any]:
        """run.json, or 'interrupted' when a run left 'running' behind (killed) or has no status at all."""
        try:
            status = read_json(self.status_file)
        except (OSError, json.JSONDecodeError):
            return {"status": "interrupted"}
        if not isinstance(status, dict):
            return {"status": "interrupted", "note": "run.json is not a JSON object"}
        if status.get("status") == "running" and not self.results_file.exists():
            status.setdefault("note", "no results: the run did not finish")
        return dict(status)

    def mark(self, status: str, **extra: Any) -> None:
        assert status in STATUSES
        current = {}
        if self.status_file.exists():
            try:
                current = read_json(self.status_file)
            except json.JSONDecodeError:
                current = {}
        if status in ("running", "complete"):  # a new attempt, or its success: the last attempt's end is history
            for key in ATTEMPT_KEYS:
                current.pop(key, None)
        current.update({"status": status, "updated": time.time(), **extra})
        if status == "running":
            current.setdefault("started", time.time())
        write_json(self.status_file, current)

    def results(self) -> dict[str, Any]:
        return dict(read_json(self.results_file))

    def is_complete(self) -> bool:
        """Marked complete and with a valid results.json (an unreadable one is re-evaluated on --resume)."""
        return self.complete_results() is not None

    def complete_results(
        self, status: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, DatasetSummary]] | None:
        """(results.json, its datasets) when the run is complete by is_complete's rule, else None; `status`: run.json
        as the caller already read it. One read and one parse of results.json."""
        if (status if status is not None else self.status()).get("status") != "complete":
            return None
        doc, _ = read_json_object(self.results_file)
        datasets = read_results(doc)[0] if doc is not None else None
        return (doc, datasets) if doc is not None and datasets is not None else None


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
