"""A question before something that cannot be undone: stopping a running grid (yes/no), quitting while one runs
(leave it running, stop it, or stay)."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static


class ConfirmScreen(ModalScreen[bool]):
    """Dismissed with True (y, or the confirm button) or False (n, Esc, or the other button)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes", show=False),
        Binding("n,escape", "answer(False)", "No", show=False),
    ]

    def __init__(self, title: str, body: str, yes: str, no: str = "Keep running") -> None:
        super().__init__()
        self.title_text, self.body, self.yes, self.no = title, body, yes, no

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-dialog", classes="dialog"):
            yield Label(Text(self.title_text, style="bold"))
            yield Static(self.body, id="confirm-body")
            with Horizontal(id="confirm-buttons"):
                yield Button(f"{self.yes} (y)", id="confirm-yes", variant="error", compact=True)
                yield Button(f"{self.no} (n)", id="confirm-no", variant="primary", compact=True)

    def on_mount(self) -> None:
        self.query_one("#confirm-no", Button).focus()  # Enter on the default keeps the work running

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm-yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class QuitGridScreen(ModalScreen[str | None]):
    """Quitting while a grid runs: dismissed with "keep" (quit, the grid goes on: y), "stop" (stop it, then quit: s)
    or None (stay: n, Esc)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer('keep')", "Quit, keep it running", show=False),
        Binding("s", "answer('stop')", "Stop it and quit", show=False),
        Binding("n,escape", "answer(None)", "Stay", show=False),
    ]

    def __init__(self, title: str, body: str) -> None:
        super().__init__()
        self.title_text, self.body = title, body

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-dialog", classes="dialog"):
            yield Label(Text(self.title_text, style="bold"))
            yield Static(self.body, id="confirm-body")
            with Horizontal(id="confirm-buttons"):
                yield Button("Quit, keep it running (y)", id="quit-keep", variant="primary", compact=True)
                yield Button("Stop it and quit (s)", id="quit-stop", variant="error", compact=True)
                yield Button("Stay (n)", id="quit-stay", compact=True)

    def on_mount(self) -> None:
        self.query_one("#quit-stay", Button).focus()  # Enter on the default changes nothing

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss({"quit-keep": "keep", "quit-stop": "stop"}.get(event.button.id or ""))

    def action_answer(self, answer: str | None) -> None:
        self.dismiss(answer)
