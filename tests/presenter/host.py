"""A tiny host app for the presenter view and a workspace stand-in with FIXED data (the main app's fake lives in
tests/ui; this one replays the scenarios of tests/presenter/scenarios.py on a real EventBus)."""

from __future__ import annotations

from collections.abc import Callable

from textual.app import App

from console.core.clock import FixedClock
from console.core.events import Event, EventBus, TurnEnded, TurnStarted
from console.core.workspace_views import AccountInfo, ChatEntry, Claims, Role
from console.ui.screens.presenter import PresenterScreen
from tests.presenter import scenarios


class ScenarioWorkspace:
    """What the presenter reads from a workspace: the current account, its claims, events and history."""

    mode = "local"

    def __init__(self, signed_in: bool = True) -> None:
        self.bus = EventBus()
        self.clock = FixedClock()
        self.current_account: AccountInfo | None = (
            AccountInfo(scenarios.ALICE, "Alice Adams") if signed_in else None
        )
        self._events: list[Event] = []
        self._history: list[ChatEntry] = []
        self.bus.subscribe(self._record)

    def _record(self, event: Event) -> None:
        self._events.append(event)
        if isinstance(event, TurnStarted):
            self._history.append(ChatEntry(Role.USER, event.text))
        elif isinstance(event, TurnEnded) and event.output:
            self._history.append(ChatEntry(Role.ASSISTANT, event.output, event.last_agent))

    def play(self, events: list[Event]) -> None:
        for event in events:
            self.bus.publish(event)

    def user_claims(self, *, refresh: bool = False) -> Claims | None:
        return dict(scenarios.USER_CLAIMS) if self.current_account else None

    def events(self) -> list[Event]:
        return list(self._events)

    def subscribe_current(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        return self.bus.subscribe(callback)

    def history(self) -> list[ChatEntry]:
        return list(self._history)


class PresenterHost(App[None]):
    """Shows only the presenter view over ``workspace`` (after playing ``before`` into it, if given)."""

    def __init__(self, workspace: ScenarioWorkspace | None, before: list[Event] | None = None) -> None:
        super().__init__()
        self.workspace = workspace  # None: the console is still starting (the screen reads app.workspace)
        self._before = before or []

    def on_mount(self) -> None:
        if self.workspace is not None:
            self.workspace.play(self._before)
        self.push_screen(PresenterScreen(lambda: self.workspace))
