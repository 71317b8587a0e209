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

from ..backbones import resolve_backbone
from ..common.errors import ConfigError, UserError, one_of
from ..common.io import read_text
from ..common.run_config import RunConfig
from ..common.setting import group_rules, settings_of
from ..common.vocabulary import BASELINE, GRID_STRATEGIES, arm_name, bad_value, check_seed, check_strategy
from .config import check_config
from .executor import ExecutorSpec, parse_executor, spec_from_dict, validate


def cell_id(backbone: str | None, strategy: str, seed: int) -> str:
    """A grid cell's id and folder name: 'tiny-random__xx__s0' ('tiny-random__hybrid-a0.25__s0' in an alpha sweep)."""
    name = re.sub(r"[^A-Za-z0-9.-]+", "-", backbone or "default").strip("-")
    return f"{name}__{strategy}__s{seed}"


PRESET_KEYS = {
    "name": str,
    "description": str,
    "backbones": list,
    "strategies": list,
    "seeds": list,
    "baseline": bool,
    "noninferiority_margin": float,  # the claims' "at least as good" margin (mAP); default claims.DEFAULT_MARGIN
}
PRESET_ELEMENTS = {"backbones": str, "strategies": str, "seeds": int}  # the type of each list's items
SECTIONS = ("preset", "run", "executor")
PER_CELL = {"backbone": "[preset] backbones", "strategy": "[preset] strategies", "seed": "[preset] seeds"}
# the CLI flags of `hbt-bench run` that override a preset key (their errors name the flag, not the file): the grid's
# own lists, and every [run] key (a RunConfig setting that `run` takes, its flag from its declaration)
RUN_SETTINGS = {name: s for name, s in settings_of(RunConfig).items() if "run" in s.commands}
FLAG_OF = {
    "[preset] backbones": "--backbones",
    "[preset] strategies": "--strategies",
    "[preset] seeds": "--seeds",
    "[preset] noninferiority_margin": "--margin",
    **{f"[run] {name}": s.flag for name, s in RUN_SETTINGS.items()},
}
_OVERRIDE_KEY = {key.split(" ", 1)[1]: key for key in FLAG_OF} | {"margin": "[preset] noninferiority_margin"}


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
    hybrid_ps: list[float] | None = None  # an alpha sweep ([run] hybrid_p = [0, 0.5, 1]): one hybrid arm per value
    noninferiority_margin: float | None = None  # None: the claims' default margin
    executor: ExecutorSpec = field(default_factory=ExecutorSpec)  # where the cells run ([executor], --executor)

    def arms(self, strategy: str) -> list[str]:
        """The grid arms of a strategy: hybrid in an alpha sweep has one per alpha ('hybrid-a0.25')."""
        if strategy == "hybrid" and self.hybrid_ps:
            return [arm_name(strategy, p) for p in self.hybrid_ps]
        return [strategy]

    def cells(self) -> list[tuple[str | None, str, int]]:
        """(backbone, arm, seed) of every cell: the baseline, then each strategy's arms x seeds."""
        out: list[tuple[str | None, str, int]] = []
        for backbone in self.backbones:
            if self.baseline:
                out.append((backbone, BASELINE, self.seeds[0]))
            out += [(backbone, arm, seed) for s in self.strategies for arm in self.arms(s) for seed in self.seeds]
        return out


def preset_to_dict(preset: Preset) -> dict[str, Any]:
    """A preset as JSON (what the TUI hands the grid's submitting process; None backbone = the default)."""
    return {
        "name": preset.name,
        "description": preset.description,
        "backbones": list(preset.backbones),
        "strategies": list(preset.strategies),
        "seeds": list(preset.seeds),
        "baseline": preset.baseline,
        "run": preset.run.to_dict(),
        "source": preset.source,
        "executor": preset.executor.to_dict(),
        "hybrid_ps": preset.hybrid_ps,
        "noninferiority_margin": preset.noninferiority_margin,
    }


