"""Content checksums of input files (data files a run read, corpus files behind a shard cache).

`file_sha256(path)` streams the file once and remembers the digest by (resolved path, inode, mtime in ns, size), in
memory and in `<cache>/checksums.json`, so a 10 GB corpus is hashed once, not per process; a file rewritten in place
(same name and size, new content) has a new mtime and is hashed again. The memo is advisory: an unreadable or
unwritable memo file only costs a re-hash.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path
from typing import Any

from .errors import OutputError
from .io import read_json_object, write_json
from .locks import exclusive_lock
from .paths import cache_root

CHUNK = 1 << 20
MEMO_FILE = "checksums.json"
_memory: dict[str, tuple[tuple[int, int, int], str]] = {}


def _stamp(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _memo_path() -> Path:
    return cache_root() / MEMO_FILE


def _read_memo(memo: Path) -> dict[str, Any]:
    doc, _ = read_json_object(memo) if memo.is_file() else (None, None)
    return doc or {}


def file_sha256(path: str | Path) -> str:
    """The sha256 of the file's bytes (hex), remembered while the file's inode, mtime and size stay the same."""
    resolved = Path(path).resolve()
    key, stamp = str(resolved), _stamp(resolved)
    known = _memory.get(key)
    if known is not None and known[0] == stamp:
        return known[1]
    memo = _memo_path()
    entry = _read_memo(memo).get(key)
    if isinstance(entry, list) and len(entry) == 4 and tuple(entry[:3]) == stamp and isinstance(entry[3], str):
        _memory[key] = (stamp, entry[3])
        return entry[3]
    sha = _digest(resolved)
    if _stamp(resolved) != stamp:  # written while it was read: do not remember a digest of a moving file
        return sha
    _memory[key] = (stamp, sha)
    with contextlib.suppress(OSError, OutputError):  # a memo that cannot be written costs a re-hash later
        memo.parent.mkdir(parents=True, exist_ok=True)
        with exclusive_lock(memo.with_suffix(".lock")):
            doc = _read_memo(memo)
            doc[key] = [*stamp, sha]
            write_json(memo, doc)
    return sha


def describe_file(path: str | Path, root: str | Path | None = None) -> tuple[str, dict[str, Any]]:
    """(name, {"sha256", "bytes"}) for a results document: the path relative to `root` when inside it."""
    resolved = Path(path).resolve()
    name = str(resolved)
    if root is not None:
        with contextlib.suppress(ValueError):
            name = resolved.relative_to(Path(root).resolve()).as_posix()
    return name, {"sha256": file_sha256(resolved), "bytes": os.path.getsize(resolved)}
