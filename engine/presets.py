"""Run presets: TOML files (stdlib tomllib) describing a grid, validated with one-line errors."""

from __future__ import annotations

import re
import tomllib
import types
import typing
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any

from hbt.engine.config import RunConfig
from hbt.engine.errors import ConfigError, one_of


def cell_id(backbone: str | None, strategy: str, seed: int) -> str:
    """A grid cell's id and folder name: 'tiny-random__xx__s0'."""
    name = re.sub(r"[^A-Za-z0-9.-]+", "-", backbone or "default").strip("-")
    return f"{name}__{strategy}__s{seed}"


PRESET_KEYS = {
    "name": str,
    "description": str,
    "backbones": list,
    "strategies": list,
    "seeds": list,
    "baseline": bool,
}
GRID_STRATEGIES = ("xx", "xy", "hybrid")


@dataclass
class Preset:
    name: str
    description: str = ""
    backbones: list[str | None] = field(default_factory=lambda: [None])
    strategies: list[str] = field(default_factory=lambda: list(GRID_STRATEGIES))
    seeds: list[int] = field(default_factory=lambda: [0])
    baseline: bool = True  # add the untrained backbone as a zero-shot row
    run: RunConfig = field(default_factory=RunConfig)
    source: str = ""

    def cells(self) -> list[tuple[str | None, str, int]]:
        out: list[tuple[str | None, str, int]] = []
        for backbone in self.backbones:
            if self.baseline:
                out.append((backbone, "none", self.seeds[0]))
            out += [(backbone, s, seed) for s in self.strategies for seed in self.seeds]
        return out


def _types_of(tp: Any) -> tuple[type, ...]:
    """Accepted runtime types for a RunConfig field annotation (e.g. `int | None` -> (int, NoneType))."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return tuple(t for arg in typing.get_args(tp) for t in _types_of(arg))
    if origin is not None:
        return (origin,)
    if tp is float:
        return (float, int)
    return (tp,)


_RUN_TYPES = {f.name: _types_of(typing.get_type_hints(RunConfig)[f.name]) for f in fields(RunConfig)}


def _check_type(section: str, key: str, value: Any, expected: tuple[type, ...]) -> None:
    if (isinstance(value, bool) and bool not in expected) or not isinstance(value, expected):
        names = " or ".join(sorted({"none" if t is type(None) else t.__name__ for t in expected}))
        raise ConfigError(f"[{section}] {key}: expected {names}, got {type(value).__name__} {value!r}")


def parse_preset(data: dict[str, Any], source: str) -> Preset:
    for section in data:
        if section not in ("preset", "run"):
            raise one_of(f"section in {source}", section, ["preset", "run"])
    head = data.get("preset", {})
    for key, value in head.items():
        if key not in PRESET_KEYS:
            raise one_of(f"key [preset] {key!r} in {source}:", key, list(PRESET_KEYS)) from None
        _check_type("preset", key, value, (PRESET_KEYS[key],))
    run_values = data.get("run", {})
    for key, value in run_values.items():
        if key not in _RUN_TYPES:
            raise ConfigError(f"{source}: unknown key [run] {key!r} (allowed: {', '.join(sorted(_RUN_TYPES))})")
        _check_type("run", key, value, _RUN_TYPES[key])
    strategies = head.get("strategies", list(GRID_STRATEGIES))
    for s in strategies:
        if s not in GRID_STRATEGIES:
            raise one_of(f"strategy in {source} [preset] strategies:", s, list(GRID_STRATEGIES))
    seeds = head.get("seeds", [0])
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise ConfigError(f"{source}: [preset] seeds must be a non-empty list of integers")
    run = RunConfig(**{**run_values, "strategy": "xx"})
    run.validate()  # checks values that do not depend on the cell (strategy is set per cell)
    preset = Preset(
        name=head.get("name", Path(source).stem),
        description=head.get("description", ""),
        backbones=list(head.get("backbones", [None])) or [None],
        strategies=list(strategies),
        seeds=list(seeds),
        baseline=head.get("baseline", True),
        run=replace(run, strategy="none"),
        source=source,
    )
    _check_names(preset, source)
    return preset


def _check_names(preset: Preset, source: str) -> None:
    from hbt.engine.data.registry import check_langs, spec
    from hbt.engine.run import check_config

    for name in preset.run.eval_data:
        spec(name)
    if preset.run.train_langs:
        check_langs(preset.run.train_data, preset.run.train_langs)
    check_config(replace(preset.run, strategy="none"))
    for backbone in preset.backbones:
        if backbone is not None:
            from hbt.engine.backbones import resolve_backbone

            resolve_backbone(backbone)


def builtin_dir() -> Path:
    return Path(str(resources.files("hbt.presets")))


def list_presets() -> list[tuple[str, str, int]]:
    rows = []
    for path in sorted(builtin_dir().glob("*.toml")):
        preset = load_preset(str(path))
        rows.append((path.stem, preset.description, len(preset.cells())))
    return rows


def load_preset(name_or_path: str) -> Preset:
    path = Path(name_or_path)
    if not path.suffix:
        path = builtin_dir() / f"{name_or_path}.toml"
        if not path.exists():
            names = [p.stem for p in builtin_dir().glob("*.toml")]
            raise one_of("preset", name_or_path, names)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: preset file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    return parse_preset(data, str(path))


def apply_overrides(preset: Preset, **values: Any) -> Preset:
    """CLI flags override preset values (None = keep the preset's)."""
    run_fields = {"langs", "train_langs", "steps", "batch_size", "max_queries", "data_dir"}
    run = preset.run
    for key, value in values.items():
        if value is None:
            continue
        if key in run_fields:
            run = replace(run, **{key: value})
        elif key == "strategies":
            for s in value:
                if s not in GRID_STRATEGIES:
                    raise one_of("strategy", s, list(GRID_STRATEGIES))
            preset = replace(preset, strategies=value)
        else:
            preset = replace(preset, **{key: value})
    preset = replace(preset, run=run)
    _check_names(preset, preset.source)
    return preset
