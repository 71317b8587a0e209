"""One grid, one runner: the lock a process holds on a grid folder while it runs the grid's cells.

`grid_lock(out, notice)` wraps common.locks.holder_lock around `<grid>/grid.lock`: a second `hbt-bench run --resume`
(or a TUI launch) of the same grid is refused at once with the first runner's host and pid, instead of both
training and writing the same cells; a lock left by a killed runner is taken over with a line saying so. A node
other than 0 of a multi-node launch follows node 0's grid: it holds its own `grid-node<N>.lock`.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from ..common.locks import Holder, holder_lock

LOCK_FILE = "grid.lock"


def lock_path(out: Path, node_rank: int = 0) -> Path:
    return out / (LOCK_FILE if node_rank == 0 else f"grid-node{node_rank}.lock")


def grid_lock(out: Path, notice: Callable[[str], None], node_rank: int = 0) -> AbstractContextManager[Holder]:
    """Hold the grid folder `out` (which must exist) for a `with` block, or raise a one-line UserError."""
    return holder_lock(lock_path(out, node_rank), f"grid {out}", notice)
