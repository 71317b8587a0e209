"""One advisory lock for the processes that share a file or folder (concurrent first-use model conversions, runs
updating a results root's index): `exclusive_lock(path)` holds POSIX flock on it for a `with` block."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def exclusive_lock(path: str | Path) -> Iterator[None]:
    """Hold an exclusive flock on `path` for the block, waiting for any other holder. A folder is locked through its
    own descriptor; a file is created when missing (a lock file). A no-op where fcntl does not exist (Windows)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    target = Path(path)
    flags = os.O_RDONLY if target.is_dir() else os.O_RDWR | os.O_CREAT
    fd = os.open(target, flags, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