def preset_from_dict(data: dict[str, Any]) -> Preset:
    """`preset_to_dict`'s inverse, checked like a preset file (one ConfigError line)."""

    try:
        preset = Preset(
            name=str(data["name"]),
            description=str(data.get("description", "")),
            backbones=list(data["backbones"]),
            strategies=list(data["strategies"]),
            seeds=list(data["seeds"]),
            baseline=bool(data["baseline"]),
            run=RunConfig.from_dict(data["run"]),
            source=str(data.get("source", "")),
            executor=validate(spec_from_dict(data.get("executor"))),
            hybrid_ps=None if data.get("hybrid_ps") is None else [float(a) for a in data["hybrid_ps"]],
            noninferiority_margin=None
            if data.get("noninferiority_margin") is None
            else float(data["noninferiority_margin"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"not a preset document ({type(exc).__name__}: {exc})") from None
    check_preset(preset)
    return preset


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


def _element_type(tp: Any) -> type | None:
    """The item type of a `list[X]` (or `list[X] | None`) annotation, else None."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        found = [t for arg in typing.get_args(tp) if (t := _element_type(arg)) is not None]
        return found[0] if found else None
    if origin is list:
        (arg,) = typing.get_args(tp)
        return arg if isinstance(arg, type) else None
    return None


_HINTS = typing.get_type_hints(RunConfig)
_RUN_TYPES = {f.name: _types_of(_HINTS[f.name]) for f in fields(RunConfig)}
_RUN_ELEMENTS = {f.name: t for f in fields(RunConfig) if (t := _element_type(_HINTS[f.name])) is not None}


def _show(value: Any, limit: int = 60) -> str:
    """A short, single-line repr of a value for an error message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _type_name(tp: type) -> str:
    return {type(None): "none", str: "string", int: "integer", float: "number", bool: "boolean", list: "list",
            dict: "table"}.get(tp, tp.__name__)  # fmt: skip


def _wrong_type(value: Any, expected: tuple[type, ...]) -> bool:
    return (isinstance(value, bool) and bool not in expected) or not isinstance(value, expected)


def _check_type(where: str, key: str, value: Any, expected: tuple[type, ...], element: type | None = None) -> None:
    """ConfigError `<where>: expected <types>, got <type> <value>` for field `key`; list items are checked against
    `element`."""
    if _wrong_type(value, expected):
        names = " or ".join(sorted({_type_name(t) for t in expected if not (t is int and float in expected)}))
        raise ConfigError(f"{where}: expected {names}, got {_type_name(type(value))} {_show(value)}", key=key)
    if element is not None and isinstance(value, list):
        for i, item in enumerate(value):
            if _wrong_type(item, (element,)):
                raise ConfigError(
                    f"{where}[{i}]: expected {_type_name(element)}, got {_type_name(type(item))} {_show(item)}", key=key
                )


def check_run_types(values: dict[str, Any], where: str) -> None:
    """Each known RunConfig key's value has its field's type: `<where> <key>: expected integer, got string '16'`
    (a preset's [run], grid.json's run block). Unknown keys are the caller's business."""
    for key, value in values.items():
        if key in _RUN_TYPES:
            _check_type(f"{where} {key}", key, value, _RUN_TYPES[key], _RUN_ELEMENTS.get(key))


def alpha_list(values: list[Any], where: str) -> list[float] | None:
    """The alpha values of a sweep: numbers in [0, 1], none repeated; a single value is no sweep (None)."""
    if not values:
        raise ConfigError(f"{where}: an alpha sweep needs at least one value", key="hybrid_p")
    for i, value in enumerate(values):
        if _wrong_type(value, (float, int)):
            raise ConfigError(f"{where}[{i}]: expected number, got {_type_name(type(value))} {_show(value)}",
                              key="hybrid_p")  # fmt: skip
        if not 0 <= value <= 1:
            raise ConfigError(f"{where}[{i}]: must be in [0, 1], got {value}", key="hybrid_p")
    alphas = [float(v) for v in values]
    if len(set(alphas)) != len(alphas):
        raise ConfigError(f"{where}: {_show(values)} repeats a value", key="hybrid_p")
    return alphas if len(alphas) > 1 else None


def parse_preset(data: dict[str, Any], source: str) -> Preset:
    """Validate a decoded preset; every problem is one ConfigError line naming the file and the key."""
    for section, value in data.items():
        if section not in SECTIONS:
            raise ConfigError(f"{source}: unknown section [{section}] (allowed: [preset], [run], [executor])")
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: {section} should be a [{section}] table, got {_show(value)}")
    head: dict[str, Any] = data.get("preset", {})
    for key, value in head.items():
        if key not in PRESET_KEYS:
            allowed = ", ".join(sorted(PRESET_KEYS))
            raise ConfigError(f"{source}: unknown key [preset] {key!r} (allowed: {allowed})", key=key)
        _check_type(f"{source}: [preset] {key}", key, value, _types_of(PRESET_KEYS[key]), PRESET_ELEMENTS.get(key))
    run_values: dict[str, Any] = dict(data.get("run", {}))
    hybrid_ps = None
    if isinstance(run_values.get("hybrid_p"), list):  # an alpha sweep: one hybrid arm per value
        hybrid_ps = alpha_list(run_values.pop("hybrid_p"), f"{source}: [run] hybrid_p")
    for key in run_values:
        if key in PER_CELL:
            raise ConfigError(f"{source}: [run] {key} is set per grid cell: use {PER_CELL[key]} instead", key=key)
        if key not in _RUN_TYPES:
            allowed = ", ".join(sorted(set(_RUN_TYPES) - set(PER_CELL)))
            raise ConfigError(f"{source}: unknown key [run] {key!r} (allowed: {allowed})", key=key)
    check_run_types(run_values, f"{source}: [run]")
    name = head.get("name", Path(source).stem)
    if not name.strip() or name in (".", "..") or any(c in name for c in "/\\") or not name.isprintable():
        raise ConfigError(
            f"{source}: [preset] name {_show(name)} must be a plain folder name (no '/', not empty)", key="name"
        )
    preset = Preset(
        name=name,
        description=head.get("description", ""),
        backbones=list(head.get("backbones", [None])) or [None],
        strategies=list(head.get("strategies", GRID_STRATEGIES)),
        seeds=list(head.get("seeds", [0])),
        baseline=head.get("baseline", True),
        run=replace(RunConfig(**group_rules(run_values, settings_of(RunConfig))), strategy=BASELINE),
        source=source,
        hybrid_ps=hybrid_ps,
        noninferiority_margin=head.get("noninferiority_margin"),
        executor=parse_executor(data.get("executor", {}), source),
    )
    _check(preset, lambda key: f"{source}: {key}")
    return preset


def check_preset(preset: Preset) -> None:
    """The checks of a grid that needs no model and no data file (what loading a preset runs): `run_grid` runs them on
    the preset it is given; each cell then runs `check_config` once, when it starts."""
    _check(preset, lambda key: "")


def _check(preset: Preset, label: typing.Callable[[str], str]) -> None:
    """Every check that needs no model and no data file: the grid's own, then `check_config` (the one validation of a
    run's settings) for each strategy. `label(key)` names the key in the message ('file: [run] langs', '--langs', or
    '' to keep the message as it is); the error keeps the field as its `key`."""

    def fail(section: str, exc: UserError) -> typing.NoReturn:
        where = label(f"[{section}] {exc.key}" if exc.key else f"[{section}]")
        text = f"{where}: {exc.detail}" if where else str(exc)
        raise type(exc)(text, key=exc.key, detail=exc.detail) from None

    for s in preset.strategies:
        try:
            check_strategy(s, GRID_STRATEGIES, key="strategies")
        except ConfigError as exc:
            fail("preset", exc)
    if not preset.seeds:
        fail("preset", bad_value("seeds", "must be a non-empty list of integers"))
    for seed in preset.seeds:
        try:
            check_seed("seeds", seed)
        except ConfigError as exc:
            fail("preset", exc)
    cells = [cell_id(*cell) for cell in preset.cells()]
    if not cells:
        fail("preset", ConfigError("the grid has no cells (no strategies and baseline = false)", key="strategies"))
    if len(set(cells)) != len(cells):
        twice = next(c for c in cells if cells.count(c) > 1)
        repeated = next((k for k in ("backbones", "strategies", "seeds") if _repeats(getattr(preset, k))), None)
        why = f"grid cell {twice!r} appears twice (repeated backbones, strategies or seeds)"
        fail("preset", ConfigError(why, key=repeated))
    if preset.noninferiority_margin is not None and not 0 <= preset.noninferiority_margin < 1:
        why = f"must be in [0, 1), got {preset.noninferiority_margin}"
        fail("preset", bad_value("noninferiority_margin", why))
    for strategy in dict.fromkeys(preset.strategies or [BASELINE]):  # strategy-specific checks need each strategy
        alphas = preset.hybrid_ps if strategy == "hybrid" and preset.hybrid_ps else [preset.run.hybrid_p]
        for alpha in alphas:  # each alpha of a sweep (alpha < 1 needs X-Y pairs, so two training languages)
            try:
                check_config(replace(preset.run, strategy=strategy, hybrid_p=alpha))
            except UserError as exc:
                fail("run", exc)
    for backbone in preset.backbones:
        if backbone is not None:
            try:
                resolve_backbone(backbone)
            except UserError as exc:
                exc.key = "backbones"
                fail("preset", exc)


def _repeats(values: list[typing.Any]) -> bool:
    return len(set(values)) != len(values)


def builtin_dir() -> Path:
    return Path(str(resources.files("hbt.presets")))


def list_presets() -> list[tuple[str, str, int]]:
    rows = []
    for path in sorted(builtin_dir().glob("*.toml")):
        preset = load_preset(str(path))
        rows.append((path.stem, preset.description, len(preset.cells())))
    return rows


def _one_line(text: str) -> str:
    return " ".join(text.split())


def load_preset(name_or_path: str) -> Preset:
    path = Path(name_or_path)
    if not path.suffix:
        path = builtin_dir() / f"{name_or_path}.toml"
        if not path.exists():
            names = [p.stem for p in builtin_dir().glob("*.toml")]
            raise one_of("preset", name_or_path, names)
    text = read_text(path, error=ConfigError, not_found="preset file not found", cannot_read="cannot read the preset")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({_one_line(str(exc))})") from None
    return parse_preset(data, str(path))


def apply_overrides(preset: Preset, *, name_flags: bool = True, **values: Any) -> Preset:
    """CLI flags override preset values (None = keep the preset's); an error in a flag's value names the flag (unless
    `name_flags` is false: the TUI shows its own field). Every error carries the field at fault as its `key`."""
    run = preset.run
    given: set[str] = set()
    for key, value in values.items():
        if value is None:
            continue
        given.add(_OVERRIDE_KEY.get(key, key))
        if key == "margin":
            preset = replace(preset, noninferiority_margin=value)
        elif key == "hybrid_p":  # a number, 'proportional', or a list: an alpha sweep
            sweep = alpha_list(value, "--hybrid-p") if isinstance(value, list) else None
            single = value if not isinstance(value, list) else (None if sweep else float(value[0]))
            preset = replace(preset, hybrid_ps=sweep)
            if single is not None:
                run = replace(run, hybrid_p=single)
        elif key in RUN_SETTINGS:
            run = replace(run, **group_rules({key: value}, RUN_SETTINGS))
        else:
            preset = replace(preset, **{key: value})
    preset = replace(preset, run=run)
    # a flag's error names the flag; other values (the preset's, or set by the TUI) keep the plain message
    _check(preset, lambda key: FLAG_OF.get(key, "") if name_flags and key in given else "")
    return preset
