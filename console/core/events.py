"""The one event model: plain dataclasses flowing from SDK hooks, tracing and MCP results to a bus, and from
the bus to widgets, the headless printer, sessions and tests.

Events carry claims, names and timings — never a token or a secret (DESIGN.md, security invariants).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from console.core.link_state import LinkState


def _now() -> float:
    return time.time()


@dataclass(frozen=True, kw_only=True)
class Event:
    """Base of every event. ``kind`` names the type in JSON lines; ``agent`` labels where it happened."""

    kind: ClassVar[str] = "event"
    ts: float = field(default_factory=_now)
    turn_id: str | None = None
    agent: str | None = None
    # The signed-in account (username) whose run produced the event; None for events about the whole console
    # (server status, config reloads). The workspace tags each account's events so views show only the current
    # account's (DESIGN.md: switching account shows nothing of the previous account's results).
    account: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self)}


@dataclass(frozen=True, kw_only=True)
class TurnStarted(Event):
    kind: ClassVar[str] = "turn_started"
    account: str | None = None
    text: str = ""


@dataclass(frozen=True, kw_only=True)
class TurnEnded(Event):
    kind: ClassVar[str] = "turn_ended"
    output: str = ""
    duration_ms: float = 0.0
    error: str | None = None
    last_agent: str | None = None


@dataclass(frozen=True, kw_only=True)
class AgentStarted(Event):
    kind: ClassVar[str] = "agent_started"
    parent: str | None = None  # the agent that called this one as a tool, if any


@dataclass(frozen=True, kw_only=True)
class AgentEnded(Event):
    kind: ClassVar[str] = "agent_ended"
    output: str = ""


@dataclass(frozen=True, kw_only=True)
class HandoffOccurred(Event):
    kind: ClassVar[str] = "handoff"
    from_agent: str = ""
    to_agent: str = ""


@dataclass(frozen=True, kw_only=True)
class ToolStarted(Event):
    kind: ClassVar[str] = "tool_started"
    tool: str = ""
    call_id: str = ""
    arguments: str = ""  # JSON text as the model produced it
    tool_type: str = "function"  # function | agent | mcp | remote_agent


@dataclass(frozen=True, kw_only=True)
class ToolEnded(Event):
    kind: ClassVar[str] = "tool_ended"
    tool: str = ""
    call_id: str = ""
    result: str = ""
    duration_ms: float = 0.0
    error: str | None = None
    tool_type: str = "function"


@dataclass(frozen=True, kw_only=True)
class ModelCalled(Event):
    kind: ClassVar[str] = "model_called"
    model: str = ""
    provider: str = ""
    duration_ms: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True, kw_only=True)
class TextDelta(Event):
    kind: ClassVar[str] = "text_delta"
    delta: str = ""


@dataclass(frozen=True, kw_only=True)
class ServerStep(Event):
    """A step the MCP server took inside a tool call (validate, obo_exchange, search), from progress or _meta."""

    kind: ClassVar[str] = "server_step"
    tool: str = ""
    call_id: str = ""
    step: str = ""
    status: str = "ok"  # ok | error | cache_hit | started
    duration_ms: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class SearchResults(Event):
    """What a get_documents call returned, with who the search ran as and why each document was visible."""

    kind: ClassVar[str] = "search_results"
    call_id: str = ""
    query: str = ""
    ran_as: dict[str, Any] = field(default_factory=dict)  # name, oid, groups
    documents: list[dict[str, Any]] = field(default_factory=list)
    obo_claims: dict[str, Any] = field(default_factory=dict)
    cache_hit: bool | None = None
    error: str | None = None
    aadsts: str | None = None


@dataclass(frozen=True, kw_only=True)
class Notice(Event):
    """Something the user should know that is not a step of the run (warnings, reloads, server status)."""

    kind: ClassVar[str] = "notice"
    level: str = "info"  # info | warning | error
    message: str = ""
    source: str = ""


@dataclass(frozen=True, kw_only=True)
class ServerStatusChanged(Event):
    """The MCP server link changed state (console.core.link_state.LinkStatus, flattened)."""

    kind: ClassVar[str] = "server_status"
    state: LinkState = LinkState.CONNECTING
    url: str | None = None
    attempt: int = 0
    next_retry_in: float | None = None
    launched: bool = False  # the console started this server and will stop it on exit
    detail: str = ""


@dataclass(frozen=True, kw_only=True)
class AccountChanged(Event):
    """The current account changed (sign-in, switch, sign-out): views rebuild from the new account's state only."""

    kind: ClassVar[str] = "account_changed"
    previous: str | None = None  # ``account`` (the base field) is the new current account, None when signed out


Subscriber = Callable[[Event], None]


class EventBus:
    """Fan-out of events to any number of subscribers, callable from any thread.

    Callback subscribers run synchronously in the publisher's thread (keep them cheap); async consumers use
    ``stream()``, which hands each event to the consumer's own loop thread-safely.
    """

    def __init__(self) -> None:
        self._subscribers: dict[str, Subscriber] = {}
        self._lock = threading.Lock()

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        token = uuid.uuid4().hex
        with self._lock:
            self._subscribers[token] = callback

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers.pop(token, None)

        return unsubscribe

    def publish(self, event: Event) -> None:
        with self._lock:
            callbacks = list(self._subscribers.values())
        for callback in callbacks:
            callback(event)

    @contextlib.asynccontextmanager
    async def stream(self) -> AsyncIterator[asyncio.Queue[Event]]:
        """A queue receiving every event published while the context is open."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Event] = asyncio.Queue()

        def deliver(event: Event) -> None:
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is loop:
                queue.put_nowait(event)
            else:
                loop.call_soon_threadsafe(queue.put_nowait, event)

        unsubscribe = self.subscribe(deliver)
        try:
            yield queue
        finally:
            unsubscribe()
