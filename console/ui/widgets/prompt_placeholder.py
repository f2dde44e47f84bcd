"""What stands in for the prompt in the console's first frame.

The real prompt (a TextArea) costs start-up time, so the first frame shows this light widget in its place, with
the same text and frame; it is swapped for the real prompt right after. Keys typed in between are kept and handed
over (enter included), so nothing typed that early is lost.
"""

from __future__ import annotations

from textual import events
from textual.widgets import Static

PLACEHOLDER = "Ask something… (enter sends, ctrl+j newline, ↑↓ history)"


class PromptPlaceholder(Static, can_focus=True):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(PLACEHOLDER, id=id, markup=False)
        self.typed = ""
        self.submit_pending = False

    def on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            self.submit_pending = True
        elif event.key == "backspace":
            self.typed = self.typed[:-1]
        elif event.is_printable and event.character:
            self.typed += event.character
        else:
            return
        event.stop()
        event.prevent_default()
        self.set_class(bool(self.typed), "-typed")
        self.update(self.typed or PLACEHOLDER)
