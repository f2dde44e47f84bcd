"""What the UI needs from the core: the contract ``console.core.workspace.Workspace`` fulfils (and the test double
``tests/ui/fake_workspace.py``), with the core's own types.

One calling convention: every method is a plain function. Reads of the workspace's state (marked "no I/O") are
cheap and are called on the UI's loop. The others may block (MSAL, HTTP, SQLite): the UI calls them in a worker
thread (``asyncio.to_thread``). What takes longer than a moment — a turn, a device-code sign-in — starts at once
and hands back a ``concurrent.futures.Future`` the UI awaits (``asyncio.wrap_future``) without holding a thread.
Light to import (no textual, no heavy libraries).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from pydantic import SecretStr

from console.core.clock import Clock
from console.core.events import Event, EventBus, SearchResults
from console.core.link_state import LinkStatus
from console.core.scenario_client import ScenarioStatus
from console.core.sessions import SessionSummary
from console.core.workspace_views import AccountInfo, AgentInfo, ChatEntry, Claims, ConfigInfo, TurnOutcome

if TYPE_CHECKING:
    from console.core.mcp_trust import TrustPrompt  # a Callable alias; mcp_trust itself is not light


class ScenarioControl(Protocol):
    """The local stack's scenarios (``console.core.scenario_client.ScenarioClient``); every method blocks (HTTP)."""

    def status(self) -> ScenarioStatus: ...

    def apply(self, name: str) -> ScenarioStatus: ...

    def reset(self) -> ScenarioStatus: ...


class DeviceSignIn(Protocol):
    """A device-code sign-in in progress (``console.core.workspace_views.DeviceFlowHandle``)."""

    @property
    def user_code(self) -> SecretStr:
        """Masked: reveal it only where it is shown."""
        ...

    @property
    def verification_uri(self) -> str: ...

    @property
    def expires_at(self) -> float:
        """Epoch seconds."""
        ...

    def signed_in(self) -> Future[AccountInfo]:
        """Returns at once: the account, once the person approved and it became current (or why not)."""
        ...

    def cancel(self) -> None: ...


class BrowserSignIn(Protocol):
    """A browser sign-in in progress (``console.core.browser_sign_in.BrowserSignInHandle``)."""

    @property
    def auth_uri(self) -> str | None:
        """The sign-in page once the flow opened it (None before)."""
        ...

    def signed_in(self) -> Future[AccountInfo]:
        """Returns at once: the account, once the page was completed and it became current (or why not)."""
        ...

    def cancel(self) -> None: ...


class PresenterSource(Protocol):
    """What the presenter view reads (``WorkspaceLike`` is one); all of it without I/O."""

    @property
    def current_account(self) -> AccountInfo | None: ...

    def user_claims(self, *, refresh: bool = False) -> Claims | None: ...

    def events(self) -> list[Event]: ...

    def history(self) -> list[ChatEntry]: ...

    def subscribe_current(self, callback: Callable[[Event], None]) -> Callable[[], None]: ...


class WorkspaceLike(Protocol):
    """The console core as the UI sees it."""

    @property
    def bus(self) -> EventBus: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def mode(self) -> str:
        """local | azure"""
        ...

    @property
    def current_account(self) -> AccountInfo | None:
        """No I/O."""
        ...

    @property
    def main_agent(self) -> str | None:
        """No I/O: the main agent's config key."""
        ...

    # -- lifecycle (blocking)
    def start(self) -> LinkStatus: ...

    def close(self) -> None: ...

    def set_trust_prompt(self, prompt: TrustPrompt | None) -> None:
        """No I/O: who to ask before a ``--connect`` origin no rule trusts gets the token."""
        ...

    # -- accounts
    def accounts(self) -> list[AccountInfo]:
        """No I/O."""
        ...

    def switch_account(self, username: str) -> AccountInfo: ...

    def sign_out(self, username: str | None = None) -> AccountInfo | None: ...

    def begin_device_flow(self) -> DeviceSignIn:
        """Blocking (one HTTP call); the sign-in itself completes later (``DeviceSignIn.signed_in``)."""
        ...

    def begin_browser_sign_in(self, as_user: str | None = None) -> BrowserSignIn:
        """Blocking (builds the MSAL app): MSAL's interactive flow in the system browser; in local mode ``as_user``
        completes the page as that demo user. The sign-in completes later (``BrowserSignIn.signed_in``)."""
        ...

    def demo_users(self) -> list[str]:
        """No I/O. Local mode: the demo tenant's usernames a presenter may sign in as; empty in Azure mode."""
        ...

    def sign_in_as(self, username: str, *, timeout: float = 60.0) -> AccountInfo: ...

    # -- the conversation
    def submit(self, text: str) -> Future[TurnOutcome]:
        """Returns at once; events stream on the bus; the future completes once the turn has ended."""
        ...

    def stop_turn(self) -> bool:
        """No I/O: asks the running turn to stop."""
        ...

    def reset_conversation(self) -> None:
        """Blocking: waits for a stopped turn to end; a UserError (nothing changed) when it does not."""
        ...

    def history(self) -> list[ChatEntry]:
        """No I/O."""
        ...

    def events(self) -> list[Event]:
        """No I/O: the current account's events so far (to rebuild the events pane after a switch)."""
        ...

    def subscribe_current(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """No I/O: the current account's events and the console-wide ones, from the publisher's thread."""
        ...

    # -- saved conversations and export (blocking: SQLite, disk)
    def sessions(self) -> list[SessionSummary]: ...

    def current_session_id(self) -> str | None: ...

    def resume_session(self, session_id: str) -> SessionSummary: ...

    def export(self, path_dir: str | Path | None = None) -> tuple[Path, Path]:
        """(the Markdown transcript, the JSON-lines trace)."""
        ...

    # -- agents and configs
    def back_to_main(self) -> None: ...

    def set_main_agent(self, key: str) -> None: ...

    def active_agent(self) -> AgentInfo | None:
        """No I/O."""
        ...

    def handoff_chain(self) -> list[str]:
        """No I/O."""
        ...

    def configs(self) -> list[ConfigInfo]:
        """No I/O."""
        ...

    # -- what the panes show (no I/O)
    def user_claims(self, *, refresh: bool = False) -> Claims | None:
        """The access token's decoded claims (never the token); blocking only with ``refresh``."""
        ...

    def obo_claims(self) -> Claims | None: ...

    def last_search(self) -> SearchResults | None: ...

    def server_status(self) -> LinkStatus: ...

    def subscribe_server_log(self, callback: Callable[[str], None]) -> Callable[[], None]:
        """Each line the launched server prints (the lines so far first), from the reader's thread."""
        ...
