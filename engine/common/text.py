"""Terminal safety: strings read from files (backbone names, errors) are shown with control characters escaped."""

from __future__ import annotations

import re
from typing import Any

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def safe(value: Any) -> str:
    """`value` as text with every C0/C1 control character (ESC, BEL, CR, newline...) written as `\\xNN`, so a
    crafted name cannot move the cursor, retitle the terminal or forge lines. Rich markup is not interpreted when
    the result is passed as a `rich.text.Text` (or with markup=False)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}",
                        "" if value is None else str(value))  # fmt: skip


def safe_text(value: Any) -> str:
    """A multi-line text (a rendered table, a warning) made terminal-safe as `safe` does, keeping its line breaks
    and tabs: every other control character is written as `\\xNN`."""
    return "\n".join(
        "\t".join(safe(part) for part in line.split("\t")) for line in ("" if value is None else str(value)).split("\n")
    )
