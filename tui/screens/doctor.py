"""Doctor: the install checks of `hbt-bench doctor` (engine/runs/doctor.py), the same lines, in a dialog.

The checks run in a worker thread (the hub probe can take its full timeout) and the dialog fills in when they end.
"""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from ...engine.common.text import safe
from ...engine.runs.doctor import Check, run_checks

STYLES = {"ok": "green", "warn": "yellow", "fail": "bold red"}


def checks_table(checks: list[Check]) -> Table:
    """One row per check: the status word (the marker, not colour alone), the check, its detail."""
    table = Table.grid(padding=(0, 2))
    table.add_column(no_wrap=True)
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for check in checks:
        table.add_row(Text(check.status, style=STYLES[check.status]), check.name, Text(safe(check.detail)))
    return table


class DoctorScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q", "close", "Close")]

    def __init__(self, data_dir: str | None) -> None:
        super().__init__()
        self.data_dir = data_dir
        self.checks: list[Check] | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="doctor-dialog", classes="dialog"):
            yield Label(Text.assemble(("Doctor", "bold"), " — the same checks as hbt-bench doctor"))
            with VerticalScroll(id="doctor-body"):
                yield Static("checking…", id="doctor-content")
            yield Label(Text("Esc or q: close", style="dim"))

    def on_mount(self) -> None:
        self.run_checks()

    @work(thread=True, exclusive=True)
    def run_checks(self) -> None:
        checks = run_checks(self.data_dir)
        self.app.call_from_thread(self.show_checks, checks)

    def show_checks(self, checks: list[Check]) -> None:
        self.checks = checks
        self.query_one("#doctor-content", Static).update(checks_table(checks))

    def action_close(self) -> None:
        self.dismiss(None)
