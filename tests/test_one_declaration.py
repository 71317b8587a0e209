"""One declaration per setting: RunConfig's fields make the CLI flags, the preset keys and the TUI's Setup fields.

The proof a reader can trust: the test copies the checkout's packages, adds ONE field to RunConfig in the copy (the
way a developer would, one line), and drives the copy in a fresh interpreter: the new field is a flag of `eval`,
`train` and `run`, a key a preset's [run] table accepts (type-checked), and a field of the Setup screen whose text
is parsed and validated, reaching the grid the form builds. Nothing else of the copy is edited."""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hbt.engine.cli.main import build_parser
from hbt.engine.common.run_config import RunConfig
from hbt.engine.common.setting import parse_value, settings_of, value_text
from hbt.engine.runs.presets import FLAG_OF, RUN_SETTINGS, parse_preset
from hbt.tui.screens.setup import FIELD_OF_KEY, MORE_SETTINGS, OWN_CONTROL

REPO = Path(__file__).resolve().parents[1]
NEW_FIELD = '    probe_knob: int | None = setting(None, "a knob the test added", TRAINING)\n'

PROBE = textwrap.dedent(
    """
    import asyncio, contextlib, io, sys
    from pathlib import Path
    import pytest
    from hbt.engine.cli.main import build_parser
    from hbt.engine.cli.flags import given_settings
    from hbt.engine.common.errors import ConfigError
    from hbt.engine.runs.presets import apply_overrides, load_preset, parse_preset
    from hbt.tui.app import HbtApp
    from tests.test_tui_fakes import T0, FakeBackend

    assert __import__("hbt.engine.common.run_config").engine.common.run_config.__file__.startswith(sys.argv[1])
    parser = build_parser()
    # the CLI: a flag of each command that takes a training setting
    for command in (["train", "--strategy", "xx"], ["run", "smoke"]):
        args = parser.parse_args([*command, "--probe-knob", "7"])
        assert given_settings(args, command[0])["probe_knob"] == 7, command
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        parser.parse_args(["run", "--help"])
    assert "--probe-knob PROBE_KNOB" in out.getvalue() and "a knob the test added" in out.getvalue()
    with pytest.raises(ConfigError, match="--probe-knob: 'x' is not a whole number"):
        parser.parse_args(["run", "smoke", "--probe-knob", "x"])
    given = given_settings(parser.parse_args(["run", "smoke", "--probe-knob", "9"]), "run")
    grid = apply_overrides(load_preset("smoke"), **given)
    assert grid.run.probe_knob == 9
    # a preset key, type-checked like every [run] key
    assert parse_preset({"run": {"probe_knob": 3}}, "p.toml").run.probe_knob == 3
    with pytest.raises(ConfigError, match=r"p.toml: \\[run\\] probe_knob: expected integer or none, got string 'x'"):
        parse_preset({"run": {"probe_knob": "x"}}, "p.toml")

    # the TUI: a field of Setup's "more settings", parsed and validated, in the grid the form builds
    async def setup() -> None:
        data = Path(sys.argv[2])
        app = HbtApp(backend=FakeBackend(fixed_catalogue=True), runs_root=data.parent / "runs", data_dir=str(data),
                     start_preset="smoke", clock=lambda: T0)
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            screen = app.screen
            screen.set_field("probe-knob", "abc")
            await pilot.pause()
            result = screen.validate()
            assert result.preset is None and result.field == "probe-knob", result
            assert "probe knob: 'abc' is not a whole number" in result.message
            assert screen.query_one("#row-probe-knob").has_class("-invalid")
            screen.set_field("probe-knob", "5")
            await pilot.pause()
            result = screen.validate()
            assert result.preset is not None and result.preset.run.probe_knob == 5, result.message
    asyncio.run(setup())
    print("probe-knob: flag, preset key and Setup field")
    """
)


def help_of(parser: argparse.ArgumentParser, command: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        parser.parse_args([command, "--help"])
    return out.getvalue()


def test_a_field_added_to_runconfig_is_a_flag_a_preset_key_and_a_setup_field(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    for folder in ("engine", "tui", "presets"):
        shutil.copytree(REPO / folder, tree / "hbt" / folder, ignore=shutil.ignore_patterns("__pycache__"))
    config = tree / "hbt" / "engine" / "common" / "run_config.py"
    text = config.read_text(encoding="utf-8")
    anchor = "    def validate(self) -> RunConfig:\n"
    assert text.count(anchor) == 1
    config.write_text(text.replace(anchor, NEW_FIELD + "\n" + anchor), encoding="utf-8")
    (tmp_path / "probe.py").write_text(PROBE, encoding="utf-8")
    (tmp_path / "data").mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tree), str(REPO)]), "HBT_DATA_DIR": ""}
    done = subprocess.run(
        [sys.executable, str(tmp_path / "probe.py"), str(tree), str(tmp_path / "data")],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "probe-knob: flag, preset key and Setup field" in done.stdout


def test_every_setting_is_a_flag_of_its_commands_and_a_setup_field() -> None:
    """The real declaration: each RunConfig field is a flag of exactly the commands it names; each one `run` takes
    is a preset key with that flag and a field of Setup (its own control or a generated one)."""
    parser = build_parser()
    for command in ("eval", "train", "run"):
        flags = set(re.findall(r"(--[a-z-]+)", help_of(parser, command)))
        for name, s in settings_of(RunConfig).items():
            assert (s.flag in flags) == (command in s.commands), (command, name)
    for name, s in RUN_SETTINGS.items():
        assert FLAG_OF[f"[run] {name}"] == s.flag
        assert FIELD_OF_KEY[name] == s.field_id
        assert (name in OWN_CONTROL) != (s in MORE_SETTINGS)
        parse_preset({"run": {name: RunConfig().__dict__[name]}} if name != "hybrid_p" else {}, "p.toml")


@pytest.mark.parametrize("name", sorted(settings_of(RunConfig)))
def test_a_value_written_as_text_reads_back(name: str) -> None:
    """What the Setup screen shows for a value (`value_text`) is read back to that value by the declared parser."""
    s = settings_of(RunConfig)[name]
    examples = {"int": 7, "float": 2e-05, "list": ["de", "en"], "bool": True, "flag": True, "custom": [0.0, 0.25]}
    value = s.choices[-1] if s.choices else examples.get(s.kind, "some-text")
    assert parse_value(s, value_text(value)) == value
