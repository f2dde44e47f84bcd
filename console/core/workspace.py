"""The per-account controller the TUI and the headless commands drive.

A ``Workspace`` owns the event bus, the link to the MCP server, sign-in, the live agent configs, and one
``AccountSession`` per signed-in account. Each session has its own conversation (its own runner, so the model
for bob never receives alice's history), its own MCP connection carrying its own token, and its own latest
claims, search results and events. Events from a session's runner are tagged with its account before they reach
the shared bus, so views show only the current account's; after ``switch_account`` views rebuild from the new
session's state alone (docs/contracts.md, security invariants: switching account shows nothing of the previous
account's results).

Threads: agent turns run on the workspace's own event loop (a daemon thread), so a slow hook or a blocking call
inside a turn never freezes the UI; ``send()`` is awaitable from any loop. Everything else here is plain blocking
code (MSAL, sockets): call it from a thread (the UI's ``call()`` does) or from a headless command directly.
Heavy libraries (agents, MSAL) are imported when first needed, so the TUI's first frame stays fast.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import sqlite3
import threading
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import SecretStr

from console.core.clock import Clock, SystemClock
from console.core.errors import NotSignedIn
from console.core.events import (
    AccountChanged,
    Event,
    EventBus,
    HandoffOccurred,
    Notice,
    SearchResults,
    TurnEnded,
)
from console.core.server_link import LinkState, LinkStatus, LinkTimings, ServerLink
from console.core.sessions import LoadedSession, SessionStore, SessionSummary, writes_message
from console.core.settings import Settings, load_settings
from mcp_server.errors import UserError

if TYPE_CHECKING:
    from console.core.auth.accounts import SignedInAccount
    from console.core.auth.device_flow import DeviceFlow
    from console.core.auth.manager import AuthManager
    from console.core.configs.live import LiveConfigs
    from console.core.mcp_trust import TrustPrompt

T = TypeVar("T")

EVENTS_KEPT = 5000  # per account: enough for the events pane; older ones drop off


# ---------------------------------------------------------------------------------------------------------------
# What the UI reads


@dataclass(frozen=True)
class AccountInfo:
    """A signed-in account as views show it (no token)."""

    username: str
    name: str
    oid: str = ""
    tenant_id: str = ""

    @property
    def login(self) -> str:
        return self.username.split("@", 1)[0]


@dataclass(frozen=True)
class ChatEntry:
    """One message of an account's conversation. ``role``: user | assistant | notice."""

    role: str
    text: str
    agent: str | None = None
    ts: float = 0.0
    turn_id: str | None = None
    error: bool = False
    interrupted: bool = False  # an answer cut off when the console stopped mid-stream (from a saved session)


@dataclass(frozen=True)
class AgentInfo:
    """The active agent as the agent pane shows it."""

    key: str
    name: str
    model: str
    provider: str
    tools: tuple[str, ...] = ()
    agents_as_tools: tuple[str, ...] = ()
    handoffs: tuple[str, ...] = ()
    mcp_servers: tuple[str, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class ConfigInfo:
    """One config's validation status for the configs screen and the command palette."""

    key: str
    name: str
    source: str
    valid: bool
    serving: bool
    serving_last_good: bool
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class TurnOutcome:
    output: str
    agent: str | None
    error: str | None = None
    cancelled: bool = False


class DeviceFlowHandle:
    """A device-code sign-in in progress. ``user_code`` is masked (SecretStr): reveal it only where shown."""

    def __init__(self, workspace: Workspace, flow: DeviceFlow) -> None:
        self._workspace = workspace
        self._flow = flow

    @property
    def user_code(self) -> SecretStr:
        return self._flow.prompt.user_code

    @property
    def verification_uri(self) -> str:
        return self._flow.prompt.verification_uri

    @property
    def expires_at(self) -> float:
        return self._flow.prompt.expires_at

    @property
    def interval(self) -> int:
        return self._flow.prompt.interval

    def seconds_left(self, clock: Clock | None = None) -> int:
        now = (clock or self._workspace.clock).time()
        return max(0, int(self.expires_at - now))

    def done(self) -> bool:
        return self._flow.done()

    def result(self, timeout: float | None = None) -> AccountInfo:
        """Block until signed in (then that account is current); raises DeviceFlowError/DeviceFlowCancelled."""
        account = self._flow.result(timeout)
        return self._workspace._signed_in(account)

    async def wait(self) -> AccountInfo:
        account = await self._flow.wait()
        return await asyncio.to_thread(self._workspace._signed_in, account)

    def cancel(self) -> None:
        self._flow.cancel()

    def __repr__(self) -> str:
        return f"<DeviceFlowHandle {self.verification_uri} done={self.done()}>"


# ---------------------------------------------------------------------------------------------------------------
# The workspace's own event loop


class _LoopThread:
    """An asyncio loop on a daemon thread: agent turns run here, whoever asks for them."""

    def __init__(self, name: str = "workspace-loop") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call(self, fn: Callable[[], Any]) -> None:
        self.loop.call_soon_threadsafe(fn)

    def stop(self, timeout: float = 10.0) -> None:
        if not self.loop.is_running():
            return

        async def _drain() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(_drain(), self.loop).result(timeout)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)
        if not self.loop.is_running():
            self.loop.close()


