"""Shared pieces of the malformed-input tests (test_malformed_*.py, test_disk_faults.py; issue 7).

Hypothesis settings, the one-line error check, byte-level corruptions, writers of valid LAReQA files and presets,
and the in-process CLI runner whose output the `hbt: ` one-line contract is checked on.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hbt.engine.cli.main import main
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

FAST = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
CLI = settings(FAST, max_examples=12)  # each example runs the CLI in-process


@contextlib.contextmanager
def fresh_dir() -> Iterator[Path]:
    """A new empty folder per hypothesis example (tmp_path is shared by all examples of one test)."""
    with tempfile.TemporaryDirectory(prefix="hbt-malformed-") as name:
        yield Path(name)


def assert_one_line(exc: BaseException, *needles: str) -> None:
    message = str(exc)
    assert message and "\n" not in message and "\r" not in message, repr(message)
    for needle in needles:
        assert needle in message, (needle, message)


# ---- broken bytes ----------------------------------------------------------------------------------------------


def _truncated(raw: bytes, data: st.DataObject) -> tuple[bytes, str]:
    return raw[: data.draw(st.integers(0, len(raw) - 1))], ""


def _high_byte(raw: bytes, data: st.DataObject) -> tuple[bytes, str]:
    i = data.draw(st.integers(0, len(raw)))  # raw is ASCII: any byte >= 0x80 alone is invalid UTF-8
    return raw[:i] + bytes([data.draw(st.integers(0x80, 0xFF))]) + raw[i:], "not UTF-8"


def _empty(raw: bytes, data: st.DataObject) -> tuple[bytes, str]:
    return data.draw(st.sampled_from([b"", b"\n", b"   \n\t"])), "empty"


def _garbage(raw: bytes, data: st.DataObject) -> tuple[bytes, str]:
    return data.draw(st.sampled_from([b"{not json", b"[1, 2", b"\x00\x01", b"data: []", b"[" * 100_000])), ""


BYTE_MUTATIONS = [_truncated, _high_byte, _empty, _garbage]


# ---- valid inputs ----------------------------------------------------------------------------------------------


def write_lareqa(root: Path, doc: Any, lang: str = "en", name: str = "xquad-r") -> Path:
    (root / name).mkdir(parents=True, exist_ok=True)
    path = root / name / f"{lang}.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def toml_text(doc: dict[str, dict[str, Any]]) -> str:
    out = []
    for section, values in doc.items():
        out.append(f"[{section}]")
        out += [f"{json.dumps(k)} = {toml_value(v)}" for k, v in values.items()]
    return "\n".join(out) + "\n"


def base_preset() -> dict[str, dict[str, Any]]:
    return {
        "preset": {"name": "bad", "backbones": ["tiny-random"], "strategies": ["xx", "hybrid"], "seeds": [0]},
        "run": {"eval_data": ["xquad-r"], "train_data": "mlqa-r", "langs": ["de", "en"], "steps": 2, "batch_size": 4},
    }


# ---- the CLI end to end ----------------------------------------------------------------------------------------


def cli(argv: list[str], capfd: pytest.CaptureFixture[str]) -> tuple[int, list[str], str]:
    """Run `hbt-bench argv` in-process: exit code, non-blank stderr lines, everything printed."""
    capfd.readouterr()
    code = main(argv)
    out, err = capfd.readouterr()
    return code, [ln for ln in err.splitlines() if ln.strip()], out + err


def assert_user_error(code: int, lines: list[str], printed: str, *needles: str) -> None:
    assert code == 2, printed
    assert "Traceback" not in printed, printed
    assert len(lines) == 1 and lines[0].startswith("hbt: "), lines
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def _eval(root: Path, flags: list[str], out: Path) -> list[str]:
    return ["eval", "--backbone", "tiny-random", "--data-dir", str(root), *flags, "--out", str(out), "--device", "cpu"]
