"""Disk and permission faults: a full disk, an unwritable folder, a failing rename (issue 7).

The atomic writers of engine/common/io.py must raise a one-line OutputError naming the path and what to do, keep
the previous file whole and leave no temporary file behind; the CLI must print one `hbt: ` line and exit 2.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hbt.engine.common.errors import OutputError
from hbt.engine.common.events import JsonlSink
from hbt.engine.common.io import atomic_open, ensure_dir, write_bytes, write_json, write_text

from tests.malformed_common import _eval, assert_one_line, assert_user_error, cli, write_lareqa

# ---- disk and permission faults (engine/common/io.py) ----------------------------------------------------------------

NO_SPACE = OSError(errno.ENOSPC, "No space left on device")


class FullDiskFile:
    """A file object whose writes fail with ENOSPC (the disk filled up mid-write)."""

    def __init__(self, fh: Any) -> None:
        self._fh = fh

    def write(self, data: Any) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fh, name)

    def __enter__(self) -> FullDiskFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._fh.close()


@pytest.fixture
def full_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.fdopen
    monkeypatch.setattr(os, "fdopen", lambda fd, *a, **k: FullDiskFile(real(fd, *a, **k)))


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def assert_nothing_left(out: Path) -> None:
    assert not out.exists() or not any(out.rglob("*")), sorted(str(p) for p in out.rglob("*"))


@pytest.mark.parametrize(
    "write", [lambda p: write_json(p, {"a": 1}), lambda p: write_text(p, "x"), lambda p: write_bytes(p, b"x")]
)
def test_enospc_during_write_is_one_line_and_removes_the_temp_file(
    write: Callable[[Path], None], tmp_path: Path, full_disk: None
) -> None:
    target = tmp_path / "out" / "results.json"
    with pytest.raises(OutputError) as err:
        write(target)
    assert_one_line(err.value, f"out of disk space writing {target} — free space or choose another --out")
    assert leftovers(tmp_path / "out") == []


def test_enospc_keeps_the_previous_file_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "run.json"
    write_json(target, {"status": "running"})

    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(OutputError, match="out of disk space"):
        write_json(target, {"status": "complete"})
    assert json.loads(target.read_text()) == {"status": "running"}
    assert leftovers(tmp_path) == ["run.json"]
    with pytest.raises(OutputError, match="out of disk space"), atomic_open(tmp_path / "x.bin", "wb") as fh:
        fh.write(b"partial")
        raise NO_SPACE
    assert leftovers(tmp_path) == ["run.json"]


@pytest.fixture
def unwritable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder nothing can be created in: chmod 0o500, or (as root, where chmod does not bind) patched calls."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o500)
        yield folder
        folder.chmod(0o700)
        return

    def denied(path: Any) -> bool:
        return Path(path).resolve().is_relative_to(folder.resolve())

    def refuse(path: Any) -> OSError:
        return PermissionError(errno.EACCES, "Permission denied", str(path))

    real_mkstemp, real_mkdir, real_open = tempfile.mkstemp, Path.mkdir, os.open

    def mkstemp(*args: Any, dir: Any = None, **kwargs: Any) -> tuple[int, str]:
        if dir is not None and denied(dir):
            raise refuse(dir)
        return real_mkstemp(*args, dir=dir, **kwargs)

    def mkdir(self: Path, *args: Any, **kwargs: Any) -> None:
        if denied(self) and self.resolve() != folder.resolve():
            raise refuse(self)
        return real_mkdir(self, *args, **kwargs)

    def os_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and denied(path):
            raise refuse(path)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(Path, "mkdir", mkdir)
    monkeypatch.setattr(os, "open", os_open)
    yield folder


def test_eacces_is_one_line(unwritable: Path) -> None:
    target = unwritable / "results.json"
    with pytest.raises(OutputError) as err:
        write_json(target, {"a": 1})
    assert_one_line(err.value, f"cannot write {target}: permission denied — choose another --out")
    with pytest.raises(OutputError, match="permission denied — choose another --out"):
        ensure_dir(unwritable / "run" / "cells")
    with pytest.raises(OutputError, match="permission denied"):
        JsonlSink(unwritable / "run" / "events.jsonl")
    assert leftovers(unwritable) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores chmod; test_eacces_is_one_line patches the calls")
def test_eacces_with_a_real_chmod_folder(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="permission denied"):
            write_text(folder / "x.txt", "x")
        assert leftovers(folder) == []
    finally:
        folder.chmod(0o700)


def test_erofs_and_other_errors_on_rename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for code, needle in ((errno.EROFS, "read-only file system"), (errno.EIO, "Input/output error")):

        def fail(src: Any, dst: Any, code: int = code) -> None:
            raise OSError(code, os.strerror(code))

        monkeypatch.setattr(os, "replace", fail)
        with pytest.raises(OutputError) as err:
            write_json(tmp_path / "a.json", {})
        assert_one_line(err.value, str(tmp_path / "a.json"), needle, "choose another --out")
        assert leftovers(tmp_path) == []
    monkeypatch.undo()
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="cannot write"):
        write_json(tmp_path / "file" / "a.json", {})  # a file where a folder should be


VALID_ONE_QUESTION = {
    "data": [{"paragraphs": [{
        "context": "ab", "sentence_breaks": [[0, 2]], "sentences": ["ab"],
        "qas": [{"id": "q1", "question": "a?", "answers": [{"text": "ab", "answer_start": 0}]}],
    }]}]
}  # fmt: skip


def test_cli_enospc_is_one_line_exit_2(tmp_path: Path, capfd: pytest.CaptureFixture[str], full_disk: None) -> None:
    write_lareqa(tmp_path / "data", VALID_ONE_QUESTION)  # valid data: the write is what fails
    out = tmp_path / "o"
    code, lines, printed = cli(_eval(tmp_path / "data", ["--langs", "en"], out), capfd)
    assert_user_error(code, lines, printed, "out of disk space writing", "free space or choose another --out")
    assert_nothing_left(out)


def test_cli_unwritable_out_is_one_line_exit_2(
    unwritable: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    write_lareqa(tmp_path / "data", VALID_ONE_QUESTION)  # valid data: the write is what fails
    out = unwritable / "o"
    code, lines, printed = cli(_eval(tmp_path / "data", ["--langs", "en"], out), capfd)
    assert_user_error(code, lines, printed, "permission denied — choose another --out")
    assert not out.exists()
