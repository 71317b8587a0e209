"""A text field whose editing keys apply in the order they were pressed.

Textual's Input inserts a printable key in its own key handler but runs its editing bindings (backspace, ctrl+u,
delete, arrows...) only after the key event has bubbled up to the app. When keys come fast (typing, key repeat,
tmux send-keys) a character typed after a backspace is inserted before the backspace runs, and then deleted by it:
"x", backspace, "7" left "x". `KeyedInput` runs Input's editing bindings in its own (public) key handler, which
Textual calls before Input's: every key applies in turn. The event is stopped there, so the binding does not run a
second time at the app; Input's handler still runs after it (it restarts the cursor blink; an editing key is not
printable, so it inserts nothing).
"""

from __future__ import annotations

from typing import ClassVar

from textual import events
from textual.binding import BindingsMap
from textual.widgets import Input


class KeyedInput(Input):
    EDITING: ClassVar[BindingsMap] = BindingsMap(Input.BINDINGS)

    async def on_key(self, event: events.Key) -> None:
        for binding in self.EDITING.key_to_bindings.get(event.key, ()):
            if self.check_action(binding.action, ()) is False:
                continue
            event.stop()
            await self.run_action(binding.action)
            return
