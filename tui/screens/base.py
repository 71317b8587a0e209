"""What every section screen shares: the navigation bar on top and the footer of key bindings."""

from __future__ import annotations

from typing import ClassVar, cast

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer

from ..components.nav_bar import NavBar
from ..host import AppHost


class SectionScreen(Screen[None]):
    """A top-level section (Setup, Run, Results, History); subclasses implement `compose_body`."""

    SECTION: ClassVar[str] = ""
    HELP: ClassVar[str] = ""  # one paragraph for the help screen

    @property
    def hbt(self) -> AppHost:
        """The running app as the screens see it (host.AppHost)."""
        return cast(AppHost, self.app)

    def compose(self) -> ComposeResult:
        yield NavBar(self.SECTION)
        yield from self.compose_body()
        yield Footer()

    def compose_body(self) -> ComposeResult:
        yield from ()

    def on_screen_resume(self) -> None:
        self.update_status()

    def update_status(self) -> None:
        """The right-hand side of the navigation bar: what the grid worker is doing."""
        state = self.hbt.run_state
        if state is None:
            text = ""
        else:
            done = sum(1 for c in state.cells.values() if c.status in ("complete", "failed"))
            text = f"{state.name}: {state.status} {done}/{len(state.cells)}"
        if self.is_mounted:
            self.query_one(NavBar).set_status(text)
