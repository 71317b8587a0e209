"""Help: what each section shows and every key binding (read from the bindings themselves, so it stays true)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import ClassVar

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static


def key_rows(app_keys: Iterable[BindingType], display: Callable[[Binding], str]) -> list[tuple[str, str]]:
    """(keys, description) per action, keys of one action joined: '? / f1'."""
    merged: dict[tuple[str, str], list[str]] = {}
    for binding in Binding.make_bindings(app_keys):
        if not binding.description or binding.system:
            continue
        merged.setdefault((binding.action, binding.description), []).append(display(binding))
    return [(" / ".join(dict.fromkeys(keys)), description) for (_, description), keys in merged.items()]


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,f1,q", "close", "Close"),
    ]

    def __init__(self, sections: list[tuple[str, str, list[BindingType]]]) -> None:
        """sections: (title, one paragraph, bindings) for 'everywhere' and each screen."""
        super().__init__()
        self.sections = sections
        self.plain = ""  # the help as plain text (what tests and screen readers read)

    def compose(self) -> ComposeResult:
        with Vertical(id="help-dialog", classes="dialog"):
            yield Label(Text.assemble(("hbt", "bold"), " — multilingual dense retrieval benchmark · keys"))
            with VerticalScroll(id="help-body"):
                yield Static(self._content(), id="help-content")
            yield Label(Text("Esc, ? or q: close", style="dim"))

    def _content(self) -> Group:
        parts: list[Table | Text] = []
        lines: list[str] = []
        for title, paragraph, bindings in self.sections:
            lines += [title, paragraph]
            parts.append(Text(title, style="bold underline"))
            if paragraph:
                parts.append(Text(paragraph, style="dim"))
            table = Table.grid(padding=(0, 2))
            table.add_column(style="bold cyan", no_wrap=True, min_width=10)
            table.add_column()
            for keys, description in key_rows(bindings, self.app.get_key_display):
                table.add_row(keys, description)
                lines.append(f"{keys}  {description}")
            parts.append(table)
            parts.append(Text(""))
        self.plain = "\n".join(lines)
        return Group(*parts)

    def action_close(self) -> None:
        self.dismiss(None)
