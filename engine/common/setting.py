"""One declaration per setting of a run. Each RunConfig field is declared with `setting(...)`: its default, a help
line, the commands that take it, its choices and (rarely) its own text parser. From that declaration come the CLI
flags of `eval`, `train` and `run` (cli/flags.py), the keys a preset's [run] table accepts (runs/presets.py), and the
Setup screen's fields and their parsing (tui). A new field of RunConfig is in all three once it is declared.

Parsing text (a flag, a form field) is this module's: `parse_text` gives the field's value or a ConfigError naming
the field. Whether a parsed value is allowed (positive, in [0, 1]...) stays RunConfig.validate's and check_config's.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from .errors import ConfigError

# the commands that take a setting: `run` (a grid) overrides its preset's [run] value; the per-cell settings
# (backbone, strategy, seed) are `eval` / `train` flags only, a grid has its own lists of them
EVALUATION = ("eval", "train", "run")
TRAINING = ("train", "run")
COMMANDS = ("eval", "train", "run")
_KEY = "hbt.setting"


@dataclass(frozen=True)
class Setting:
    """What a RunConfig field is, for the interfaces that set it."""

    name: str
    help: str
    commands: tuple[str, ...]  # of COMMANDS
    default: Any
    kind: str  # int | float | text | list | bool | flag (a bool that defaults to False: a switch) | custom
    choices: tuple[str, ...] = ()
    flag: str = ""  # the CLI flag ('--batch-size'; '--yes' for allow_large)
    parse: Callable[[str], Any] | None = None  # custom text parser (hybrid_p)
    group: str = ""  # settings of one group exclude each other on the command line (steps | epochs)
    required: bool = False  # a command that takes it needs it (train --strategy)

    @property
    def field_id(self) -> str:
        """The id of its Setup screen field ('batch-size')."""
        return self.name.replace("_", "-")

    def label(self) -> str:
        return self.name.replace("_", " ")

    def default_text(self) -> str:
        """The default as a user would type it (empty for None: 'not set')."""
        return value_text(self.default)


def value_text(value: Any) -> str:
    """A setting's value as a user would type it, which `parse_value` reads back (empty for None: 'not set')."""
    if value is None:
        return ""
    if isinstance(value, list):
        return ",".join(repr(v) if isinstance(v, float) else str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)  # (repr: every digit, read back exactly)


def setting(
    default: Any,
    help: str,
    commands: tuple[str, ...],
    *,
    choices: tuple[str, ...] = (),
    flag: str = "",
    parse: Callable[[str], Any] | None = None,
    group: str = "",
    required: bool = False,
) -> Any:
    """A RunConfig field with its declaration (lists get a default factory, as dataclasses need)."""
    meta = {_KEY: dict(help=help, commands=commands, choices=choices, flag=flag, parse=parse, group=group,
                       required=required)}  # fmt: skip
    if isinstance(default, list):
        items = list(default)
        return field(default_factory=lambda: list(items), metadata=meta)
    return field(default=default, metadata=meta)


def _kind(annotation: Any, default: Any, custom: bool) -> str:
    if custom:
        return "custom"
    args = typing.get_args(annotation) if typing.get_origin(annotation) in (typing.Union, types.UnionType) else ()
    options = [a for a in args if a is not type(None)] or [annotation]
    base = options[0]
    if typing.get_origin(base) is list:
        return "list"
    if base is bool:
        return "flag" if default is False else "bool"
    return {int: "int", float: "float"}.get(base, "text")


def settings_of(config_class: type) -> dict[str, Setting]:
    """Every declared field of a RunConfig class, in declaration order."""
    hints = typing.get_type_hints(config_class)
    out: dict[str, Setting] = {}
    for f in fields(config_class):
        meta: Mapping[str, Any] | None = f.metadata.get(_KEY)
        if meta is None:
            raise TypeError(f"{config_class.__name__}.{f.name} is not declared with setting(...)")
        factory = f.default_factory
        default = f.default if f.default is not MISSING or factory is MISSING else factory()
        out[f.name] = Setting(
            name=f.name,
            help=meta["help"],
            commands=tuple(meta["commands"]),
            default=default,
            kind=_kind(hints[f.name], default, meta["parse"] is not None),
            choices=tuple(meta["choices"]),
            flag=meta["flag"] or "--" + f.name.replace("_", "-"),
            parse=meta["parse"],
            group=meta["group"],
            required=meta["required"],
        )
    return out


def split_names(text: str) -> list[str]:
    """Comma-separated non-empty names: `,`, an empty text or `en,,de` are errors (not "all languages")."""
    items = [v.strip() for v in text.split(",")]
    if not text.strip() or not all(items):
        raise ValueError(f"empty value in {text!r} (expected comma-separated names, e.g. de,en)")
    return items


def parse_alphas(text: str) -> float | str | list[float]:
    """hybrid_p as text: a number, 'proportional', or comma-separated numbers (an alpha sweep: one arm per value)."""
    text = text.strip()
    if text == "proportional":
        return text
    try:
        values = [float(v) for v in split_names(text)]
    except ValueError:
        why = f"expected a number in [0, 1], 'proportional' or a list such as 0,0.5,1, got {text!r}"
        raise ValueError(why) from None
    return values if len(values) > 1 else values[0]


_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def parse_value(s: Setting, text: str) -> Any:
    """The value of `text` for setting `s` (ValueError with the reason when it does not parse)."""
    text = text.strip()
    if s.parse is not None:
        return s.parse(text)
    if s.kind == "int":
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a whole number") from None
    if s.kind == "float":
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None
        if math.isnan(value):
            raise ValueError(f"{text!r} is not a number")
        return value
    if s.kind == "list":
        return split_names(text)
    if s.kind in ("bool", "flag"):
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ValueError(f"expected true or false, got {text!r}")
    if s.choices and text not in s.choices:
        raise ValueError(f"{text!r} is not one of {', '.join(s.choices)}")
    return text


def parse_text(s: Setting, text: str) -> Any:
    """A form field's text as the setting's value: blank is None ("keep the preset's"); a ConfigError naming the
    field when it does not parse."""
    if not text.strip():
        return None
    try:
        return parse_value(s, text)
    except ValueError as exc:
        raise ConfigError(f"{s.label()}: {exc}", key=s.name) from None


def group_rules(values: dict[str, Any], settings: Mapping[str, Setting]) -> dict[str, Any]:
    """Settings of one group exclude each other: one given (not None), the others of its group are None (a preset or
    flags that give epochs train for epochs, not for the default step budget)."""
    out = dict(values)
    for name, value in values.items():
        group = settings[name].group if name in settings else ""
        if group and value is not None:
            for other in settings.values():
                if other.group == group and other.name != name and other.name not in values:
                    out[other.name] = None
    return out
