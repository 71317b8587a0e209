"""Export dialog: pick md, csv, json or LaTeX; the report is written into the run or grid directory.

The dialog names the folder in full and marks the formats whose file is already there (writing replaces it); what
was written is then shown with its absolute path (a toast and a line that stays on the Results screen)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from ...engine.common.text import safe
from ...engine.common.vocabulary import EXPORT_FORMAT_FILES, EXPORT_FORMAT_NAMES

KEYS = {"md": "m", "csv": "c", "json": "j", "latex": "l"}


def absolute(path: Path) -> Path:
    """The path as the file system has it (a relative one depends on where hbt-tui was started)."""
    try:
        return path.resolve()
    except OSError:
        return path.absolute()


def written_text(fmt: str, path: Path, replaced: bool) -> Text:
    """What an export did, in full: the format, whether it replaced a file, and the absolute path (on a line of
    its own, so that a narrow terminal wraps it at its end and not in the middle of the sentence)."""
    action = "replaced" if replaced else "wrote"
    name = EXPORT_FORMAT_NAMES.get(fmt, fmt)
    return Text.assemble(("✓ ", "bold green"), f"{action} the {name} report\n", (safe(path), "cyan"))


class ExportScreen(ModalScreen[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss_none", "Close"),
        *(Binding(key, f"pick('{fmt}')", EXPORT_FORMAT_NAMES[fmt], show=False) for fmt, key in KEYS.items()),
    ]

    def __init__(self, target: Path) -> None:
        super().__init__()
        self.target = target

    def compose(self) -> ComposeResult:
        with Vertical(id="export-dialog", classes="dialog"):
            yield Label(Text.assemble(("Export report", "bold"), ("  into", "dim")))
            yield Label(Text(safe(absolute(self.target)), style="cyan"), id="export-target")  # the whole path
            yield OptionList(*(Option(self._prompt(fmt, name), id=fmt) for fmt, name in EXPORT_FORMAT_FILES.items()),
                             id="export-formats")  # fmt: skip
            yield Label(Text("Enter or the letter: write · Esc: close", style="dim"))

    def _prompt(self, fmt: str, name: str) -> Text:
        """One format: its key, its name, its file, and whether writing it replaces a file already there."""
        prompt = Text.assemble((f"{KEYS[fmt]}  ", "bold"), f"{EXPORT_FORMAT_NAMES[fmt]:<9}", (name, "dim"))
        if (self.target / name).exists():
            prompt.append("  exists: replaced", style="yellow")
        return prompt

    @on(OptionList.OptionSelected, "#export-formats")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_pick(self, fmt: str) -> None:
        self.dismiss(fmt)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
