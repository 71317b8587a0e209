"""Atomic file writes: a reader never sees a half-written file.

A write that fails for a reason of the user's environment (unwritable or read-only folder, full disk) raises a
one-line `OutputError` naming the file, and leaves no temp file behind.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

from .errors import DataError, OutputError, UserError
from .paths import CACHE_FIX, cache_root

_T = TypeVar("_T")
_DENIED = (errno.EACCES, errno.EPERM)
_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


def _elsewhere(path: str | Path) -> str:
    """How to write somewhere else: the cache folder (shards, embeddings, converted models) is moved with
    $HBT_CACHE_DIR, a run's or grid's output with --out."""
    try:
        in_cache = Path(path).resolve().is_relative_to(cache_root().resolve())
    except (OSError, RuntimeError):
        in_cache = False
    return CACHE_FIX if in_cache else "choose another --out"


def write_error(path: str | Path, exc: OSError) -> OutputError:
    """The one-line error for an OSError met while writing `path` (what went wrong + how to fix it)."""
    fix = _elsewhere(path)
    if exc.errno in _DENIED:
        return OutputError(f"cannot write {path}: permission denied — {fix}")
    if exc.errno == errno.EROFS:
        return OutputError(f"cannot write {path}: read-only file system — {fix}")
    if exc.errno in _FULL:
        return OutputError(f"out of disk space writing {path} — free space or {fix}")
    reason = exc.strerror or type(exc).__name__
    return OutputError(f"cannot write {path}: {reason} — {fix}")


def ensure_dir(path: str | Path) -> Path:
    """`mkdir -p path`, with an `OutputError` one-liner when the folder cannot be created."""
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(folder, exc) from exc
    return folder


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO[Any]]:
    """Write to a temp file beside `path`, fsync, then rename over it; on error the temp file is removed.

    An OSError (EACCES, EROFS, ENOSPC, ...) while creating, writing, syncing or renaming becomes an OutputError.
    """
    target = Path(path)
    ensure_dir(target.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise write_error(target, exc) from exc
    binary = "b" in mode
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; results are ordinary files
        with os.fdopen(fd, mode, encoding=None if binary else encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise write_error(target, exc) from exc
        raise


def write_json(path: str | Path, data: Any) -> None:
    with atomic_open(path) as fh:
        json.dump(data, fh, indent=2, ensure_ascii=False, sort_keys=False)
        fh.write("\n")


def write_text(path: str | Path, text: str) -> None:
    with atomic_open(path) as fh:
        fh.write(text)


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_open(path, "wb") as fh:
        fh.write(data)


def open_input(
    path: Path,
    opener: Callable[[Path], _T],
    *,
    error: type[UserError] = DataError,
    not_found: str = "file not found",
    cannot_read: str = "cannot read",
) -> _T:
    """`opener(path)` (read the bytes, open a text or gzip stream, ...) where a missing or unreadable file is one
    `error` line naming it: `<path>: <not_found>` or `<path>: <cannot_read> (<reason>)`."""
    try:
        return opener(path)
    except FileNotFoundError:
        raise error(f"{path}: {not_found}") from None
    except OSError as exc:
        raise error(f"{path}: {cannot_read} ({exc.strerror or type(exc).__name__})") from None


def read_text(
    path: Path,
    *,
    error: type[UserError] = DataError,
    not_found: str = "file not found",
    cannot_read: str = "cannot read",
) -> str:
    """A user's text file decoded as UTF-8 (a BOM is dropped); every way it can be unreadable is one `error` line
    naming the file: `<path>: <not_found>`, `<path>: <cannot_read> (<reason>)`, `<path>: not UTF-8 text (...)`."""
    raw = open_input(path, Path.read_bytes, error=error, not_found=not_found, cannot_read=cannot_read)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None


def read_json(path: str | Path) -> Any:
    """Parse a JSON file; bytes that are not UTF-8 raise json.JSONDecodeError like any other malformed JSON."""
    raw = Path(path).read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise json.JSONDecodeError(f"not UTF-8 ({exc.reason})", raw.decode("utf-8", "replace"), exc.start) from None
    return json.loads(text)


def read_json_object(path: str | Path) -> tuple[dict[str, Any] | None, str | None]:
    """A JSON object file hbt wrote (run.json, results.json, grid.json, ...) read without raising: (document, None);
    (None, None) when the file does not exist; else (None, why): `<name> unreadable (<error type>)` for an unreadable,
    torn or non-UTF-8 file, `<name> is not a JSON object` for other JSON."""
    path = Path(path)
    try:
        data = read_json(path)
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError, RecursionError) as exc:  # ValueError: JSON and UTF-8; RecursionError: deep nesting
        return None, f"{path.name} unreadable ({type(exc).__name__})"
    if not isinstance(data, dict):
        return None, f"{path.name} is not a JSON object"
    return data, None


def cache_dir() -> Path:
    """The cache root (`paths.cache_root`), created if missing (a one-line OutputError when it cannot be)."""
    return ensure_dir(cache_root())
