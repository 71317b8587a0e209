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
    sources = [f"hbt/{p.relative_to(REPO).as_posix()}" for d in ("engine", "tui") for p in (REPO / d).rglob("*.py")]
    assert "hbt/engine/evaluation/evaluate.py" in sources
    for required in (
        *sources,  # every module of every sub-package (a package missing from pyproject's list would be absent)
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


def test_docs_module_table_matches_the_tree() -> None:
    """Every engine sub-package is in the module map's data-flow table (docs/modules.md), every module it names
    exists, engine/ has no flat modules beside its sub-packages, and a sub-package's modules are all named unless the
    row ends with '…'."""
    import re

    text = (REPO / "docs" / "modules.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| [^|]+ \| `(engine/\w+/|tui/)` \| ([^|]+) \|$", text, flags=re.M)
    listed = {folder: cells for folder, cells in rows}
    packages = {f"engine/{p.name}/" for p in (REPO / "engine").iterdir() if (p / "__init__.py").is_file()}
    assert packages <= set(listed), packages - set(listed)
    assert [p.name for p in (REPO / "engine").glob("*.py")] == ["__init__.py"]
    for folder, cells in listed.items():
        names = re.findall(r"`([\w/]+)`", cells)
        for name in names:
            assert (REPO / folder / (name if name.endswith("/") else f"{name}.py")).exists(), (folder, name)
        if not cells.strip().endswith("…") and folder.startswith("engine/"):
            modules = {p.stem for p in (REPO / folder).glob("*.py") if p.stem not in ("__init__", "__main__")}
            assert modules == set(names), (folder, modules ^ set(names))
