"""The presenter view: the flow from sign-in to a trimmed search as big numbered steps, and the chat's last answer.

It hides the debug detail (events, raw claims, agent internals) and rebuilds itself from the workspace whenever it
is shown, so it can be opened at any point of a demo. Events of the current account only; switching account
starts the flow over from the new account's own events.
"""

from __future__ import annotations

from collections.abc import Callable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.events import Resize
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Markdown, Static

from console.core.events import AccountChanged, Event, TextDelta, TurnEnded, TurnStarted
from console.core.flow import FlowModel, StepState
from console.core.workspace_views import AccountInfo, Role
from console.ui.protocols import PresenterSource
from console.ui.widgets.flow_steps import FlowSteps
from mcp_server.redact import redact

PRESENTER_KEY = "f7"
COMPACT_BELOW = 40  # rows: under this the steps sit without gaps between them


class PresenterEvent(Message):
    """A bus event, delivered on the UI's loop."""

    def __init__(self, event: Event) -> None:
        super().__init__()
        self.event = event


class PresenterScreen(Screen[None]):
    CSS_PATH = "presenter.tcss"
    BINDINGS = [Binding(f"escape,{PRESENTER_KEY}", "close", "Back to the console", id="presenter.close")]

    def __init__(self, source: Callable[[], PresenterSource | None]) -> None:
        """``source``: the workspace now (None while the console is still starting), asked whenever shown."""
        super().__init__(id="presenter")
        self._source = source
        self.model = FlowModel()
        self.question = ""
        self.answer = ""
        self.answer_agent: str | None = None
        self._unsubscribe: Callable[[], None] | None = None

    @property
    def workspace(self) -> PresenterSource | None:
        return self._source()

    def compose(self) -> ComposeResult:
        yield Static("", id="presenter-title")
        yield FlowSteps(self.model, id="flow-steps")
        with Vertical(id="presenter-answer") as answer:
            answer.border_title = "Last answer"
            yield Static("", id="presenter-question")
            yield Markdown("", id="presenter-answer-text")
        yield Footer()

    def on_resize(self, event: Resize) -> None:
        self._apply_size(event.size.height)

    def _apply_size(self, height: int) -> None:
        compact = height < COMPACT_BELOW
        self.set_class(compact, "-compact")
        self.query_one(FlowSteps).show(self.model, compact=compact)

    # ---- life cycle: rebuild from the workspace whenever shown
    async def on_mount(self) -> None:
        self._apply_size(self.app.size.height)
        # Listen first, then rebuild: an event published meanwhile is applied after the rebuild, never lost.
        self._subscribe()
        await self._rebuild()
        # Opened while the console is still starting: follow the workspace as soon as it exists.
        self.set_interval(0.5, self._attach_when_ready, name="presenter-attach")

    async def _attach_when_ready(self) -> None:
        if self._unsubscribe is None and self.workspace is not None and self.is_current:
            self._subscribe()
            await self._rebuild()

    async def on_screen_resume(self) -> None:
        if self._unsubscribe is None:
            self._subscribe()
            await self._rebuild()

    def on_screen_suspend(self) -> None:
        self._stop_listening()

    def on_unmount(self) -> None:
        self._stop_listening()

    def _subscribe(self) -> None:
        workspace = self.workspace
        if workspace is None or self._unsubscribe is not None:
            return

        def deliver(event: Event) -> None:  # from the publisher's thread: post_message is thread-safe
            self.post_message(PresenterEvent(event))

        self._unsubscribe = workspace.subscribe_current(deliver)

    def _stop_listening(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def action_close(self) -> None:
        self._stop_listening()
        self.dismiss(None)

    # ---- state from the workspace
    def _current(self) -> AccountInfo | None:
        workspace = self.workspace
        return workspace.current_account if workspace is not None else None

    async def _rebuild(self) -> None:
        workspace = self.workspace
        account = self._current()
        self.model = FlowModel()
        self.question, self.answer, self.answer_agent = "", "", None
        if workspace is not None and account is not None:
            self.model.signed_in(account.username, workspace.user_claims(), account.name)
            self.model.replay(workspace.events())
            for entry in workspace.history():
                if entry.role == Role.USER:
                    self.question, self.answer, self.answer_agent = entry.text, "", None
                elif entry.role == Role.ASSISTANT:
                    self.answer, self.answer_agent = entry.text, entry.agent
        self._refresh_title()
        self.query_one(FlowSteps).show(self.model)
        await self._show_answer()

    def _refresh_title(self) -> None:
        account = self._current()
        who = f"{account.name} <{account.username}>" if account is not None else "nobody signed in"
        stopped = self.model.stopped_at
        if stopped is not None:
            status = f"stopped at step {stopped.number}: {stopped.title}"
        elif self.model.complete:
            status = "every step done"
        else:
            lit = sum(1 for s in self.model.steps if s.lit)
            status = f"{lit} of {len(self.model.steps)} steps"
        self.query_one("#presenter-title", Static).update(f"OBO flow · {who} · {status}")
        self.set_class(stopped is not None, "-failed")

    async def _show_answer(self) -> None:
        question = self.query_one("#presenter-question", Static)
        question.update(
            f"You asked: {redact(self.question)}"
            if self.question
            else "Ask something in the console (for example “show my documents”), then come back here."
        )
        who = self.answer_agent or "assistant"
        markdown = self.query_one("#presenter-answer-text", Markdown)
        await markdown.update(f"**{who}:** {redact(self.answer)}" if self.answer else "")

    # ---- live events
    async def on_presenter_event(self, message: PresenterEvent) -> None:
        event = message.event
        if isinstance(event, AccountChanged):
            await self._rebuild()
            return
        current = self._current()
        if event.account is not None and (current is None or event.account != current.username):
            return  # another account's run
        changed = self.model.apply(event)
        match event:
            case TurnStarted():
                self.question, self.answer, self.answer_agent = event.text, "", None
                await self._show_answer()
            case TextDelta():
                self.answer += event.delta
                self.answer_agent = event.agent or self.answer_agent
                await self._show_answer()
            case TurnEnded():
                self.answer = event.output or (f"⚠ {event.error}" if event.error else self.answer)
                self.answer_agent = event.last_agent or event.agent
                await self._show_answer()
        if changed:
            self.query_one(FlowSteps).show(self.model)
            self._refresh_title()

    @property
    def step_states(self) -> list[StepState]:
        return [s.state for s in self.model.steps]
