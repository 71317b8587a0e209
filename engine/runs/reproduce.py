"""`hbt-bench reproduce GRID`: run a finished cell again from what it recorded, and compare every metric.

Each chosen cell is re-run from its results.json `config` (the settings really used, backbone defaults included)
in a scratch folder, without the embedding cache (its vectors are encoded again), and every number under
`datasets` of the two results documents is compared: recorded, new, |Δ|. On the same stack and data the numbers
are expected identical (the seeds fix batches, initialisation and randomisation tests); the recorded stack and data
files are compared with this machine's, and any difference is named.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..common.errors import UserError
from ..common.events import EventBus
from ..common.run_config import RunConfig
from . import stack
from .run import execute

# bookkeeping inside a dataset's block that differs between runs by design: durations, and how many texts were
# encoded now rather than read from the embedding cache
_NOT_A_METRIC = re.compile(r"(_s|seconds)$|^encoded$")


def numbers(block: Any, prefix: str = "") -> Iterator[tuple[str, float]]:
    """(path, value) of every number in a results `datasets` block; lists by index, booleans and strings left out."""
    if isinstance(block, dict):
        for key, value in block.items():
            if not _NOT_A_METRIC.search(str(key)):
                yield from numbers(value, f"{prefix}/{key}" if prefix else str(key))
    elif isinstance(block, list):
        for i, value in enumerate(block):
            yield from numbers(value, f"{prefix}[{i}]")
    elif isinstance(block, int | float) and not isinstance(block, bool):
        yield prefix, float(block)


@dataclass(frozen=True)
class Delta:
    metric: str
    recorded: float | None
    new: float | None

    @property
    def delta(self) -> float:
        """|new - recorded|; inf when one side is missing or not finite while the other is."""
        if self.recorded is None or self.new is None:
            return math.inf
        if math.isnan(self.recorded) and math.isnan(self.new):
            return 0.0
        if self.recorded == self.new:  # equal infinities included
            return 0.0
        return abs(self.new - self.recorded)


def compare(recorded: dict[str, Any], new: dict[str, Any]) -> list[Delta]:
    """Every number of both documents' `datasets`, in the recorded document's order (new-only ones last)."""
    old = dict(numbers(recorded.get("datasets") or {}))
    fresh = dict(numbers(new.get("datasets") or {}))
    return [Delta(k, old.get(k), fresh.get(k)) for k in [*old, *(k for k in fresh if k not in old)]]


@dataclass
class CellReport:
    cell: str
    deltas: list[Delta]
    stack_change: str | None  # None: the recorded stack is this machine's
    data_changes: list[str] = field(default_factory=list)  # data files whose content differs from the recorded

    @property
    def differing(self) -> list[Delta]:
        return [d for d in self.deltas if d.delta != 0]


def data_changes(recorded: dict[str, Any], new: dict[str, Any]) -> list[str]:
    def files(doc: dict[str, Any]) -> dict[str, Any]:
        data = doc.get("data")
        return dict(data.get("files") or {}) if isinstance(data, dict) else {}

    before, after = files(recorded), files(new)
    return [
        name
        for name in sorted(before.keys() | after.keys())
        if (before.get(name) or {}).get("sha256") != (after.get(name) or {}).get("sha256")
    ]


def recorded_config(doc: dict[str, Any], data_dir: str | None) -> RunConfig:
    config = doc.get("config")
    if not isinstance(config, dict):
        raise UserError("results.json has no recorded config to re-run")
    try:
        run = RunConfig.from_dict(config)
    except TypeError as exc:
        raise UserError(f"results.json config cannot be re-run: {exc}") from None
    if data_dir is not None:
        run.data_dir = data_dir
    return run


def reproduce_cell(
    cell_id: str, doc: dict[str, Any], out: Path, bus: EventBus, data_dir: str | None = None
) -> CellReport:
    """Re-run one cell from its results document into `out` and compare."""
    config = recorded_config(doc, data_dir)
    new = execute(config, out, bus, embedding_cache=False)
    before = stack.recorded(doc)
    now = stack.recorded(new)
    change = None
    if before is None:
        change = "the cell recorded no stack (made before hbt recorded it)"
    elif now is not None and not stack.same(before, now):
        change = stack.change_line(before, now)
    return CellReport(cell_id, compare(doc, new), change, data_changes(doc, new))
