"""Text fields of the parameter form."""

from __future__ import annotations

from textual import events
from textual.widgets import Input

#: Input actions that edit the text or move the cursor: run in order with the typed characters
_EDITING = ("cursor_", "delete_", "home", "end", "select_all", "cut", "paste")


class TextField(Input):
    """An Input whose editing keys (ctrl+u, backspace, arrows...) take effect in order with typed text.

    Textual inserts a typed character as soon as the Input gets its key, but runs a bound key (ctrl+u:
    delete_left_all) only once the key has bubbled up to the app; in a burst of keys (a fast typist, a
    paste-like send, a busy machine) the characters typed after ctrl+u were inserted first and then deleted
    with it. Upstream: Textualize/textual#6605 (open; fix proposed in #6631). Until then the field runs its
    own editing bindings as it receives them. It also shows the start of a long value when left."""

    async def _on_key(self, event: events.Key) -> None:
        for binding in self._bindings.key_to_bindings.get(event.key, ()):
            if not binding.priority and binding.action.startswith(_EDITING):
                event.stop()
                event.prevent_default()
                self._restart_blink()
                await self.run_action(binding.action)
                return
        await super()._on_key(event)

    def _on_blur(self, event: events.Blur) -> None:
        super()._on_blur(event)
        self.cursor_position = 0  # a long path shows its start (its name is at the end, but so is the rest)


class ImageField(TextField):
    """An image-path input; enter on an empty field opens the file picker."""
