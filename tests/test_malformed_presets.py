"""Malformed presets: one clear line naming the file and the key (issue 7).

Property-based (hypothesis): a valid preset is generated, then broken (bad or truncated TOML, unknown keys and
sections, wrong types, unknown names, out-of-range values, non-UTF-8 bytes). load_preset must raise a
ConfigError whose single-line message names the file and the key. Bad presets and bad command-line values through
the CLI: tests/test_malformed_cli.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
from hbt.engine.common.errors import ConfigError, DataError, UserError
from hbt.engine.common.run_config import RunConfig
from hbt.engine.runs.presets import load_preset
from hypothesis import given
from hypothesis import strategies as st

from tests.malformed_common import FAST, _high_byte, assert_one_line, base_preset, fresh_dir, toml_text

# ---- presets ---------------------------------------------------------------------------------------------------


TOML_WRONG = {str: ["1", "true", "[1]", "{a = 1}", "1979-05-27"], int: ['"1"', "1.5", "true", "[1]"],
              float: ['"x"', "true", "[]"], bool: ['"yes"', "1", "[]"], list: ['"xx"', "1", "{a = 1}"]}  # fmt: skip
PRESET_TYPES = {"name": str, "description": str, "backbones": list, "strategies": list, "seeds": list, "baseline": bool}
RUN_TYPES = {"steps": int, "batch_size": int, "lr": float, "text_mode": str, "eval_data": list, "langs": list,
             "save_model": bool, "max_queries": int, "train_data": str, "device": str}  # fmt: skip
RUN_FIELDS = {f.name for f in fields(RunConfig)}
IDENT = st.from_regex(r"[a-z][a-z_]{0,8}", fullmatch=True)


def _toml_syntax(data: st.DataObject) -> tuple[str, list[str]]:
    text = toml_text(base_preset())
    garbage = data.draw(
        st.sampled_from(["= 3", "[preset", 'x = "open', "steps = = 2", "[run]\n[run]", "a.b = 1\na = 2"])
    )
    return text + garbage + "\n", ["not valid TOML"]


def _toml_unknown_key(data: st.DataObject) -> tuple[str, list[str]]:
    doc = base_preset()
    section = data.draw(st.sampled_from(["preset", "run"]))
    key = data.draw(IDENT.filter(lambda k: k not in PRESET_TYPES and k not in RUN_FIELDS))
    doc[section][key] = 1
    return toml_text(doc), [f"unknown key [{section}] {key!r}", "allowed:"]


def _toml_unknown_section(data: st.DataObject) -> tuple[str, list[str]]:
    doc: dict[str, Any] = base_preset()
    section = data.draw(IDENT.filter(lambda s: s not in ("preset", "run")))
    doc[section] = {"a": 1}
    return toml_text(doc), [f"unknown section [{section}]", "allowed:"]


def _toml_wrong_type(data: st.DataObject) -> tuple[str, list[str]]:
    section, types = data.draw(st.sampled_from([("preset", PRESET_TYPES), ("run", RUN_TYPES)]))
    key = data.draw(st.sampled_from(sorted(types)))
    literal = data.draw(st.sampled_from(TOML_WRONG[types[key]]))
    doc = base_preset()
    doc[section].pop(key, None)
    return toml_text(doc).replace(f"[{section}]\n", f"[{section}]\n{key} = {literal}\n"), [f"[{section}] {key}"]


def _toml_wrong_item(data: st.DataObject) -> tuple[str, list[str]]:
    section, key, literal = data.draw(
        st.sampled_from(
            [("preset", "backbones", "[1]"), ("preset", "strategies", '["xx", 2]'), ("preset", "seeds", '["0"]'),
             ("preset", "seeds", "[true]"), ("run", "langs", '["en", [1]]'), ("run", "eval_data", "[{a = 1}]")]
        )
    )  # fmt: skip
    doc = base_preset()
    doc[section].pop(key, None)
    return toml_text(doc).replace(f"[{section}]\n", f"[{section}]\n{key} = {literal}\n"), [f"[{section}] {key}["]


def _toml_unknown_name(data: st.DataObject) -> tuple[str, list[str]]:
    name = data.draw(st.from_regex(r"zz[a-z]{0,5}", fullmatch=True))
    section, key, value, needle = data.draw(
        st.sampled_from(
            [("preset", "backbones", [name], "unknown backbone"), ("preset", "strategies", [name], "unknown strategy"),
             ("run", "langs", [name], "unknown language"), ("run", "eval_data", [name], "unknown dataset"),
             ("run", "train_data", name, "unknown dataset"), ("run", "train_langs", [name], "unknown language"),
             ("run", "text_mode", name, "unknown text mode"), ("run", "device", name, "unknown device")]
        )
    )  # fmt: skip
    doc = base_preset()
    doc[section][key] = value
    return toml_text(doc), [f"[{section}] {key}" if key != "text_mode" else "[run]", needle, repr(name), "allowed"]


BAD_VALUES: list[tuple[str, str, Any, list[str]]] = [
    ("run", "steps", 0, ["[run] steps: must be positive, got 0"]),
    ("run", "steps", -3, ["[run] steps: must be positive"]),
    ("run", "max_queries", -1, ["[run] max_queries: must be positive"]),
    ("run", "lr", -1.0, ["[run] lr: must be positive"]),
    ("run", "lr", float("nan"), ["[run] lr: must be positive, got nan"]),
    ("run", "warmup_ratio", 1.5, ["[run] warmup_ratio: must be in [0, 1)"]),
    ("run", "batch_size", 1, ["[run] batch_size: must be at least 2"]),
    ("run", "hybrid_p", 2.0, ["[run] hybrid_p: must be in [0, 1]"]),
    ("run", "eval_data", [], ["[run] eval_data: must name at least one dataset"]),
    ("run", "train_data", "tydi", ["[run] train_data:", "not parallel"]),
    ("run", "eval_data", ["mlqa-r"], ["[run]", "zero-shot"]),
    ("preset", "seeds", [], ["[preset] seeds: must be a non-empty list"]),
    ("preset", "seeds", [0, 0], ["[preset]", "appears twice"]),
    ("preset", "name", "../x", ["[preset] name '../x'", "plain folder name"]),
    ("run", "data_dir", "/no/such/dir", ["[run] data_dir:", "does not exist"]),
    ("run", "backbone", "x", ["[run] backbone is set per grid cell: use [preset] backbones"]),
    ("run", "strategy", "xx", ["[run] strategy is set per grid cell"]),
]


def _toml_bad_value(data: st.DataObject) -> tuple[str, list[str]]:
    section, key, value, needles = data.draw(st.sampled_from(BAD_VALUES))
    doc = base_preset()
    doc[section][key] = value
    return toml_text(doc), needles


def _toml_not_a_table(data: st.DataObject) -> tuple[str, list[str]]:
    section = data.draw(st.sampled_from(["preset", "run"]))
    value = data.draw(st.sampled_from(["3", '"x"', "[1]"]))
    return f"{section} = {value}\n", [f"[{section}] table"]


PRESET_MUTATIONS = [_toml_syntax, _toml_unknown_key, _toml_unknown_section, _toml_wrong_type, _toml_wrong_item,
                    _toml_unknown_name, _toml_bad_value, _toml_not_a_table]  # fmt: skip


def test_base_preset_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "ok.toml"
    path.write_text(toml_text(base_preset()), encoding="utf-8")
    preset = load_preset(str(path))
    assert [c[1] for c in preset.cells()] == ["none", "xx", "hybrid"]


@FAST
@given(mutate=st.sampled_from(PRESET_MUTATIONS), data=st.data())
def test_preset_errors_name_file_and_key(mutate: Callable[..., Any], data: st.DataObject) -> None:
    text, needles = mutate(data)
    with fresh_dir() as root:
        path = root / "bad.toml"
        path.write_text(text, encoding="utf-8")
        with pytest.raises((ConfigError, DataError)) as err:  # DataError: a [run] data_dir that does not exist
            load_preset(str(path))
    assert_one_line(err.value, str(path), *needles)


@pytest.mark.parametrize(("section", "key", "value", "needles"), BAD_VALUES, ids=lambda v: str(v)[:20])
def test_every_bad_preset_value(section: str, key: str, value: Any, needles: list[str], tmp_path: Path) -> None:
    """Each table row once, whatever hypothesis happens to sample."""
    doc = base_preset()
    doc[section][key] = value
    path = tmp_path / "bad.toml"
    path.write_text(toml_text(doc), encoding="utf-8")
    with pytest.raises(UserError) as err:
        load_preset(str(path))
    assert_one_line(err.value, str(path), *needles)


@FAST
@given(data=st.data())
def test_preset_broken_bytes(data: st.DataObject) -> None:
    raw = toml_text(base_preset()).encode()
    cut = data.draw(st.booleans())
    content, needle = (raw[: data.draw(st.integers(0, len(raw) - 1))], "") if cut else _high_byte(raw, data)
    with fresh_dir() as root:
        path = root / "bad.toml"
        path.write_bytes(content)
        try:
            load_preset(str(path))  # a cut at a line end can still be a valid (smaller) preset
            assert cut
        except ConfigError as exc:
            assert_one_line(exc, str(path), needle)


def test_preset_unreadable_paths(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="preset file not found"):
        load_preset(str(tmp_path / "none.toml"))
    (tmp_path / "dir.toml").mkdir()
    with pytest.raises(ConfigError) as err:
        load_preset(str(tmp_path / "dir.toml"))
    assert_one_line(err.value, "dir.toml", "cannot read")
