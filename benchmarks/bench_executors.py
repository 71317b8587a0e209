"""Executors side by side on this machine: wall time of a whole grid (default `quick`) run by `local` and by
`processes --workers 2`, and the per-cell overhead of each executor on `smoke` (a job's submission, as grid.json
records it, to the cell's first event in its events.jsonl: the process start, imports and the cell's preparation).

Every run is `hbt-bench run` in a subprocess, as a user runs it, into a fresh folder under --out (a fresh HBT_CACHE_DIR
each, so no run reuses another's embeddings). `ray` starts a local Ray instance; `slurm-local` is submitit's local
executor. Threads: every cell of a `processes` grid gets cores // workers torch threads; `local` gets them all.

With `--rounds N` the timed grids run N times each, in alternating order (ABBA...: load drifts), each run into its
own folder and cache. Per timed grid it also prints each cell's seconds (first to last event) and, under worker
processes, how many frozen-bottom rows each trained cell computed and how many it read from the cache folder.

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


def run_grid(preset: str, executor: str, out: Path, data_dir: str, tag: str = "") -> float:
    """Wall seconds of `hbt-bench run PRESET` with the executor's flags (a fresh cache folder)."""
    grid, cache = out / f"{preset}-{executor}{tag}", out / f"cache-{preset}-{executor}{tag}"
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


def cell_report(grid: Path) -> list[str]:
    """Per cell: seconds from its first to its last event, and its frozen-cache line (computed / read)."""
    doc: dict[str, Any] = json.loads((grid / "grid.json").read_text())
    lines = []
    for cell in doc["cells"]:
        events = read_events(grid / cell["dir"] / "events.jsonl")
        if not events:
            continue
        frozen = [str(getattr(e, "message", "")) for e in events if "frozen cache:" in str(getattr(e, "message", ""))]
        warm = frozen[-1].split(";")[0].removeprefix("frozen cache: ") if frozen else ""
        lines.append(f"    {cell['id']:<34} {events[-1].t - events[0].t:7.1f} s  {warm}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--out", type=Path, default=Path("bench-executors"))
    parser.add_argument("--timed", default="quick", help="the preset whose wall time is compared (default quick)")
    parser.add_argument("--compare", default="local,processes", help="executors timed on --timed")
    parser.add_argument("--overhead", default="local,processes,slurm-local,ray", help="executors run on smoke")
    parser.add_argument("--rounds", type=int, default=1, help="runs of each timed grid, in alternating order")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"machine: {os.cpu_count()} cores; Python {sys.version.split()[0]}")
    compared = [ex for ex in args.compare.split(",") if ex]
    runs: dict[str, list[float]] = {ex: [] for ex in compared}
    for r in range(args.rounds):
        for ex in compared if r % 2 == 0 else compared[::-1]:
            runs[ex].append(run_grid(args.timed, ex, args.out, args.data_dir, f"-r{r}" if args.rounds > 1 else ""))
    walls = {ex: statistics.median(times) for ex, times in runs.items()}
    print(f"\n{args.timed}: wall time of the whole grid (median of {args.rounds} run(s), alternating order)")
    for ex, seconds in walls.items():
        print(f"  {ex:<12} {seconds:8.1f} s   runs: {', '.join(f'{t:.1f}' for t in runs[ex])}")
    if len(walls) > 1:
        base = next(iter(walls.values()))
        print("  " + ", ".join(f"{ex} {base / s:.2f}x of {next(iter(walls))}" for ex, s in list(walls.items())[1:]))
    for ex in compared:
        print(f"  {ex}: per cell (first to last event) and its frozen-cache warm")
        print("\n".join(cell_report(args.out / f"{args.timed}-{ex}{'-r0' if args.rounds > 1 else ''}")))
    print("\nsmoke: per-cell overhead (submission to the cell's first event), seconds")
    print(f"  {'executor':<12} {'median':>8} {'min':>8} {'max':>8}  wall")
    for ex in [e for e in args.overhead.split(",") if e]:
        grid = args.out / f"smoke-{ex}"
        wall = walls[ex] if args.timed == "smoke" and ex in walls else run_grid("smoke", ex, args.out, args.data_dir)
        cells = overheads(grid)
        print(f"  {ex:<12} {statistics.median(cells):8.1f} {min(cells):8.1f} {max(cells):8.1f}  {wall:.1f} s")


if __name__ == "__main__":
    main()
