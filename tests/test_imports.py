"""Every internal import of engine/ and tui/ resolves to a file or folder of the checkout by its path alone.

Inside the package, imports are explicit and relative (`from ..common.errors import UserError`), so a reader of the
folders (or a tool that does not install hbt) can follow each one; an absolute `hbt.` import inside the package is a
failure, and engine/ never imports tui/.
"""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# the folders that install as hbt.<name> (pyproject's package-dir); `hbt` itself is the checkout root
TOP = {"engine", "tui", "presets"}


def _files() -> list[Path]:
    return sorted(p for top in ("engine", "tui") for p in (REPO / top).rglob("*.py"))


def _resolves(base: Path, dotted: str) -> bool:
    """Does folder `base` joined with the dotted path name a module file or a package folder?"""
    path = base.joinpath(*dotted.split(".")) if dotted else base
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file() or path.is_dir()


def _internal_imports(path: Path, source: str | None = None) -> list[tuple[int, str, Path | None]]:
    """(line, text, the file or folder it points to, or None if it does not resolve) of each internal import."""
    text = path.read_text(encoding="utf-8") if source is None else source
    tree = ast.parse(text, filename=str(path))
    found: list[tuple[int, str, Path | None]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "hbt" or alias.name.startswith("hbt."):
                    found.append((node.lineno, f"import {alias.name} (absolute inside the package)", None))
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level == 0:
                if module == "hbt" or module.startswith("hbt."):
                    found.append((node.lineno, f"from {module} (absolute inside the package)", None))
                continue
            base = path.parent
            for _ in range(node.level - 1):
                base = base.parent
            if base == REPO.parent or not (base == REPO or base.is_relative_to(REPO)):
                found.append((node.lineno, f"from {'.' * node.level}{module} (above the package)", None))
                continue
            if base == REPO and module and module.split(".")[0] not in TOP:
                found.append((node.lineno, f"from {'.' * node.level}{module} (not a package folder)", None))
                continue
            text = f"from {'.' * node.level}{module} import {', '.join(a.name for a in node.names)}"
            if module:
                target = base.joinpath(*module.split("."))
                found.append((node.lineno, text, target if _resolves(base, module) else None))
            else:
                # `from . import x`: each name is a module of the folder (or a name of its __init__.py)
                ok = all(_resolves(base, a.name) or (base / "__init__.py").is_file() for a in node.names)
                found.append((node.lineno, text, base if ok else None))
    return found


@pytest.mark.parametrize("path", _files(), ids=lambda p: str(p.relative_to(REPO)))
def test_internal_imports_resolve_by_path(path: Path) -> None:
    bad = [f"{path.relative_to(REPO)}:{line}: {text}" for line, text, target in _internal_imports(path) if not target]
    assert not bad, "\n".join(bad)


def test_engine_never_imports_tui() -> None:
    bad = [
        f"{path.relative_to(REPO)}:{line}: {text}"
        for path in sorted((REPO / "engine").rglob("*.py"))
        for line, text, target in _internal_imports(path)
        if target is not None and target.is_relative_to(REPO / "tui")
    ]
    assert not bad, "\n".join(bad)


def test_the_walk_sees_the_imports() -> None:
    # a walk that found nothing would pass vacuously: the package has hundreds of internal imports
    count = sum(len(_internal_imports(p)) for p in _files())
    assert count > 500


def test_an_unresolvable_or_absolute_import_fails(tmp_path: Path) -> None:
    # the checker itself: a relative import to a missing module and an absolute hbt import are both reported
    probe = REPO / "engine" / "common" / "_probe_imports.py"
    probe.write_text(
        "from .no_such_module import x\nfrom hbt.engine.common import errors\nfrom .errors import UserError\n"
    )
    try:
        results = _internal_imports(probe)
    finally:
        probe.unlink()
    assert [target is None for _, _, target in results] == [True, True, False]
