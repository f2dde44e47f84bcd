"""The one event model: plain dataclasses flowing from SDK hooks, tracing and MCP results to a bus, and from
the bus to widgets, the headless printer, sessions and tests.

Events carry claims, names and timings — never a token or a secret (docs/contracts.md, security invariants).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any, ClassVar

from console.core.link_state import LinkState


def _now() -> float:
    return time.time()


class FailedStep(StrEnum):
    """Where a call to the MCP server stopped: the server's own step names, and connecting to it."""

    CONNECT = "connect"  # the call never reached a tool: the server could not be reached
    VALIDATE = "validate"  # the server refused the user's token (HTTP 401/403)
    OBO_EXCHANGE = "obo_exchange"  # the on-behalf-of exchange failed (an AADSTS code says why)
    SEARCH = "search"  # the trimmed search failed


class ErrorCode(StrEnum):
    """The console's codes for failures that carry no protocol code of their own (an AADSTS code is used as is)."""

    TOKEN_REFUSED = "token_refused"  # the MCP server answered 401/403 to the bearer token
    MCP_UNREACHABLE = "mcp_unreachable"  # connecting failed without an HTTP answer saying why
    MCP_STOPPED = "mcp_stopped"  # the server stopped answering during a call
    INSUFFICIENT_CLAIMS = (
        "insufficient_claims"  # Conditional Access asks the user to do more (a claims challenge)
    )


@dataclass(frozen=True, kw_only=True)
class Event:
    """Base of every event. ``kind`` names the type in JSON lines; ``agent`` labels where it happened."""

    kind: ClassVar[str] = "event"
    ts: float = field(default_factory=_now)
    turn_id: str | None = None
    agent: str | None = None
    # The signed-in account (username) whose run produced the event; None for events about the whole console
    # (server status, config reloads). The workspace tags each account's events so views show only the current
    # account's (docs/contracts.md: switching account shows nothing of the previous account's results).
    account: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self)}


@dataclass(frozen=True, kw_only=True)
class TurnStarted(Event):
    kind: ClassVar[str] = "turn_started"
    account: str | None = None
    text: str = ""
    retry_of: str | None = None  # the turn this one runs again (after a step-up); its question is not new


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
    # Why the call failed, as data (None when it worked or nothing more is known): see ErrorCode / FailedStep.
    code: str | None = None
    http_status: int | None = None
    step: str | None = None


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
    step: str | None = None  # the server step that failed (FailedStep), when the server said


@dataclass(frozen=True, kw_only=True)
class Notice(Event):
    """Something the user should know that is not a step of the run (warnings, reloads, server status)."""

    kind: ClassVar[str] = "notice"
    level: str = "info"  # info | warning | error
    message: str = ""
    source: str = ""
    # For a notice that reports a failure of the MCP call path: what failed, as data (the message is for people).
    code: str | None = None  # ErrorCode, or a protocol's own code
    http_status: int | None = None
    step: str | None = None  # FailedStep


class StepUpStatus(StrEnum):
    REQUIRED = "required"  # the MCP server relayed a claims challenge: the turn stopped
    SIGNING_IN = "signing_in"  # signing in again with the claims
    DONE = "done"  # signed in again with what was asked: the turn runs again once
    FAILED = "failed"  # not satisfied (what to do is in ``hint``)


@dataclass(frozen=True, kw_only=True)
class StepUp(Event):
    """Conditional Access asked for more than the user's sign-in did (a claims challenge the MCP server relayed):
    which policy and resource asked for what, and the sign-in's ``amr``/``acrs`` before and after."""

    kind: ClassVar[str] = "step_up"
    code: str = ErrorCode.INSUFFICIENT_CLAIMS
    status: StepUpStatus = StepUpStatus.REQUIRED
    policy: str = ""  # the Conditional Access policy ids the challenge names
    resource: str = ""  # the resource the OBO exchange was for (Azure AI Search)
    required: str = ""  # what the person must do, in words
    claims: str = ""  # the claims JSON MSAL sends as claims_challenge (no secret: it names policies)
    aadsts: int | None = None
    amr_before: list[str] = field(default_factory=list)
    acrs_before: list[str] = field(default_factory=list)
    amr_after: list[str] = field(default_factory=list)
    acrs_after: list[str] = field(default_factory=list)
    how: str = ""  # how it was satisfied (the shortcut confirmed number 42), or what the person must do
    hint: str = ""  # what to do when it was not
    url: str = ""  # the sign-in page to complete in the browser (interactive step-up; no token in it)


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
    previous: str | None = (
        None  # ``account`` (the base field) is the new current account, None when signed out
    )


@dataclass(frozen=True, kw_only=True)
class SignInStep(Event):
    """A step of a sign-in: how (``device_code`` | ``browser``), its state (``started``, ``page_opened``, ``done``,
    ``failed``, ``cancelled``, ``blocked``: Conditional Access refused it), the protocol's code (``AADSTS53003``)
    and what to say. ``account`` is the user signing in, when known."""

    kind: ClassVar[str] = "sign_in"
    method: str = "device_code"
    state: str = "started"
    code: str | None = None
    detail: str = ""


EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (
        TurnStarted, TurnEnded, AgentStarted, AgentEnded, HandoffOccurred, ToolStarted, ToolEnded, ModelCalled,
        TextDelta, ServerStep, SearchResults, Notice, ServerStatusChanged, AccountChanged, SignInStep, StepUp,
    )
}  # fmt: skip


def event_from_dict(data: Mapping[str, Any]) -> Event | None:
    """An event back from its ``to_dict`` form (a stored trace); None for a kind this version does not know.
    Fields it does not know are dropped (an older or newer trace), missing ones take their defaults."""
    cls = EVENT_TYPES.get(str(data.get("kind")))
    if cls is None:
        return None
    names = {f.name for f in fields(cls) if f.init}
    return cls(**{key: value for key, value in data.items() if key in names})


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
