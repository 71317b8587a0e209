"""The wheel installs one top-level import package, `hbt`, with the engine, the TUI and the presets under it."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from tests.conftest import REPO


def test_wheel_has_only_hbt_at_top_level(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("hbt-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/", 1)[0] for n in names if not n.split("/", 1)[0].endswith(".dist-info")}
    assert top == {"hbt"}, top
    for required in (
        "hbt/engine/evaluate.py",
        "hbt/engine/sampler.py",
        "hbt/tui/app.py",
        "hbt/presets/quick.toml",
        "hbt/tui/hbt.tcss",
        "hbt/engine/report/reference/2408.10536.json",
        "hbt/engine/report/reference/2004.05484.json",
    ):
        assert required in names, required
    assert not any(n.startswith(("hbt/__init__.py", "engine/", "tui/", "tests/")) for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "hbt-bench = hbt.engine.cli.main:entry" in text and "hbt-tui = hbt.tui.app:entry" in text
