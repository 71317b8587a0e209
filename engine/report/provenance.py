"""Warnings a report prints when the cells it puts side by side were not made alike: other package versions (the
stack each results.json records) or other data files (by content checksum)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from ..runs import stack
from .source import Cell, load_source


def _ids(cells: list[str], limit: int = 3) -> str:
    more = f" +{len(cells) - limit}" if len(cells) > limit else ""
    return ", ".join(cells[:limit]) + more


def stack_warnings(cells: list[Cell]) -> list[str]:
    """One line per stack that differs from the first cell's (naming the packages that moved); cells made before
    stacks were recorded are named when others have one."""
    groups: dict[str, list[str]] = defaultdict(list)
    stacks: dict[str, dict[str, Any]] = {}
    unrecorded = []
    for cell in cells:
        recorded = stack.recorded(cell.results)
        if recorded is None:
            unrecorded.append(cell.id)
            continue
        key = str(recorded.get("packages_sha256"))
        groups[key].append(cell.id)
        stacks.setdefault(key, recorded)
    lines = []
    keys = list(groups)
    for key in keys[1:]:
        change = stack.change_line(stacks[keys[0]], stacks[key])
        lines.append(f"cells made on different stacks: {_ids(groups[keys[0]])} vs {_ids(groups[key])}: {change}")
    if groups and unrecorded:
        lines.append(f"cells without a recorded stack (made before hbt recorded it): {_ids(unrecorded)}")
    return lines


def data_warnings(cells: list[Cell]) -> list[str]:
    """One line per data file read with different contents by the cells."""
    versions: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for cell in cells:
        data = (cell.results or {}).get("data")
        files = data.get("files") if isinstance(data, dict) else None
        for name, entry in (files or {}).items():
            if isinstance(entry, dict) and isinstance(entry.get("sha256"), str):
                versions[name][entry["sha256"]].append(cell.id)
    lines = []
    for name, by_sha in versions.items():
        if len(by_sha) > 1:
            groups = " vs ".join(_ids(ids) for ids in by_sha.values())
            lines.append(f"cells read different contents of {name}: {groups}")
    return lines


def warnings(cells: list[Cell]) -> list[str]:
    complete = [c for c in cells if c.ok]
    return stack_warnings(complete) + data_warnings(complete)


def warnings_for(path: str | Path) -> list[str]:
    """The warnings for the cells of a run or grid directory (see `warnings`)."""
    return warnings(load_source(path).cells)
