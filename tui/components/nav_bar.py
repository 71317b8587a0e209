"""The top bar: the four sections (click or press 1-4) and what the app is doing."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static

SECTIONS = (("setup", "Setup"), ("run", "Run"), ("results", "Results"), ("history", "History"))


class NavBar(Horizontal):
    DEFAULT_CSS = """
    NavBar {
        height: 1;
        dock: top;
        background: $panel;
    }
    NavBar > .nav-title {
        width: auto;
        padding: 0 1;
        text-style: bold;
        color: $text-accent;
    }
    NavBar > .nav-tab {
        width: auto;
        padding: 0 1;
        color: $text-muted;
    }
    NavBar > .nav-tab:hover {
        background: $boost;
    }
    NavBar > .nav-tab.-active {
        color: $text;
        background: $primary-muted;
        text-style: bold;
    }
    NavBar > #nav-status {
        width: 1fr;
        content-align: right middle;
        padding: 0 1;
        color: $text-muted;
    }
    """

    def __init__(self, active: str) -> None:
        super().__init__()
        self.active = active

    def compose(self) -> ComposeResult:
        yield Static("hbt", classes="nav-title")
        for i, (mode, label) in enumerate(SECTIONS, start=1):
            tab = Static(f"{i} {label}", classes="nav-tab", id=f"nav-{mode}")
            tab.set_class(mode == self.active, "-active")
            yield tab
        yield Static("", id="nav-status")

    def on_click(self, event: object) -> None:
        widget = getattr(event, "widget", None)
        wid = getattr(widget, "id", None) or ""
        if wid.startswith("nav-") and wid != "nav-status":
            self.app.switch_mode(wid.removeprefix("nav-"))

    def set_status(self, text: str) -> None:
        self.query_one("#nav-status", Static).update(text)
