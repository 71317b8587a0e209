"""Selection lists and checkboxes whose state follows every key press and shows without colour.

Textual's SelectionList toggles through a message: space posts OptionSelected and the *then* highlighted option is
toggled when that message is handled, so fast presses (space, down, space) toggle the wrong option or the same one
twice. `KeyedSelectionList` toggles at the key press itself. `LanguageList` adds the 'all or some languages' rule,
also applied inside the toggle (a handler of the toggle messages would run after later keys and undo them).

Textual draws every box as ▐X▌, ticked or not, told apart by colour alone (lost on a monochrome terminal, a
screenshot, to a colour-blind user): here a ticked box reads ▐✓▌ and an empty one ▐ ▌ (`MarkedCheckbox`, and the
lists' boxes).
"""

from __future__ import annotations

from typing import Any

from rich.segment import Segment
from textual.strip import Strip
from textual.widgets import Checkbox, SelectionList
from textual.widgets.selection_list import Selection

ALL = "all"
TICKED, EMPTY = "✓", " "


def box_mark(on: bool) -> str:
    return TICKED if on else EMPTY


class MarkedCheckbox(Checkbox):
    """A Checkbox whose box says its state: ▐✓▌ ticked, ▐ ▌ not."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.BUTTON_INNER = box_mark(self.value)

    def watch_value(self) -> None:
        self.BUTTON_INNER = box_mark(self.value)
        super().watch_value()


class KeyedSelectionList(SelectionList[str]):
    """A SelectionList that toggles the highlighted option when the key (or click) happens, not later, and marks
    each box ▐✓▌ or ▐ ▌."""

    def render_line(self, y: int) -> Strip:
        """Textual's line (box, then prompt: one line per option, as SelectionList lays them out) with the box's
        inner character saying whether the option is selected."""
        strip = super().render_line(y)
        index = self.scroll_offset.y + y
        segments = list(strip)
        if index >= self.option_count or len(segments) < 2 or segments[1].text != Checkbox.BUTTON_INNER:
            return strip
        selected = self.get_option_at_index(index).value in self.selected
        segments[1] = Segment(box_mark(selected), segments[1].style, segments[1].control)
        return Strip(segments, strip.cell_length)

    def action_select(self) -> None:
        highlighted = self.highlighted
        if highlighted is None:
            return
        option = self.get_option_at_index(highlighted)
        if not option.disabled:
            self.toggle(option)


class LanguageList(KeyedSelectionList):
    """The ALL option excludes the others: picking ALL clears them, picking a language clears ALL, and clearing the
    last language picks ALL again."""

    def toggle(self, selection: Selection[str] | str) -> LanguageList:
        value = selection.value if isinstance(selection, Selection) else selection
        super().toggle(selection)
        if value == ALL and ALL in self.selected:
            for other in list(self.selected):
                if other != ALL:
                    self.deselect(other)
        elif value != ALL and value in self.selected:
            self.deselect(ALL)
        elif not self.selected:
            self.select(ALL)
        return self

    def chosen(self) -> list[str] | None:
        """The picked languages, or None for every language."""
        selected = list(self.selected)
        return None if ALL in selected or not selected else selected