# ---------------------------------------------------------------------------------------------------------------
# One signed-in account


class AccountSession:
    """Everything one account has: its conversation and runner, MCP connection, claims, results and events."""

    def __init__(self, workspace: Workspace, account: SignedInAccount) -> None:
        self.workspace = workspace
        self.account = account
        self.info = AccountInfo(account.username, account.name, account.oid, account.tenant_id)
        self.username = account.username
        # The runner publishes here; the session records and tags, then forwards to the workspace's bus.
        self.bus = EventBus()
        self.events: deque[Event] = deque(maxlen=EVENTS_KEPT)
        self.history: list[ChatEntry] = []
        self.last_search: SearchResults | None = None
        self.obo_claims: dict[str, Any] | None = None
        self.user_claims: dict[str, Any] | None = None
        self.handoff_chain: list[str] = []
        self.active_agent_name: str | None = None
        self.runner: Any = None  # built on the first turn, on the workspace loop
        self.runner_url: str | None = None  # the MCP URL the runner's connection was built for
        # A resumed conversation's agent input (user and assistant messages), given to the runner when it is built.
        self.pending_input: list[dict[str, Any]] | None = None
        self._lock = threading.RLock()
        self._task: asyncio.Task[Any] | None = None
        self.store: SessionStore | None = None
        self._store_failed = False
        self._open_store()
        self._unsubscribe = self.bus.subscribe(self._on_event)

    # -- the saved conversation ---------------------------------------------------------------------------------

    def _open_store(self) -> None:
        """Open this account's session database; resume its latest conversation, or start one."""
        try:
            store = SessionStore(self.account)
            latest = store.latest()
            if latest is not None:
                self.load(store.resume(latest.id), store)
            else:
                store.new_session(self.workspace.main_agent)
        except (sqlite3.Error, OSError) as exc:
            self._store_broken(exc)
            return
        self.store = store

    def load(self, loaded: LoadedSession, store: SessionStore) -> None:
        """Show a saved conversation: its messages (cut-off answers marked) and, from the next turn, the model
        continues it. Results and events of the conversation shown before are dropped."""
        obo = _last_obo_claims(store, loaded.summary.id)
        with self._lock:
            self.history[:] = [
                ChatEntry(m.role, m.text, m.agent, m.ts, m.turn_id, error=m.error, interrupted=not m.complete)
                for m in loaded.messages
            ]
            self.events.clear()
            self.last_search = None
            self.obo_claims = obo
            self.handoff_chain.clear()
            self.active_agent_name = None
            self.pending_input = list(loaded.input_list)

    def _record(self, event: Event) -> None:
        store = self.store
        if store is None:
            return
        try:
            store.record(event)  # committed before any view sees the event: a kill loses no completed message
        except (sqlite3.Error, OSError, RuntimeError) as exc:  # RuntimeError: the store closed (signed out)
            self._store_broken(exc)

    def _store_broken(self, exc: BaseException) -> None:
        if self._store_failed:
            return
        self._store_failed = True
        self.workspace.bus.publish(Notice(
            level="warning", source="sessions", account=self.username,
            message=f"this conversation is not being saved ({type(exc).__name__}: {exc}); it lives on until the "
                    "console exits"))

    # -- events -------------------------------------------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        if event.account != self.username:
            event = dataclasses.replace(event, account=self.username)
        with self._lock:
            self.events.append(event)
            if isinstance(event, SearchResults):
                self.last_search = event
                if event.obo_claims:
                    self.obo_claims = dict(event.obo_claims)
            elif isinstance(event, HandoffOccurred):
                self.handoff_chain.append(event.to_agent)
                self.active_agent_name = event.to_agent
            elif isinstance(event, TurnEnded):
                if event.last_agent:
                    self.active_agent_name = event.last_agent
                now = self.workspace.clock.time()  # the injectable clock, so snapshot tests see fixed times
                if event.error:
                    self.history.append(ChatEntry("notice", event.error, event.last_agent, now, event.turn_id, error=True))
                elif event.output:
                    self.history.append(ChatEntry("assistant", event.output, event.last_agent, now, event.turn_id))
        # A message (the question, the answer as it streams, an error) is committed before any view sees it: a kill
        # loses no completed message. Every other event reaches the views first and is saved right after.
        if writes_message(event):
            self._record(event)
            self.workspace.bus.publish(event)
        else:
            self.workspace.bus.publish(event)
            self._record(event)

    def snapshot_events(self) -> list[Event]:
        with self._lock:
            return list(self.events)

    def snapshot_history(self) -> list[ChatEntry]:
        with self._lock:
            return list(self.history)

    @property
    def busy(self) -> bool:
        task = self._task
        return task is not None and not task.done()

    def close(self) -> None:
        self._unsubscribe()
        store, self.store = self.store, None
        if store is not None:
            with contextlib.suppress(sqlite3.Error, RuntimeError):
                store.flush_partial()  # an answer still streaming is kept, marked interrupted
            store.close()


