"""Which data files a run read: its results record each one's content checksum (results can be re-made and checked).

The dataset readers call `note(path)` for every file they open; `recording()` collects the paths noted inside its
block (a context variable: one run's block sees only its own reads, threads included when they copy the context).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from ..common.checksums import describe_file

_ACTIVE: ContextVar[list[Path] | None] = ContextVar("hbt_files_read", default=None)


def note(path: Path) -> None:
    """Record that a data file is being read (nothing happens outside a `recording()` block)."""
    paths = _ACTIVE.get()
    if paths is not None and path not in paths:
        paths.append(path)


@contextmanager
def recording() -> Iterator[list[Path]]:
    """The data files read inside the block, in the order first read."""
    paths: list[Path] = []
    token = _ACTIVE.set(paths)
    try:
        yield paths
    finally:
        _ACTIVE.reset(token)


def describe(paths: list[Path], root: str | Path | None) -> dict[str, Any]:
    """What results.json records under "data": the data folder and each file read, by content (sha256, bytes),
    named relative to the folder (absolute when read from elsewhere, e.g. a download cache)."""
    files = dict(describe_file(path, root) for path in paths)
    return {"root": None if root is None else str(Path(root).resolve()), "files": files}
