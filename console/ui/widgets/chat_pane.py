"""The chat: the conversation kept as data with only a window of recent messages mounted, and the prompt.

Long conversations stay fast because at most ``WINDOW`` message widgets exist at a time (plus what the user
asks for with "load earlier"); the rest are plain ``Entry`` objects.

The log follows new messages (it is anchored to the bottom, so an answer whose Markdown grows after it was
mounted still scrolls into view) until the person scrolls up; then a "new messages below" bar says there is more,
and clicking it or ctrl+end jumps back to the latest message.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from textual import events
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Static

from console.ui.widgets.message import Entry, MessageView
from console.ui.widgets.prompt_placeholder import PromptPlaceholder

# Messages mounted as widgets at most (six turns; earlier ones are data until ctrl+g mounts them again). An answer
# is a tree of Markdown block widgets, each with its own task, styles and the lines it last drew: the window is what
# bounds the chat's memory in a long session (benchmarks/bench_console_soak.py).
WINDOW = 12
NEW_BELOW = "▼ new messages below — click or ctrl+end to jump to the latest"


class ChatLog(VerticalScroll):
    """The scrolling message log: anchored to its bottom while the person has not scrolled up."""

    class FollowChanged(Message):
        def __init__(self, following: bool) -> None:
            super().__init__()
            self.following = following

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.following = True  # False once the person scrolls up, True again back at the bottom

    def watch_virtual_size(self) -> None:
        self.call_after_refresh(self._update_anchor)  # once the layout has settled the view's own size too

    def on_resize(self, event: events.Resize) -> None:
        self.call_after_refresh(self._update_anchor)

    def _update_anchor(self) -> None:
        # Textual's anchor keeps the view at the bottom at every layout, so content that grows after a scroll (a
        # streamed or re-rendered Markdown answer, a pane shown again) is followed too. It would also push a short
        # conversation down to the bottom edge, so it is on only while the messages overflow the view.
        overflows = self.max_scroll_y > 0
        if overflows and not self.following and self.scroll_y >= self.max_scroll_y:
            # At the bottom after a layout: a scroll down that raced a growing log ends here, and the bottom is
            # following by definition (a person reading further up is never at the bottom).
            self._set_following(True)
        if overflows == self.is_anchored:
            return
        self.anchor(overflows)
        if not overflows:
            self.scroll_y = 0
        elif not self.following:
            self.release_anchor()

    def follow(self) -> None:
        """Back to the latest message, and follow new ones again."""
        self.scroll_end(animate=False, immediate=True)  # also restores a released anchor
        self._set_following(True)

    def scroll_to(self, x: float | None = None, y: float | None = None, **kwargs: Any) -> None:
        super().scroll_to(x, y, **self._release(y, kwargs))

    def _scroll_to(self, x: float | None = None, y: float | None = None, **kwargs: Any) -> bool:
        return super()._scroll_to(x, y, **self._release(y, kwargs))

    def _release(self, y: float | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        # Textual releases the anchor on any scroll, even a scroll down at the bottom (which then never
        # re-anchors): only a scroll that moves up counts as the person leaving the latest messages.
        leaves = kwargs.get("release_anchor", True) and y is not None and y < self.max_scroll_y
        if leaves:
            self._set_following(False)
        return {**kwargs, "release_anchor": leaves}

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)  # restores the anchor when scrolled back to the bottom
        if not self.following and new_value >= self.max_scroll_y:
            self._set_following(True)

    def _set_following(self, following: bool) -> None:
        if following != self.following:
            self.following = following
            self.post_message(self.FollowChanged(following))


class NewMessagesBar(Static):
    """Shown while the person reads earlier messages and new ones have arrived; a click jumps to the latest."""

    def on_click(self, event: events.Click) -> None:
        event.stop()
        self.query_ancestor(ChatPane).jump_to_latest()


class ChatPane(Vertical):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="pane")
        self.border_title = "Chat"
        self.entries: list[Entry] = []
        self._first_mounted = 0  # index in entries of the oldest mounted message
        self._streaming: MessageView | None = None

    def compose(self) -> ComposeResult:
        with ChatLog(id="chat-log"):
            yield Static("", id="chat-earlier")
        bar = NewMessagesBar(NEW_BELOW, id="chat-new-below")
        bar.display = False
        yield bar
        yield PromptPlaceholder(id="prompt-placeholder")

    async def build(self) -> None:
        """Swap the first frame's placeholder for the real prompt (TextArea costs start-up time), handing over
        what was typed meanwhile."""
        if self.query("#prompt"):
            return
        from console.ui.widgets.prompt_input import PromptInput  # deferred: a TextArea, past the first frame

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
    def log_view(self) -> ChatLog:
        return self.query_one("#chat-log", ChatLog)

    @property
    def new_below(self) -> bool:
        """Whether the "new messages below" bar is showing."""
        return bool(self.query_one("#chat-new-below").display)

    def jump_to_latest(self) -> None:
        self.log_view.follow()
        self.query_one("#chat-new-below").display = False

    def on_chat_log_follow_changed(self, event: ChatLog.FollowChanged) -> None:
        if event.following:  # scrolled back down by hand: nothing is below any more
            self.query_one("#chat-new-below").display = False

    def forget_drawn_out_of_view(self) -> None:
        """Between turns: the messages out of view forget the styled lines they drew (``refresh`` drops them); a
        message scrolled back into view draws them again."""
        view = self.log_view.content_region
        for message in self.mounted_messages:
            if message is not self._streaming and not message.region.overlaps(view):
                for widget in message.walk_children(with_self=True):
                    widget.refresh()

    def _arrived(self) -> None:
        """New content in the log: followed by the anchor, or announced while the person reads further up."""
        if not self.log_view.following:
            self.query_one("#chat-new-below").display = True

    @property
    def mounted_messages(self) -> list[MessageView]:
        return list(self.log_view.query(MessageView))

    async def add(self, entry: Entry) -> MessageView:
        self.entries.append(entry)
        view = MessageView(entry)
        await self.log_view.mount(view)
        await self._trim()
        self._arrived()
        return view

    async def add_user(self, text: str) -> None:
        await self.finish_streaming()
        self.jump_to_latest()  # the person's own question: back to the conversation's end
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
        self._arrived()

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
        views = [MessageView(entry) for entry in self.entries[self._first_mounted :]]
        if views:
            await self.log_view.mount_all(views)
        self._update_earlier()
        self.jump_to_latest()

    async def clear(self) -> None:
        await self.set_entries([])

    async def action_load_earlier(self) -> None:
        if self._first_mounted == 0:
            return
        start = max(0, self._first_mounted - WINDOW)
        views = [MessageView(entry) for entry in self.entries[start : self._first_mounted]]
        await self.log_view.mount_all(views, after=self.query_one("#chat-earlier"))
        self._first_mounted = start
        self._update_earlier()
        self.log_view.scroll_home(animate=False)

    async def _trim(self) -> None:
        if not self.log_view.following:
            return  # removing messages above would move what the person is reading; trimmed once back down
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