def _last_obo_claims(store: SessionStore, session_id: str) -> dict[str, Any] | None:
    """The OBO token's claims of the session's last search (decoded claims, as recorded), for export after resume."""
    for event in reversed(store.events(session_id)):
        if event.get("kind") == "search_results" and isinstance(event.get("obo_claims"), dict):
            return dict(event["obo_claims"])
    return None


# ---------------------------------------------------------------------------------------------------------------
# The workspace


class Workspace:
    """The console core as the UI and headless commands see it. See the module docstring for threading."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        connect: str | None = None,
        connect_url: str | None = None,
        clock: Clock | None = None,
        bus: EventBus | None = None,
        launch: bool = True,
        link: ServerLink | None = None,
        link_timings: LinkTimings | None = None,
        keyring_backend: Any = None,
        trust_prompt: TrustPrompt | None = None,
    ) -> None:
        """``trust_prompt``: asks a person whether a ``--connect`` origin no rule trusts may receive the token
        (see ``console.core.mcp_trust``); without one such an origin is refused."""
        self.settings = settings or load_settings()
        self.clock: Clock = clock or SystemClock()
        self.bus = bus or EventBus()
        self.link = link or ServerLink(
            self.settings, connect_url=connect or connect_url, bus=self.bus, clock=self.clock, launch=launch,
            timings=link_timings, trust_prompt=trust_prompt,
        )
        self._keyring_backend = keyring_backend
        self._auth: AuthManager | None = None
        self._configs: LiveConfigs | None = None
        self._sessions: dict[str, AccountSession] = {}
        self._current: str | None = None
        self._main_agent: str | None = None
        self._lock = threading.RLock()
        self._loop: _LoopThread | None = None
        self._unsubscribe_link: Callable[[], None] | None = None
        self._started = False
        self._closed = False

    # -- lifecycle ------------------------------------------------------------------------------------------

    @property
    def mode(self) -> str:
        return self.settings.mode

    def set_trust_prompt(self, prompt: TrustPrompt | None) -> None:
        """Who to ask (the console's confirmation screen) before a ``--connect`` origin gets the token."""
        self.link.trust_prompt = prompt

    def start(self) -> LinkStatus:
        """Connect to (or launch) the server, load configs, then sign in silently from the keyring."""
        if self._started:
            return self.link.status
        status = self.link.start()  # raises UserError when no server can be found, launched or trusted
        if self._unsubscribe_link is None:
            self._unsubscribe_link = self.link.subscribe_status(self._on_link_status, replay=False)
        from console.core.auth.manager import AuthManager
        from console.core.configs.live import LiveConfigs
        from console.core.configs.open_store import open_store

        if self._auth is None:
            self._auth = AuthManager.from_settings(self.settings, backend=self._keyring_backend)
            if self._auth.warning:
                self.bus.publish(Notice(level="warning", message=self._auth.warning, source="auth"))
        if self._configs is None:
            live = LiveConfigs(open_store(self.settings), bus=self.bus)
            live.start()
            self._configs = live
        if self._loop is None:
            self._loop = _LoopThread()
        self._started = True
        self._sign_in_silently()
        return status

    async def astart(self) -> LinkStatus:
        return await asyncio.to_thread(self.start)

    def close(self) -> None:
        """Stop turns, close every account's MCP connection, stop watching configs, and stop the server only if
        the console launched it. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            sessions = list(self._sessions.values())
        if self._unsubscribe_link is not None:
            self._unsubscribe_link()
        if self._loop is not None:
            for session in sessions:
                with contextlib.suppress(Exception):
                    self._loop.submit(self._close_runner(session)).result(10)
            self._loop.stop()
        for session in sessions:
            session.close()
        if self._configs is not None:
            with contextlib.suppress(Exception):
                self._configs.stop()
        self.link.close()

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    def __enter__(self) -> Workspace:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def auth(self) -> AuthManager:
        if self._auth is None:
            raise UserError("The console has not started yet (no sign-in available).")
        return self._auth

    @property
    def configs_live(self) -> LiveConfigs:
        if self._configs is None:
            raise UserError("The console has not started yet (no configs loaded).")
        return self._configs

    # -- accounts -------------------------------------------------------------------------------------------

    def _sign_in_silently(self) -> None:
        auth = self.auth
        for account in auth.accounts():
            self._session_for(account)
        current = auth.current_account()
        if current is None:
            accounts = auth.accounts()
            current = accounts[0] if accounts else None
        if current is None:
            return
        try:
            token = auth.acquire_token(current)
        except UserError as exc:
            self.bus.publish(Notice(level="warning", message=f"{current.username}: {exc.message}", source="auth"))
            return
        if auth.identity_unreachable:  # signed in from the cached token: say so, and until when
            self.bus.publish(Notice(level="warning", source="auth", message=f"{auth.identity_unreachable}; "
                                    f"{current.username} works from the cached token until it expires."))
        session = self._session_for(current)
        session.user_claims = token.claims()
        self._set_current(current.username)

    def _session_for(self, account: SignedInAccount) -> AccountSession:
        key = account.username.lower()
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                session = AccountSession(self, account)
                self._sessions[key] = session
            return session

    def _set_current(self, username: str | None) -> None:
        with self._lock:
            previous = self._sessions.get(self._current) if self._current else None
            self._current = username.lower() if username else None
            changed = (previous.username.lower() if previous else None) != self._current
        if changed:
            self.bus.publish(AccountChanged(account=username, previous=previous.username if previous else None))

    def accounts(self) -> list[AccountInfo]:
        with self._lock:
            return [s.info for s in sorted(self._sessions.values(), key=lambda s: s.username.lower())]

    @property
    def current_account(self) -> AccountInfo | None:
        session = self._current_session(required=False)
        return session.info if session else None

    def session(self, username: str | None = None) -> AccountSession | None:
        """An account's session (the current one by default)."""
        if username is None:
            return self._current_session(required=False)
        with self._lock:
            return self._sessions.get(username.lower()) or next(
                (s for s in self._sessions.values() if s.info.login.lower() == username.lower()), None
            )

    def _current_session(self, *, required: bool = True) -> AccountSession | None:
        with self._lock:
            session = self._sessions.get(self._current) if self._current else None
        if session is None and required:
            raise NotSignedIn()
        return session

    def switch_account(self, username: str) -> AccountInfo:
        """Make a signed-in account current. Views rebuild from its session alone."""
        session = self.session(username)
        if session is None:
            known = ", ".join(a.username for a in self.accounts()) or "nobody"
            raise UserError(f"{username!r} is not signed in (signed in: {known}).",
                            hint="Sign in with the device code first.")
        self.auth.switch_account(session.username)
        self._set_current(session.username)
        return session.info

    def begin_device_flow(self) -> DeviceFlowHandle:
        """Ask for a device code (one HTTP call). Show ``user_code``/``verification_uri``, then ``await wait()``."""
        flow = self.auth.start_device_flow()
        flow.start_polling()
        return DeviceFlowHandle(self, flow)

    def demo_users(self) -> list[str]:
        """Local mode: the demo users a presenter may sign in as; empty in Azure mode."""
        if self.mode != "local" or self._auth is None:
            return []
        return [user.username for user in self._auth.endpoints.users]

    def sign_in_as(self, username: str, *, timeout: float = 60.0) -> AccountInfo:
        """Local mode: run the device flow and complete its page as a demo user (the presenter's choice)."""
        from console.core.auth.device_page import complete_device_page
        from console.core.auth.msal_app import http_session

        auth = self.auth
        if auth.endpoints.mode != "local":
            raise UserError("Signing in as a demo user works only in local mode.",
                            hint="In Azure mode complete the device-code page in a browser.")
        user = auth.endpoints.demo_user(username)
        handle = self.begin_device_flow()
        try:
            with http_session(auth.endpoints) as browser:
                complete_device_page(browser, handle.verification_uri, handle.user_code, user.username)
            return handle.result(timeout)
        finally:
            if not handle.done():
                handle.cancel()

    def _signed_in(self, account: SignedInAccount) -> AccountInfo:
        """A device flow completed: that account gets (or keeps) its session and becomes current."""
        token = self.auth.acquire_token(account)
        session = self._session_for(account)
        session.user_claims = token.claims()
        self.auth.switch_account(account.username)
        self._set_current(account.username)
        return session.info

    def sign_out(self, username: str | None = None) -> AccountInfo | None:
        """Sign an account out (the current one by default): its tokens leave the keyring and its session —
        conversation, results, MCP connection — is dropped. Returns the account now current, if any."""
        session = self.session(username) if username else self._current_session()
        if session is None:
            raise NotSignedIn(f"{username!r} is not signed in.")
        self.auth.sign_out(session.account)
        with self._lock:
            self._sessions.pop(session.username.lower(), None)
            was_current = self._current == session.username.lower()
        if self._loop is not None:
            with contextlib.suppress(Exception):
                self._loop.submit(self._close_runner(session)).result(10)
        session.close()
        if was_current:
            remaining = self.accounts()
            if remaining:
                self.auth.switch_account(remaining[0].username)
            with self._lock:
                self._current = None
            self.bus.publish(AccountChanged(account=None, previous=session.username))
            if remaining:
                self._set_current(remaining[0].username)
        return self.current_account

    # -- conversation ---------------------------------------------------------------------------------------

    def history(self) -> list[ChatEntry]:
        session = self._current_session(required=False)
        return session.snapshot_history() if session else []

    def events(self) -> list[Event]:
        """The current account's events (for rebuilding the events pane after a switch)."""
        session = self._current_session(required=False)
        return session.snapshot_events() if session else []

    def subscribe_current(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Events of the current account and of the console as a whole (server, configs), not other accounts'."""

        def deliver(event: Event) -> None:
            if event.account is None or isinstance(event, AccountChanged):
                callback(event)
                return
            with self._lock:
                current = self._current
            if current is not None and event.account.lower() == current:
                callback(event)

        return self.bus.subscribe(deliver)

    async def send(self, text: str) -> TurnOutcome:
        """Run one turn as the current account; events stream on the bus tagged with the account."""
        return await asyncio.wrap_future(self.submit(text))

    def send_sync(self, text: str, timeout: float | None = None) -> TurnOutcome:
        """``send`` for code without an event loop (headless commands, tests)."""
        return self.submit(text).result(timeout)

    def submit(self, text: str) -> concurrent.futures.Future[TurnOutcome]:
        text = text.strip()
        if not text:
            raise UserError("Nothing to send: type a message first.")
        session = self._current_session()
        assert session is not None
        if session.busy:
            raise UserError("A turn is still running for this account.", hint="Wait for it, or stop it first.")
        if self._loop is None:
            raise UserError("The console has not started yet.")
        with session._lock:
            session.history.append(ChatEntry("user", text, None, self.clock.time()))
        return self._loop.submit(self._run_turn(session, text))

    def stop_turn(self) -> bool:
        """Stop the current account's running turn (True if one was running). Its partial answer is dropped;
        the conversation stays as it was before the turn."""
        session = self._current_session(required=False)
        if session is None or not session.busy or self._loop is None:
            return False
        runner, task = session.runner, session._task
        if runner is not None and runner.running:
            self._loop.call(runner.cancel)  # the runner ends the turn cleanly (TurnEnded "cancelled")
        elif task is not None:
            self._loop.call(task.cancel)  # still connecting / building: nothing to clean up yet
        return True

    def reset_conversation(self) -> None:
        """Start a new conversation for the current account: the screen, the model's history, results and events
        start empty, and a new saved session begins (the previous one stays saved; ``resume_session`` brings it
        back). Its sign-in stays."""
        self.new_conversation()

    def new_conversation(self) -> str | None:
        """``reset_conversation``, returning the new saved session's id (None when saving is unavailable)."""
        session = self._current_session()
        assert session is not None
        self._finish_turn(session)  # a stopped turn's last events belong to the conversation it was part of
        with session._lock:
            session.history.clear()
            session.events.clear()
            session.last_search = None
            session.obo_claims = None
            session.handoff_chain.clear()
            session.active_agent_name = None
            session.pending_input = None
        if session.runner is not None:
            self._on_loop(session.runner.reset)
        session_id = None
        if session.store is not None:
            try:
                session_id = session.store.new_session(self.main_agent)
            except (sqlite3.Error, RuntimeError) as exc:
                session._store_broken(exc)
        self.bus.publish(Notice(message="conversation reset", source="workspace", account=session.username))
        return session_id

    def sessions(self) -> list[SessionSummary]:
        """The current account's saved conversations, the most recently active first (no other account's)."""
        session = self._current_session(required=False)
        if session is None or session.store is None:
            return []
        return session.store.list_sessions()

    def current_session_id(self) -> str | None:
        session = self._current_session(required=False)
        return session.store.current_id if session is not None and session.store is not None else None

    def resume_session(self, session_id: str) -> SessionSummary:
        """Continue a saved conversation of the current account: its messages come back (cut-off answers marked
        interrupted) and the model receives its user and assistant messages from the next turn on."""
        session = self._current_session()
        assert session is not None
        store = self._store_of(session)
        known = {s.id for s in store.list_sessions()}
        if session_id not in known:
            raise UserError(f"There is no saved conversation {session_id!r} for {session.username}.",
                            hint="Pick one from the list of saved conversations (Workspace.sessions()).")
        self._finish_turn(session)
        loaded = store.resume(session_id)
        session.load(loaded, store)
        if session.runner is not None:
            runner = session.runner

            def continue_it() -> None:
                runner.reset()
                runner.history = list(loaded.input_list)

            self._on_loop(continue_it)
            session.pending_input = None
        title = loaded.summary.title or "untitled"
        self.bus.publish(Notice(message=f"conversation resumed: {title}", source="workspace",
                                account=session.username))
        return loaded.summary

    def export(self, path_dir: str | Path | None = None) -> tuple[Path, Path]:
        """Write the current conversation as Markdown (messages, decoded claims masked, events) and its trace as
        JSON lines; both 0600, in ``path_dir`` or ``<data dir>/exports``. Returns (markdown, trace)."""
        from console.core.export import export_session

        session = self._current_session()
        assert session is not None
        store = self._store_of(session)
        target = Path(path_dir).expanduser() if path_dir is not None else None
        try:
            store.flush_partial()  # an answer still streaming is exported as far as it got, marked interrupted
            if target is not None:
                target.mkdir(parents=True, exist_ok=True, mode=0o700)
            session_id = store.current_id
            assert session_id is not None  # a store is opened on a resumed or a new session
            paths = export_session(store, session_id, target, user_claims=session.user_claims,
                                   obo_claims=session.obo_claims)
        except OSError as exc:
            raise UserError(f"Could not write the export to {target or 'the exports folder'}: {exc.strerror or exc}.",
                            hint="Choose a folder you can write to.") from exc
        return paths.markdown, paths.trace

    def _store_of(self, session: AccountSession) -> SessionStore:
        if session.store is None:
            raise UserError(f"Conversations of {session.username} are not being saved (see the log).",
                            hint="Check that the data directory is writable, then restart the console.")
        return session.store

    def _finish_turn(self, session: AccountSession, timeout: float = 10.0) -> None:
        """Stop the account's running turn and wait until it has ended (its TurnEnded recorded)."""
        task = session._task
        if task is None or task.done() or self._loop is None:
            return
        runner = session.runner
        if runner is not None and runner.running:
            self._loop.call(runner.cancel)
        else:
            self._loop.call(task.cancel)
        if threading.current_thread() is self._loop.thread:
            return  # on the loop itself: cannot wait here; the turn ends right after

        async def ended() -> None:
            await asyncio.wait({task}, timeout=timeout)

        with contextlib.suppress(Exception):
            self._loop.submit(ended()).result(timeout + 1)

    def back_to_main(self) -> None:
        """Return the current account's conversation to the main agent."""
        session = self._current_session()
        assert session is not None
        if session.runner is not None:
            self._on_loop(session.runner.back_to_main)  # publishes its own notice on the session's bus
        with session._lock:
            session.handoff_chain.clear()
            session.active_agent_name = None

    @property
    def main_agent(self) -> str | None:
        """The main agent's config key (the one a fresh conversation starts with)."""
        if self._main_agent and self._configs is not None and self._configs.get(self._main_agent) is not None:
            return self._main_agent
        if self._configs is None or not self._configs.current.configs:
            return None
        from console.core.agents.factory import default_main_key

        return default_main_key(self._configs.current.configs)

    def set_main_agent(self, key: str) -> None:
        """Choose the main agent by config key; every account's next turn starts from it (no restart)."""
        configs = self.configs_live.current
        if configs.get(key) is None:
            known = ", ".join(sorted(configs.configs)) or "none"
            raise UserError(f"No agent config {key!r} is serving.", hint=f"Agents: {known}.")
        self._main_agent = key
        with self._lock:
            sessions = list(self._sessions.values())
        for session in sessions:
            with session._lock:
                session.handoff_chain.clear()
                session.active_agent_name = None
        self.bus.publish(Notice(message=f"main agent: {key} (from the next turn)", source="workspace"))

    def active_agent(self) -> AgentInfo | None:
        """The agent that answers the current account's next turn."""
        session = self._current_session(required=False)
        runner = session.runner if session else None
        if runner is not None and runner.main_key == self.main_agent:
            return self.agent_info(runner.active_key) or self.agent_info(runner.main_key)
        key = self.main_agent
        return self.agent_info(key) if key else None

    def agent_info(self, key: str) -> AgentInfo | None:
        config = self.configs_live.current.get(key)
        if config is None:
            return None
        from console.core.agents.providers import resolve_provider

        provider = resolve_provider(self.settings)
        model = "offline-demo" if provider == "offline" else (self.settings.model or config.model)
        with contextlib.suppress(ImportError):
            from console.core.agents.offline_model import OFFLINE_MODEL_NAME

            model = OFFLINE_MODEL_NAME if provider == "offline" else model
        return AgentInfo(
            key=config.key,
            name=config.name,
            model=model,
            provider=provider,
            tools=tuple(config.tools),
            agents_as_tools=tuple(ref.agent for ref in config.agents_as_tools),
            handoffs=tuple(ref.agent for ref in config.handoffs),
            mcp_servers=tuple(config.mcp_servers),
            description=config.description or "",
        )

    def handoff_chain(self) -> list[str]:
        """Agent names from the main agent to the active one, through the handoffs that led there."""
        main_key = self.main_agent
        main = self.agent_info(main_key) if main_key else None
        if main is None:
            return []
        session = self._current_session(required=False)
        chain: list[str] = [main.name]
        for name in list(session.handoff_chain) if session else []:
            if name == main.name:
                chain = [main.name]  # back at the main agent: the chain starts over
            elif name not in chain:
                chain.append(name)
            else:
                chain = chain[: chain.index(name) + 1]
        return chain

    def configs(self) -> list[ConfigInfo]:
        if self._configs is None:
            return []
        out = []
        for key, entry in sorted(self._configs.current.entries.items()):
            shown = entry.serving or entry.config
            out.append(
                ConfigInfo(
                    key=key,
                    name=shown.name if shown else key,
                    source=entry.source,
                    valid=entry.status != "invalid",
                    serving=entry.serving is not None,
                    serving_last_good=entry.serving_last_good,
                    errors=tuple(str(i) for i in entry.issues if i.severity == "error"),
                    warnings=tuple(str(i) for i in entry.issues if i.severity == "warning"),
                )
            )
        return out

    # -- what the panes show --------------------------------------------------------------------------------

    def user_claims(self, *, refresh: bool = False) -> dict[str, Any] | None:
        """The current account's access-token claims (decoded, never the token). No I/O unless ``refresh``:
        they are updated at sign-in and whenever a turn fetches a fresh token."""
        session = self._current_session(required=False)
        if session is None:
            return None
        if refresh and self._auth is not None:
            with contextlib.suppress(UserError):
                session.user_claims = self._auth.acquire_token(session.account).claims()
        return dict(session.user_claims) if session.user_claims else None

    def obo_claims(self) -> dict[str, Any] | None:
        """The claims of the OBO token the server's last search ran with (from its ``_meta``), never the token."""
        session = self._current_session(required=False)
        return dict(session.obo_claims) if session and session.obo_claims else None

    def last_search(self) -> SearchResults | None:
        session = self._current_session(required=False)
        return session.last_search if session else None

    def server_status(self) -> LinkStatus:
        return self.link.status

    def server_log(self) -> list[str]:
        return [line.text for line in self.link.log_tail()]

    # -- turns (on the workspace loop) ----------------------------------------------------------------------

    def _on_loop(self, fn: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Run ``fn`` on the workspace loop (where runners live) and wait for it."""
        if self._loop is None:
            return fn()

        async def call() -> Any:
            return fn()

        return self._loop.submit(call()).result(timeout)

    async def _run_turn(self, session: AccountSession, text: str) -> TurnOutcome:
        session._task = asyncio.current_task()
        try:
            try:
                runner = await self._ensure_runner(session)
            except UserError as exc:  # no turn started: say why in this account's chat
                if session.store is not None:  # the runner never saw the message: save it here
                    with contextlib.suppress(sqlite3.Error, RuntimeError):
                        session.store.append_message("user", text)
                session.bus.publish(Notice(level="error", message=exc.message, source="workspace"))
                with session._lock:
                    session.history.append(ChatEntry("notice", str(exc), None, self.clock.time(), error=True))
                return TurnOutcome(output="", agent=None, error=exc.message)
            except asyncio.CancelledError:
                return TurnOutcome(output="", agent=None, error="cancelled", cancelled=True)
            try:
                result = await runner.run_turn(text)  # publishes TurnStarted ... TurnEnded on the session's bus
            except UserError as exc:
                return TurnOutcome(output="", agent=None, error=exc.message)
            except asyncio.CancelledError:
                return TurnOutcome(output="", agent=None, error="cancelled", cancelled=True)
            return TurnOutcome(output=result.output, agent=result.agent_name, error=result.error,
                               cancelled=result.cancelled)
        finally:
            session._task = None

    async def _ensure_runner(self, session: AccountSession) -> Any:
        """The account's runner for the server the link accepted, rebuilt (history kept) when the server moved
        or the main agent changed."""
        url = self.link.mcp_url
        status = self.link.status
        if not status.ready or url is None:
            raise UserError(f"The MCP server is not available ({status.describe()}).",
                            hint="The console reconnects by itself; try again in a moment.")
        main = self.main_agent
        old = session.runner
        if old is not None and session.runner_url == url and old.main_key == main:
            return old
        runner = await asyncio.to_thread(self._build_runner, session, url, main)
        if session.pending_input is not None:  # a resumed conversation: the model continues it
            runner.history = list(session.pending_input)
            session.pending_input = None
        elif old is not None:
            runner.history = list(old.history)  # the conversation survives a server move or a new main agent
            if old.main_key == runner.main_key and old.active_key in runner.graph.agents:
                runner.active_key = old.active_key
            old.close()
        session.runner, session.runner_url = runner, url
        return runner

    def _build_runner(self, session: AccountSession, url: str, main: str | None) -> Any:
        from console.core.agents.mcp_link import McpTarget
        from console.core.agents.runner import AgentRunner  # the agent runtime (heavy: the Agents SDK)

        auth = self.auth
        account = session.account

        def token() -> SecretStr:
            # Asked for shortly before the cached one expires; only ever sent to ``url`` (the server the link
            # found in the state file or settings, or checked for --connect).
            fresh = auth.acquire_token(account)
            session.user_claims = fresh.claims()
            return fresh.token

        return AgentRunner(
            settings=self.settings,
            configs=self.configs_live,
            bus=session.bus,
            account=session.username,
            token_provider=token,
            main_key=main,
            mcp_target=McpTarget(url, self.link.tls_verify),
        )

    async def _close_runner(self, session: AccountSession) -> None:
        runner, task = session.runner, session._task
        if runner is not None:
            runner.cancel()
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        if runner is not None:
            try:
                await asyncio.wait_for(runner.aclose(), 5)  # closes the account's MCP connection in its own task
            except Exception:
                runner.close()  # at least signal the connection's task to clean up
        session.runner = None

    def _on_link_status(self, status: LinkStatus) -> None:
        # Nothing to rebuild here: a runner whose URL changed reconnects on its next turn (_ensure_runner);
        # the conversation lives in the session and the runner, so a restart of the server loses nothing.
        if status.state is LinkState.READY and self._current is not None:
            session = self._current_session(required=False)
            if session is not None and session.runner_url and session.runner_url != status.url:
                self.bus.publish(Notice(message=f"the MCP server moved to {status.url}; reconnecting on the "
                                        "next turn", source="workspace", account=session.username))


def _outcome(result: Any, session: AccountSession) -> TurnOutcome:
    output = getattr(result, "output", None)
    if output is None:
        output = getattr(result, "final_output", None)
    if output is None and isinstance(result, str):
        output = result
    agent = getattr(result, "last_agent", None)
    agent_name = getattr(agent, "name", agent) if agent is not None else session.active_agent_name
    error = getattr(result, "error", None)
    return TurnOutcome(output=str(output or ""), agent=agent_name, error=error)

