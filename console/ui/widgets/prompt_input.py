"""The chat input: multi-line (ctrl+j / shift+enter), enter sends, up/down walk the history."""

from __future__ import annotations

from textual.message import Message
from textual.widgets import TextArea

from console.ui import bindings
from console.ui.widgets.prompt_placeholder import PLACEHOLDER


class PromptInput(TextArea):
    BINDINGS = bindings.PROMPT

    class Submitted(Message):
        def __init__(self, prompt: PromptInput, text: str) -> None:
            super().__init__()
            self.prompt = prompt
            self.text = text

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(
            "",
            id=id,
            soft_wrap=True,
            tab_behavior="focus",
            show_line_numbers=False,
            placeholder=PLACEHOLDER,
        )
        self.sent: list[str] = []
        self._history_index: int | None = None  # None: editing a fresh draft
        self._draft = ""

    def action_submit(self) -> None:
        text = self.text.strip()
        if not text:
            return
        if not self.sent or self.sent[-1] != text:
            self.sent.append(text)
        self._history_index = None
        self._draft = ""
        self.clear()
        self.post_message(self.Submitted(self, text))

    def action_newline(self) -> None:
        self.insert("\n")

    def action_history_previous(self) -> None:
        if self.cursor_location[0] > 0 or not self.sent:
            self.action_cursor_up()
            return
        if self._history_index is None:
            self._draft = self.text
            self._history_index = len(self.sent) - 1
        elif self._history_index > 0:
            self._history_index -= 1
        self._show(self.sent[self._history_index])

    def action_history_next(self) -> None:
        last_row = self.document.line_count - 1
        if self.cursor_location[0] < last_row or self._history_index is None:
            self.action_cursor_down()
            return
        if self._history_index < len(self.sent) - 1:
            self._history_index += 1
            self._show(self.sent[self._history_index])
        else:
            self._history_index = None
            self._show(self._draft)

    def _show(self, text: str) -> None:
        self.load_text(text)
        self.move_cursor(self.document.end)
