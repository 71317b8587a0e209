"""A run directory: the source of truth for one cell (config, status, events, results, model)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hbt.engine.io import read_json, write_json

STATUSES = ("running", "complete", "failed", "cancelled", "interrupted")


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
        except (FileNotFoundError, json.JSONDecodeError):
            return {"status": "interrupted"}
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
        current.update({"status": status, "updated": time.time(), **extra})
        if status == "running":
            current.setdefault("started", time.time())
        write_json(self.status_file, current)

    def results(self) -> dict[str, Any]:
        return dict(read_json(self.results_file))

    def is_complete(self) -> bool:
        return self.results_file.exists() and self.status().get("status") == "complete"
