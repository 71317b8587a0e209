"""Errors a user can cause. The CLI prints `hbt: <message>` on one line and exits with code 2."""

from __future__ import annotations


class UserError(Exception):
    """A mistake in the user's input or environment (bad file, preset, language, no network)."""

    exit_code = 2


class DataError(UserError):
    """A dataset file is missing, unreadable or malformed."""


class ConfigError(UserError):
    """A preset, flag or option has an unknown key or an invalid value."""


class OutputError(UserError):
    """An output file cannot be written: permission denied, read-only file system or disk full."""


class OfflineError(UserError):
    """Something needs the Hugging Face Hub and it cannot be reached."""


def one_of(kind: str, value: str, allowed: list[str] | tuple[str, ...]) -> ConfigError:
    """`unknown <kind> 'x' (allowed: a, b, c)`: the standard message for a bad choice."""
    return ConfigError(f"unknown {kind} {value!r} (allowed: {', '.join(sorted(allowed))})")
