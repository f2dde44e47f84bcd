"""The chat: the conversation kept as data with only a window of recent messages mounted, and the prompt.

Long conversations stay fast because at most ``WINDOW`` message widgets exist at a time (plus what the user
asks for with "load earlier"); the rest are plain ``Entry`` objects.
"""

from __future__ import annotations

from collections.abc import Iterable

from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static

from console.ui.widgets.message import Entry, MessageView
from console.ui.widgets.prompt_placeholder import PromptPlaceholder

WINDOW = 40


class ChatPane(Vertical):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="pane")
        self.border_title = "Chat"
        self.entries: list[Entry] = []
        self._first_mounted = 0  # index in entries of the oldest mounted message
        self._streaming: MessageView | None = None

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="chat-log"):
            yield Static("", id="chat-earlier")
        yield PromptPlaceholder(id="prompt-placeholder")

    async def build(self) -> None:
        """Swap the first frame's placeholder for the real prompt (TextArea costs start-up time), handing over
        what was typed meanwhile."""
        if self.query("#prompt"):
            return
        from console.ui.widgets.prompt_input import PromptInput

        prompt = PromptInput(id="prompt")
        await self.mount(prompt)
        for placeholder in self.query(PromptPlaceholder):
            typed, submit = placeholder.typed, placeholder.submit_pending
            await placeholder.remove()
            if typed:
                prompt.load_text(typed)
                prompt.move_cursor(prompt.document.end)
            if submit:
                prompt.action_submit()

    @property
    def log_view(self) -> VerticalScroll:
        return self.query_one("#chat-log", VerticalScroll)

    @property
    def mounted_messages(self) -> list[MessageView]:
        return list(self.log_view.query(MessageView))

    async def add(self, entry: Entry) -> MessageView:
        self.entries.append(entry)
        view = MessageView(entry)
        await self.log_view.mount(view)
        await self._trim()
        self.log_view.scroll_end(animate=False)
        return view

    async def add_user(self, text: str) -> None:
        await self.finish_streaming()
        await self.add(Entry("user", text))

    async def add_notice(self, text: str) -> None:
        await self.add(Entry("notice", text))

    async def stream_delta(self, agent: str | None, delta: str) -> None:
        """Append to the answer being streamed, starting a new labelled message when the agent changes."""
        view = self._streaming
        if view is None or view.entry.agent != agent:
            await self.finish_streaming()
            view = await self.add(Entry("assistant", "", agent=agent, streaming=True))
            self._streaming = view
        await view.write(delta)
        self.log_view.scroll_end(animate=False)

    async def finish_streaming(self, final_text: str | None = None) -> None:
        view, self._streaming = self._streaming, None
        if view is not None:
            await view.finish(final_text)

    async def end_turn(self, output: str, agent: str | None, error: str | None) -> None:
        streamed = self._streaming is not None
        await self.finish_streaming(output or None)
        if not streamed and output:
            await self.add(Entry("assistant", output, agent=agent))
        if error:
            await self.add_notice(f"⚠ {error}")

    async def set_entries(self, entries: Iterable[Entry]) -> None:
        """Replace the conversation (account switch, resume): mount only the latest window."""
        self._streaming = None
        self.entries = list(entries)
        await self.log_view.query(MessageView).remove()
        self._first_mounted = max(0, len(self.entries) - WINDOW)
        views = [MessageView(entry) for entry in self.entries[self._first_mounted:]]
        if views:
            await self.log_view.mount_all(views)
        self._update_earlier()
        self.log_view.scroll_end(animate=False)

    async def clear(self) -> None:
        await self.set_entries([])

    async def action_load_earlier(self) -> None:
        if self._first_mounted == 0:
            return
        start = max(0, self._first_mounted - WINDOW)
        views = [MessageView(entry) for entry in self.entries[start:self._first_mounted]]
        await self.log_view.mount_all(views, after=self.query_one("#chat-earlier"))
        self._first_mounted = start
        self._update_earlier()
        self.log_view.scroll_home(animate=False)

    async def _trim(self) -> None:
        mounted = self.mounted_messages
        excess = len(mounted) - WINDOW
        if excess > 0:
            # Never archive the message being streamed (it is the newest, so trimming from the top is safe).
            await self.log_view.remove_children(mounted[:excess])
            self._first_mounted += excess
        self._update_earlier()

    def _update_earlier(self) -> None:
        earlier = self.query_one("#chat-earlier", Static)
        earlier.display = self._first_mounted > 0
        earlier.update(f"↑ {self._first_mounted:,} earlier messages — ctrl+g loads more")
