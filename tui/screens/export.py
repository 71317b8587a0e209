"""Export dialog: pick md, csv, json or LaTeX; the report is written into the run or grid directory."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from hbt.tui.backend import EXPORT_FORMATS
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

KEYS = {"md": "m", "csv": "c", "json": "j", "latex": "l"}
NAMES = {"md": "Markdown", "csv": "CSV", "json": "JSON", "latex": "LaTeX"}


class ExportScreen(ModalScreen[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss_none", "Close"),
        *(Binding(key, f"pick('{fmt}')", NAMES[fmt], show=False) for fmt, key in KEYS.items()),
    ]

    def __init__(self, target: Path) -> None:
        super().__init__()
        self.target = target

    def compose(self) -> ComposeResult:
        with Vertical(id="export-dialog", classes="dialog"):
            yield Label(Text.assemble(("Export report", "bold"), ("  into ", "dim"), (str(self.target), "cyan")))
            yield OptionList(
                *(
                    Option(Text.assemble((f"{KEYS[fmt]}  ", "bold"), f"{NAMES[fmt]:<9}", (name, "dim")), id=fmt)
                    for fmt, name in EXPORT_FORMATS.items()
                ),
                id="export-formats",
            )
            yield Label(Text("Enter or the letter: write · Esc: close", style="dim"))

    @on(OptionList.OptionSelected, "#export-formats")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_pick(self, fmt: str) -> None:
        self.dismiss(fmt)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
