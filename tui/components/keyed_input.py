"""A text field whose editing keys apply in the order they were pressed.

Textual's Input inserts a printable key in its own key handler but runs its editing bindings (backspace, ctrl+u,
delete, arrows...) only after the key event has bubbled up to the app. When keys come fast (typing, key repeat,
tmux send-keys) a character typed after a backspace is inserted before the backspace runs, and then deleted by it:
"x", backspace, "7" left "x". `KeyedInput` runs its own bindings in its key handler, so every key applies in turn.
"""

from __future__ import annotations

from textual import events
from textual.widgets import Input


class KeyedInput(Input):
    async def _on_key(self, event: events.Key) -> None:
        for binding in self._bindings.key_to_bindings.get(event.key, ()):
            if self.check_action(binding.action, ()) is False:
                continue
            event.stop()
            event.prevent_default()
            self._restart_blink()
            await self.run_action(binding.action)
            return
        await super()._on_key(event)
