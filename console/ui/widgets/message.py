"""One chat message: who said it (the user, or the agent that answered) and what, as Markdown for answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, Static

if TYPE_CHECKING:
    from textual.widgets import Markdown
    from textual.widgets.markdown import MarkdownStream


def _markdown_class() -> type[Markdown]:
    # Imported on the first answer shown, not at start-up: markdown-it costs ~80 ms, a third of the first frame.
    from textual.widgets import Markdown  # deferred: markdown-it, past the first frame

    return Markdown


@dataclass
class Entry:
    """A message kept as data (the chat pane mounts only a window of them)."""

    role: str  # user | assistant | notice
    text: str = ""
    agent: str | None = None
    streaming: bool = field(default=False, compare=False)
    interrupted: bool = False  # an answer cut off when a console stopped mid-stream (from a saved session)


INTERRUPTED_MARK = "⚠ interrupted — the answer stopped here"


class MessageView(Vertical):
    """Shows one ``Entry``; an assistant answer can be streamed into it."""

    def __init__(self, entry: Entry) -> None:
        super().__init__(classes=f"message -{entry.role}" + (" -interrupted" if entry.interrupted else ""))
        self.entry = entry
        self._stream: MarkdownStream | None = None

    def compose(self) -> ComposeResult:
        if self.entry.role == "user":
            yield Label("you", classes="who")
            yield Static(self.entry.text, markup=False, classes="body")
        elif self.entry.role == "notice":
            yield Static(self.entry.text, markup=False, classes="body")
        else:
            yield Label(self.entry.agent or "assistant", classes="who")
            yield _markdown_class()(self.entry.text, classes="body")
            if self.entry.interrupted:
                yield Label(INTERRUPTED_MARK, classes="interrupted-mark")

    async def write(self, delta: str) -> None:
        """Stream a fragment of the answer (batched by Textual's MarkdownStream)."""
        self.entry.text += delta
        if self._stream is None:
            markdown = _markdown_class()
            self._stream = markdown.get_stream(self.query_one(markdown))
        await self._stream.write(delta)

    async def finish(self, final_text: str | None = None) -> None:
        """End streaming. The answer is rebuilt from the full text only when that differs from what was streamed:
        the stream parsed the same text already, and rebuilding replaced every block widget of every answer (the
        old ones left to the collector, the new ones drawn again) for nothing."""
        stream, self._stream = self._stream, None
        streamed = stream is not None
        if stream is not None:
            await stream.stop()
        changed = final_text is not None and final_text != self.entry.text
        if final_text is not None:
            self.entry.text = final_text
        self.entry.streaming = False
        if self.entry.role == "assistant" and (changed or not streamed):
            await self.query_one(_markdown_class()).update(self.entry.text)
