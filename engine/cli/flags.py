"""The CLI flags of RunConfig's settings, made from their declarations (common/setting.py): `eval`, `train` and
`run` each get the flags of the settings that name them. A flag left out is absent from the parsed arguments, so
RunConfig's default (eval / train) or the preset's value (run) holds."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from ..common.run_config import RunConfig
from ..common.setting import Setting, group_rules, parse_value, settings_of


def _converter(s: Setting, command: str) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:
            value = parse_value(s, text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        if isinstance(value, list) and s.kind == "custom" and command != "run":
            raise argparse.ArgumentTypeError(f"a list of values ({text}) sweeps it in a grid: use `hbt-bench run`")
        return value

    convert.__name__ = s.kind  # (argparse names the type in its own messages)
    return convert


def _help(s: Setting, command: str) -> str:
    text = f"{s.help} ({' | '.join(s.choices)})" if s.choices else s.help
    if command == "run":
        return f"{text} (default: the preset's)"
    if s.kind in ("flag", "bool") or s.required or s.default is None or "default:" in s.help:
        return text
    return f"{text} (default: {s.default_text()})"


def add_setting_flags(
    parser: argparse.ArgumentParser, command: str, settings: dict[str, Setting] | None = None
) -> list[str]:
    """Add the flags of every setting `command` takes; returns their names (RunConfig fields)."""
    settings = settings_of(RunConfig) if settings is None else settings
    groups: dict[str, Any] = {}
    names = []
    for s in settings.values():
        if command not in s.commands:
            continue
        target: Any = parser
        if s.group:
            if s.group not in groups:
                groups[s.group] = parser.add_mutually_exclusive_group()
            target = groups[s.group]
        kw: dict[str, Any] = {"dest": s.name, "default": argparse.SUPPRESS, "help": _help(s, command)}
        if s.kind == "flag":
            kw["action"] = "store_true"
        elif s.kind == "bool":
            kw["action"] = argparse.BooleanOptionalAction
        elif s.choices:  # argparse checks a choice itself (its own "invalid choice: ... (choose from ...)")
            kw["choices"] = s.choices
        else:
            kw["type"] = _converter(s, command)
            kw["metavar"] = s.name.upper()
        if s.required and command != "run":
            kw["required"] = True
        target.add_argument(s.flag, **kw)
        names.append(s.name)
    return names


def given_settings(args: argparse.Namespace, command: str) -> dict[str, Any]:
    """The settings the command line gave (RunConfig field -> value), with the group rules applied (--epochs
    without --steps: no step budget)."""
    settings = settings_of(RunConfig)
    given = {name: getattr(args, name) for name, s in settings.items() if command in s.commands and hasattr(args, name)}
    return group_rules(given, settings)
