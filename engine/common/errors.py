"""Errors a user can cause. The CLI prints `hbt: <message>` on one line and exits with code 2."""

from __future__ import annotations


class UserError(Exception):
    """A mistake in the user's input or environment (bad file, preset, language, no network).

    `key` names the setting at fault when there is one (a RunConfig or preset field: 'steps', 'train_langs',
    'strategies'), so a front-end can point at it (the TUI highlights its widget) without reading the message.
    `detail` is the message without the key as its subject ('must be positive, got 0' for 'steps must be positive,
    got 0'), for a front-end that names the key its own way ('p.toml: [run] steps: ...', '--steps: ...').
    """

    exit_code = 2

    def __init__(self, message: str = "", *, key: str | None = None, detail: str | None = None) -> None:
        super().__init__(message)
        self.key = key
        self.detail = message if detail is None else detail


class DataError(UserError):
    """A dataset file is missing, unreadable or malformed."""


class ConfigError(UserError):
    """A preset, flag or option has an unknown key or an invalid value."""


class OutputError(UserError):
    """An output file cannot be written: permission denied, read-only file system or disk full."""


class OfflineError(UserError):
    """Something needs the Hugging Face Hub and it cannot be reached."""


def one_of(
    kind: str, value: str, allowed: list[str] | tuple[str, ...], key: str | None = None, *, sort: bool = True
) -> ConfigError:
    """`unknown <kind> 'x' (allowed: a, b, c)`: the standard message for a bad choice (allowed sorted, or in the
    given order with sort=False)."""
    listed = sorted(allowed) if sort else allowed
    return ConfigError(f"unknown {kind} {value!r} (allowed: {', '.join(listed)})", key=key)
