"""`hbt-bench status GRID`: one row per cell (state, job, node, elapsed, last event, the scheduler's reason)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..common.text import safe
from ..runs.control import GridStatus
from ..runs.jobs import CELL_STATES

STYLES = {"complete": "green", "running": "bold cyan", "queued": "cyan", "failed": "bold red", "cancelled": "yellow",
          "interrupted": "yellow", "pending": "dim"}  # fmt: skip


def elapsed(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    s = round(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def submitter_line(status: GridStatus) -> str:
    sub = status.submitter
    if not sub:
        return "submitted by: not recorded"
    where = f"{sub.get('host', '?')} pid {sub.get('pid', '?')}"
    state = str(sub.get("status", "?"))
    if state == "running":
        alive = {True: "running", False: "gone (killed? resume with --resume)", None: "running elsewhere"}
        state = alive[status.submitter_alive]
    return f"submitted by {where}: {state}"


def counts_line(status: GridStatus) -> str:
    counts = status.counts()
    shown = [f"{state} {counts[state]}" for state in CELL_STATES if counts.get(state)]
    return " · ".join(shown) + f" · of {len(status.cells)}"


def print_status(console: Console, status: GridStatus) -> None:
    head = f"grid {status.out} (preset {status.preset}) · executor {status.executor.describe()}"
    console.print(Text(safe(head)), soft_wrap=True)
    console.print(Text(safe(submitter_line(status)), style="dim"), soft_wrap=True)
    table = Table("cell", "state", "executor", "job", "node", "elapsed", "last event", "reason")
    for cell in status.cells:
        table.add_row(
            Text(safe(cell.id)),
            Text(cell.state, style=STYLES.get(cell.state, "")),
            Text(safe(cell.executor)),
            Text(safe(cell.job_id) or "–"),
            Text(safe(cell.node) or "–"),
            Text(elapsed(cell.elapsed_s), justify="right"),
            Text(safe(cell.last_event)),
            Text(safe(cell.reason)),
        )
    console.print(table)
    console.print(Text(counts_line(status)))


def status_json(status: GridStatus) -> dict[str, Any]:
    return {
        "grid": str(status.out),
        "preset": status.preset,
        "executor": status.executor.to_dict(),
        "submitter": {**status.submitter, "alive": status.submitter_alive},
        "counts": status.counts(),
        "cells": [asdict(c) for c in status.cells],
    }
