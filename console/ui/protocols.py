"""What the UI needs from the core, as structural types.

The UI is a thin layer over ``console.core.workspace.Workspace``; it only ever talks to this interface, so every
widget and screen can be built and snapshot-tested with fixed data. Methods may be plain or ``async``: the UI
calls them through :func:`console.ui.calls.call`, which awaits coroutines and runs blocking calls in a thread.
Everything here is light to import (no textual, no heavy libraries).
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Any, Protocol, runtime_checkable

from console.core.clock import Clock
from console.core.events import Event, EventBus, SearchResults


@runtime_checkable
class Account(Protocol):
    """A signed-in account (never holds a token)."""

    @property
    def username(self) -> str: ...

    @property
    def name(self) -> str: ...


@runtime_checkable
class DeviceFlow(Protocol):
    """A device-code flow in progress. ``user_code`` may be a masking type (``SecretStr``)."""

    @property
    def user_code(self) -> Any: ...

    @property
    def verification_uri(self) -> str: ...

    @property
    def expires_at(self) -> float:
        """Epoch seconds."""
        ...

    def wait(self) -> Awaitable[Account] | Account: ...

    def cancel(self) -> Any: ...


@runtime_checkable
class ServerStatus(Protocol):
    @property
    def state(self) -> str:
        """starting | up | down | reconnecting | stopped"""
        ...

    @property
    def url(self) -> str | None: ...

    @property
    def detail(self) -> str: ...

    @property
    def launched(self) -> bool:
        """True when the console launched the server itself (and stops it on exit)."""
        ...


@runtime_checkable
class AgentView(Protocol):
    @property
    def key(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def model(self) -> str: ...

    @property
    def provider(self) -> str: ...

    @property
    def tools(self) -> Sequence[str]: ...

    @property
    def agents_as_tools(self) -> Sequence[str]: ...

    @property
    def handoffs(self) -> Sequence[str]: ...


@runtime_checkable
class ConfigView(Protocol):
    @property
    def key(self) -> str: ...

    @property
    def source(self) -> str: ...

    @property
    def valid(self) -> bool:
        """True when the current version on disk / in Redis is valid."""
        ...

    @property
    def errors(self) -> Sequence[str]: ...

    @property
    def warnings(self) -> Sequence[str]: ...

    @property
    def serving(self) -> bool:
        """True when some version (the current or the last good one) is serving."""
        ...


@runtime_checkable
class ChatEntry(Protocol):
    """One message of an account's conversation, as the workspace keeps it."""

    @property
    def role(self) -> str:
        """user | assistant | notice"""
        ...

    @property
    def text(self) -> str: ...

    @property
    def agent(self) -> str | None: ...

    # Optional: ``interrupted`` (an answer cut off mid-stream, from a saved session) is read with getattr.


@runtime_checkable
class WorkspaceLike(Protocol):
    """The console core as the UI sees it."""

    bus: EventBus
    clock: Clock

    @property
    def mode(self) -> str: ...

    def start(self) -> Any: ...

    def close(self) -> Any: ...

    # accounts
    def accounts(self) -> Sequence[Account]: ...

    @property
    def current_account(self) -> Account | None: ...

    def switch_account(self, username: str) -> Any: ...

    def sign_out(self) -> Any: ...

    def begin_device_flow(self) -> Any: ...

    def demo_users(self) -> Sequence[str]:
        """Local mode: the demo tenant's usernames a presenter may sign in as; empty in Azure mode."""
        ...

    def sign_in_as(self, username: str) -> Any: ...

    # conversation
    def send(self, text: str) -> Any: ...

    def stop_turn(self) -> Any: ...

    def reset_conversation(self) -> Any: ...

    def history(self) -> Sequence[ChatEntry]: ...

    def events(self) -> Sequence[Event]:
        """The current account's events so far (to rebuild the events pane after a switch)."""
        ...

    # saved conversations (console.core.sessions.SessionSummary: id, title, messages, updated, main_agent,
    # interrupted) and export
    def sessions(self) -> Sequence[Any]: ...

    def current_session_id(self) -> str | None: ...

    def resume_session(self, session_id: str) -> Any: ...

    def export(self, path_dir: Any = None) -> tuple[Any, Any]:
        """Blocking (SQLite, disk): (markdown path, JSON-lines trace path)."""
        ...

    # agents and configs
    def back_to_main(self) -> Any: ...

    def set_main_agent(self, key: str) -> Any: ...

    @property
    def main_agent(self) -> str | None: ...

    def active_agent(self) -> AgentView | None: ...

    def handoff_chain(self) -> Sequence[str]: ...

    def configs(self) -> Sequence[ConfigView]: ...

    # what the panes show
    def user_claims(self) -> dict[str, Any] | None: ...

    def obo_claims(self) -> dict[str, Any] | None: ...

    def last_search(self) -> SearchResults | None: ...

    def server_status(self) -> ServerStatus: ...

    def server_log(self) -> Sequence[str]: ...
