"""Executors side by side on this machine: wall time of a whole grid (default `quick`) run by `local` and by
`processes --workers 2`, and the per-cell overhead of each executor on `smoke` (a job's submission, as grid.json
records it, to the cell's first event in its events.jsonl: the process start, imports and the cell's preparation).

Every run is `hbt-bench run` in a subprocess, as a user runs it, into a fresh folder under --out (a fresh HBT_CACHE_DIR
each, so no run reuses another's embeddings). `ray` starts a local Ray instance; `slurm-local` is submitit's local
executor. Threads: every cell of a `processes` grid gets cores // workers torch threads; `local` gets them all.

Usage (a quiet machine; the `quick` comparison takes ~25 min on 2 cores):
    nice -n 5 python benchmarks/bench_executors.py --data-dir ../shared/data --out /tmp/bench-executors
    python benchmarks/bench_executors.py --data-dir ../shared/data --timed smoke --overhead local,processes  # fast
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from hbt.engine.common.events import read_events

EXECUTOR_FLAGS = {
    "local": [],
    "processes": ["--executor", "processes", "--workers", "2"],
    "slurm-local": ["--executor", "slurm", "--slurm-backend", "local", "--workers", "2"],
    "ray": ["--executor", "ray"],
}


def run_grid(preset: str, executor: str, out: Path, data_dir: str) -> float:
    """Wall seconds of `hbt-bench run PRESET` with the executor's flags (a fresh cache folder)."""
    grid, cache = out / f"{preset}-{executor}", out / f"cache-{preset}-{executor}"
    env = {**os.environ, "HBT_CACHE_DIR": str(cache)}
    command = [sys.executable, "-m", "hbt.engine.cli", "run", preset, "--data-dir", data_dir, "--out", str(grid)]
    t0 = time.perf_counter()
    result = subprocess.run([*command, *EXECUTOR_FLAGS[executor]], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if result.returncode != 0:
        sys.exit(f"{preset} on {executor} failed (exit {result.returncode}):\n{result.stderr[-2000:]}")
    return seconds


def overheads(grid: Path) -> list[float]:
    """Per cell: the first event's time minus the job's submission time."""
    doc: dict[str, Any] = json.loads((grid / "grid.json").read_text())
    out = []
    for cell in doc["cells"]:
        events = read_events(grid / cell["dir"] / "events.jsonl")
        submitted = (cell.get("job") or {}).get("submitted")
        if events and isinstance(submitted, int | float):
            out.append(events[0].t - submitted)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--out", type=Path, default=Path("bench-executors"))
    parser.add_argument("--timed", default="quick", help="the preset whose wall time is compared (default quick)")
    parser.add_argument("--compare", default="local,processes", help="executors timed on --timed")
    parser.add_argument("--overhead", default="local,processes,slurm-local,ray", help="executors run on smoke")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"machine: {os.cpu_count()} cores; Python {sys.version.split()[0]}")
    walls = {ex: run_grid(args.timed, ex, args.out, args.data_dir) for ex in args.compare.split(",") if ex}
    print(f"\n{args.timed}: wall time of the whole grid")
    for ex, seconds in walls.items():
        print(f"  {ex:<12} {seconds:8.1f} s")
    if len(walls) > 1:
        base = next(iter(walls.values()))
        print("  " + ", ".join(f"{ex} {base / s:.2f}x of {next(iter(walls))}" for ex, s in list(walls.items())[1:]))
    print("\nsmoke: per-cell overhead (submission to the cell's first event), seconds")
    print(f"  {'executor':<12} {'median':>8} {'min':>8} {'max':>8}  wall")
    for ex in [e for e in args.overhead.split(",") if e]:
        grid = args.out / f"smoke-{ex}"
        wall = walls[ex] if args.timed == "smoke" and ex in walls else run_grid("smoke", ex, args.out, args.data_dir)
        cells = overheads(grid)
        print(f"  {ex:<12} {statistics.median(cells):8.1f} {min(cells):8.1f} {max(cells):8.1f}  {wall:.1f} s")


if __name__ == "__main__":
    main()
