"""Selection lists whose state follows every key press.

Textual's SelectionList toggles through a message: space posts OptionSelected and the *then* highlighted option is
toggled when that message is handled, so fast presses (space, down, space) toggle the wrong option or the same one
twice. `KeyedSelectionList` toggles at the key press itself. `LanguageList` adds the 'all or some languages' rule,
also applied inside the toggle (a handler of the toggle messages would run after later keys and undo them).
"""

from __future__ import annotations

from textual.widgets import SelectionList
from textual.widgets.selection_list import Selection

ALL = "all"


class KeyedSelectionList(SelectionList[str]):
    """A SelectionList that toggles the highlighted option when the key (or click) happens, not later."""

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
