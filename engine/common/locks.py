"""Advisory locks (POSIX flock) for processes that share a file or folder.

- `exclusive_lock(path)` waits for its turn (concurrent first-use model conversions, runs updating a results root's
  index);
- `holder_lock(path, what, notice)` refuses a second holder at once, naming the first one's host and pid (one grid,
  one runner: hbt.engine.runs.grid_lock), and takes over the lock of a process that died.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import UserError
from .io import write_error


@contextlib.contextmanager
def exclusive_lock(path: str | Path) -> Iterator[None]:
    """Hold an exclusive flock on `path` for the block, waiting for any other holder. A folder is locked through its
    own descriptor; a file is created when missing (a lock file). A no-op where fcntl does not exist (Windows)."""
    try:
        # (POSIX only)
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


@dataclass(frozen=True)
class Holder:
    """Who holds a `holder_lock`: written into the lock file, so a refused second process can name it."""

    host: str
    pid: int
    since: float

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host} (since {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(self.since))})"

    @classmethod
    def read(cls, text: str) -> Holder | None:
        try:
            doc = json.loads(text)
            return cls(str(doc["host"]), int(doc["pid"]), float(doc["since"]))
        except (ValueError, TypeError, KeyError):
            return None


@contextlib.contextmanager
def holder_lock(path: str | Path, what: str, notice: Callable[[str], None]) -> Iterator[Holder]:
    """Hold `path` (a lock file) for the block, or refuse at once: a UserError naming `what` and the holder's host and
    pid. The holder writes itself into the file and empties it when the block ends; a file still naming a holder
    while the lock is free was left by a process that died (kill -9, a crash, a lost node): it is taken over, with
    `notice(line)` saying so. A file system without flock support runs unlocked, with a notice."""

    me = Holder(socket.gethostname(), os.getpid(), time.time())
    try:
        # (POSIX only)
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield me
        return
    target = Path(path)
    try:
        fd = os.open(target, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise write_error(target, exc) from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = Holder.read(os.pread(fd, 4096, 0).decode("utf-8", "replace"))
            who = other.describe() if other else "another process"
            raise UserError(f"{what} is being run by {who}: one runner at a time (wait for it, or stop it)") from None
        except OSError as exc:  # ENOLCK: e.g. an NFS mount without locking
            notice(f"cannot lock {target} ({exc.strerror}): nothing stops a second runner on {what}")
        stale = Holder.read(os.pread(fd, 4096, 0).decode("utf-8", "replace"))
        if stale is not None:
            notice(f"took over {target} from {stale.describe()}, which is no longer running")
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(me.__dict__).encode(), 0)
            os.fsync(fd)
        except OSError as exc:  # a full disk: one line, like any other write
            raise write_error(target, exc) from exc
        try:
            yield me
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)  # any end of the block but a killed process leaves no holder behind
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
