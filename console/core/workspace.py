"""The per-account controller the TUI and the headless commands drive (the facade over the core).

A ``Workspace`` owns the event bus, the link to the MCP server, sign-in, the live agent configs, and one
``AccountSession`` per signed-in account (``console.core.account_session``). Each session has its own conversation
(its own runner, so the model for bob never receives alice's history), its own MCP connection carrying its own
token, and its own latest claims, search results and events. Events from a session's runner are tagged with its
account before they reach the shared bus, so views show only the current account's; after ``switch_account``
views rebuild from the new session's state alone (switching account shows nothing of the previous account's
results). What views read is plain data from ``console.core.workspace_views``.

Threads: agent turns run on the workspace's own event loop (``LoopThread``, a daemon thread), so a slow hook or a
blocking call inside a turn never freezes the UI; ``submit()`` returns a future at once. Everything else here is
plain blocking code (MSAL, sockets, SQLite): call it from a thread in an asyncio app, or directly from a headless
command. Heavy libraries (agents, MSAL) are imported when first needed, so the TUI's first frame stays fast.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from console.core.account_session import AccountSession
from console.core.agent_views import agent_info, config_infos, handoff_chain, main_agent_key
from console.core.auth import device_page
from console.core.browser_sign_in import BrowserSignInHandle, begin_browser_sign_in, watch_device_flow
from console.core.clock import Clock, SystemClock
from console.core.errors import NotSignedIn
from console.core.events import AccountChanged, Event, EventBus, Notice, SearchResults
from console.core.link_state import LinkStatus, LinkTimings
from console.core.loop_thread import LoopThread
from console.core.server_link import ServerLink
from console.core.sessions import SessionSummary
from console.core.settings import Settings, load_settings
from console.core.step_up_flow import step_up_sign_in
from console.core.workspace_views import (
    AccountInfo,
    AgentInfo,
    ChatEntry,
    Claims,
    ConfigInfo,
    DeviceFlowHandle,
    TurnOutcome,
)
from mcp_server.errors import UserError

if TYPE_CHECKING:
    from console.core.agents.runner import AgentRunner
    from console.core.auth.accounts import SignedInAccount
    from console.core.auth.manager import AuthManager
    from console.core.configs.live import LiveConfigs
    from console.core.mcp_trust import TrustPrompt

TURN_STOP_TIMEOUT = (
    10.0  # seconds a stopped turn may take to end before a new or resumed conversation is refused
)
RUNNER_CLOSE_WAIT = 10.0  # seconds to wait for an account's runner to close (sign-out, exit)

log = logging.getLogger(__name__)


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
        turn_stop_timeout: float = TURN_STOP_TIMEOUT,
    ) -> None:
        """``trust_prompt``: asks a person whether a ``--connect`` origin no rule trusts may receive the token
        (see ``console.core.mcp_trust``); without one such an origin is refused. ``turn_stop_timeout``: how long a
        new or resumed conversation waits for a stopped turn to end before it is refused."""
        self.settings = settings or load_settings()
        self.clock: Clock = clock or SystemClock()
        self.bus = bus or EventBus()
        self.link = link or ServerLink(
            self.settings,
            connect_url=connect or connect_url,
            bus=self.bus,
            clock=self.clock,
            launch=launch,
            timings=link_timings,
            trust_prompt=trust_prompt,
        )
        self._keyring_backend = keyring_backend
        self._auth: AuthManager | None = None
        self._configs: LiveConfigs | None = None
        self._sessions: dict[str, AccountSession] = {}
        self._current: str | None = None
        self._main_agent: str | None = None
        self._lock = threading.RLock()
        self._loop: LoopThread | None = None
        self.turn_stop_timeout = turn_stop_timeout
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
        # The link's state is on screen before the heavy libraries load (none of them at workspace import).
        from console.core.auth.manager import AuthManager  # deferred: msal, after the link
        from console.core.configs.live import LiveConfigs  # deferred: jsonschema, after the link
        from console.core.configs.open_store import open_store  # deferred: the Agents SDK, after the link

        if self._auth is None:
            self._auth = AuthManager.from_settings(self.settings, backend=self._keyring_backend)
            if self._auth.warning:
                self.bus.publish(Notice(level="warning", message=self._auth.warning, source="auth"))
        if self._configs is None:
            live = LiveConfigs(open_store(self.settings), bus=self.bus)
            live.start()
            self._configs = live
        if self._loop is None:
            self._loop = LoopThread()
        self._started = True
        self._sign_in_silently()
        return status

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
        for session in sessions:
            self._close_runner(session)
        if self._loop is not None:
            self._loop.stop()
        for session in sessions:
            session.close()
        if self._configs is not None:
            try:
                self._configs.stop()
            except Exception:  # closing goes on: the server link must still stop what it launched
                log.exception("stopping the agent config watcher")
        self.link.close()

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
            self.bus.publish(
                Notice(level="warning", message=f"{current.username}: {exc.message}", source="auth")
            )
            return
        if auth.identity_unreachable:  # signed in from the cached token: say so, and until when
            self.bus.publish(
                Notice(
                    level="warning",
                    source="auth",
                    message=f"{auth.identity_unreachable}; "
                    f"{current.username} works from the cached token until it expires.",
                )
            )
        session = self._session_for(current)
        session.set_user_claims(token.claims())
        self._set_current(current.username)

    def _session_for(self, account: SignedInAccount) -> AccountSession:
        key = account.username.lower()
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                session = AccountSession(account, bus=self.bus, clock=self.clock, main_agent=self.main_agent)
                session.step_up_sign_in = step_up_sign_in(self.auth)
                self._sessions[key] = session
            return session

    def _set_current(self, username: str | None) -> None:
        with self._lock:
            previous = self._sessions.get(self._current) if self._current else None
            self._current = username.lower() if username else None
            changed = (previous.username.lower() if previous else None) != self._current
        if changed:
            self.bus.publish(
                AccountChanged(account=username, previous=previous.username if previous else None)
            )

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
            raise UserError(
                f"{username!r} is not signed in (signed in: {known}).",
                hint="Sign in with the device code first.",
            )
        self.auth.switch_account(session.username)
        self._set_current(session.username)
        return session.info

    def begin_device_flow(self) -> DeviceFlowHandle:
        """Ask for a device code (one HTTP call). Show ``user_code``/``verification_uri``, then wait for ``signed_in()``."""
        flow = self.auth.start_device_flow()
        flow.start_polling()
        handle = DeviceFlowHandle(flow, self._signed_in, self.clock)
        watch_device_flow(self.bus, handle.signed_in())  # AADSTS53003: the views offer browser sign-in
        return handle

    def begin_browser_sign_in(self, as_user: str | None = None) -> BrowserSignInHandle:
        """MSAL's interactive flow (console.core.browser_sign_in); blocking: builds the MSAL app."""
        return begin_browser_sign_in(self.auth, self.bus, self._signed_in, as_user)

    def demo_users(self) -> list[str]:
        """Local mode: the demo users a presenter may sign in as; empty in Azure mode."""
        if self.mode != "local" or self._auth is None:
            return []
        return [user.username for user in self._auth.endpoints.users]

    def sign_in_as(self, username: str, *, timeout: float = 60.0) -> AccountInfo:
        """Local mode: run the device flow and complete its page as a demo user (the presenter's choice)."""
        from console.core.auth.msal_app import http_session  # deferred: msal, after the link

        auth = self.auth
        if auth.endpoints.mode != "local":
            raise UserError(
                "Signing in as a demo user works only in local mode.",
                hint="In Azure mode complete the device-code page in a browser.",
            )
        user = auth.endpoints.demo_user(username)
        handle = self.begin_device_flow()
        try:
            with http_session(auth.endpoints) as browser:  # the page's MFA step only when it asks for one
                number = device_page.complete_device_page(
                    browser, handle.verification_uri, handle.user_code, user.username, mfa="if_asked"
                )
            info = handle.result(timeout)
            if number is not None:  # visibly: the shortcut did the second step a person would do
                message = (
                    f"the sign-in page asked for multi-factor authentication; confirmed number {number:02d}"
                )
                self.bus.publish(Notice(message=message, source="auth", account=info.username))
            return info
        finally:
            if not handle.done():
                handle.cancel()

    def _signed_in(self, account: SignedInAccount) -> AccountInfo:
        """A device flow completed: that account gets (or keeps) its session and becomes current."""
        token = self.auth.acquire_token(account)
        session = self._session_for(account)
        session.set_user_claims(token.claims())
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
        self._close_runner(session)
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

    def send_sync(self, text: str, timeout: float | None = None) -> TurnOutcome:
        """``submit`` and wait for the outcome (headless commands, tests)."""
        return self.submit(text).result(timeout)

    def submit(self, text: str) -> concurrent.futures.Future[TurnOutcome]:
        """Start one turn as the current account and return at once; events stream on the bus tagged with the
        account, and the future completes once the turn has ended. UserError: empty text, nobody signed in, or a
        turn still running for this account."""
        text = text.strip()
        if not text:
            raise UserError("Nothing to send: type a message first.")
        session = self._current_session()
        assert session is not None
        if self._loop is None:
            raise UserError("The console has not started yet.")
        return session.begin_turn(text, self._loop, self._runner_for)

    def stop_turn(self) -> bool:
        """Stop the current account's running turn (True if one was running). Its partial answer is dropped;
        the conversation stays as it was before the turn."""
        session = self._current_session(required=False)
        if session is None or self._loop is None:
            return False
        return session.stop_turn(self._loop)

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
        runner = session.runner
        if runner is not None:
            self._on_loop(runner.reset)
        session_id = session.start_new_conversation(self.main_agent)
        self.bus.publish(Notice(message="conversation reset", source="workspace", account=session.username))
        return session_id

    def sessions(self) -> list[SessionSummary]:
        """The current account's saved conversations, the most recently active first (no other account's)."""
        session = self._current_session(required=False)
        return session.saved_sessions() if session is not None else []

    def current_session_id(self) -> str | None:
        session = self._current_session(required=False)
        return session.current_session_id() if session is not None else None

    def resume_session(self, session_id: str) -> SessionSummary:
        """Continue a saved conversation of the current account: its messages come back (cut-off answers marked
        interrupted) and the model receives its user and assistant messages from the next turn on."""
        session = self._current_session()
        assert session is not None
        session.require_saved(session_id)  # an id this account does not have is refused before any turn stops
        self._finish_turn(session)
        loaded = session.resume(session_id)
        if self._loop is not None:
            session.continue_on_runner(loaded, self._loop)
        title = loaded.summary.title or "untitled"
        self.bus.publish(
            Notice(message=f"conversation resumed: {title}", source="workspace", account=session.username)
        )
        return loaded.summary

    def export(self, path_dir: str | Path | None = None) -> tuple[Path, Path]:
        """Write the current conversation as Markdown (messages, decoded claims masked, events) and its trace as
        JSON lines; both 0600, in ``path_dir`` or ``<data dir>/exports``. Returns (markdown, trace)."""
        session = self._current_session()
        assert session is not None
        return session.export(Path(path_dir).expanduser() if path_dir is not None else None)

    def _finish_turn(self, session: AccountSession) -> None:
        """Stop the account's running turn and wait until it has ended (its TurnEnded recorded in the conversation
        it was part of); UserError, changing nothing, when it does not end within ``turn_stop_timeout``."""
        if self._loop is not None:
            session.finish_turn(self._loop, self.turn_stop_timeout)

    def back_to_main(self) -> None:
        """Return the current account's conversation to the main agent."""
        session = self._current_session()
        assert session is not None
        runner = session.runner
        if runner is not None:
            self._on_loop(runner.back_to_main)  # publishes its own notice on the session's bus
        session.forget_handoffs()

    @property
    def main_agent(self) -> str | None:
        """The main agent's config key (the one a fresh conversation starts with)."""
        return main_agent_key(self._configs, self._main_agent)

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
            session.forget_handoffs()
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
        return agent_info(self.configs_live, self.settings, key)

    def handoff_chain(self) -> list[str]:
        """Agent names from the main agent to the active one, through the handoffs that led there."""
        main_key = self.main_agent
        main = self.agent_info(main_key) if main_key else None
        if main is None:
            return []
        session = self._current_session(required=False)
        return handoff_chain(main.name, list(session.handoff_chain) if session else [])

    def configs(self) -> list[ConfigInfo]:
        return config_infos(self._configs)

    # -- what the panes show --------------------------------------------------------------------------------

    def user_claims(self, *, refresh: bool = False) -> Claims | None:
        """The current account's access-token claims (decoded, never the token). No I/O unless ``refresh``:
        they are updated at sign-in and whenever a turn fetches a fresh token."""
        session = self._current_session(required=False)
        if session is None:
            return None
        if refresh and self._auth is not None:
            try:
                session.set_user_claims(self._auth.acquire_token(session.account).claims())
            except UserError as exc:  # the claims shown stay those of the last token
                log.info("%s: could not refresh the access token's claims: %s", session.username, exc.message)
        return dict(session.user_claims) if session.user_claims else None

    def obo_claims(self) -> Claims | None:
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

    def subscribe_server_log(self, callback: Callable[[str], None]) -> Callable[[], None]:
        """Each line the launched server prints (the buffered ones first), from the reader's thread."""
        return self.link.subscribe_log(lambda line: callback(line.text))

    # -- turns (on the workspace loop) ----------------------------------------------------------------------

    def _on_loop(self, fn: Callable[[], object]) -> None:
        """Run ``fn`` on the workspace loop (where runners live) and wait for it."""
        if self._loop is None:
            fn()
            return
        self._loop.run(fn)

    async def _runner_for(self, session: AccountSession) -> AgentRunner:
        """The account's runner for the server the link accepted, rebuilt (history kept) when the server moved
        or the main agent changed."""
        url = self.link.mcp_url
        status = self.link.status
        if not status.accepts_turns or url is None:
            raise UserError(
                f"The MCP server is not available ({status.describe()}).",
                hint="The console reconnects by itself; try again in a moment.",
            )
        main, verify = self.main_agent, self.link.tls_verify
        configs, auth = self.configs_live, self.auth
        return await session.use_runner(
            url,
            main,
            lambda: session.new_runner(self.settings, configs, auth, url=url, verify=verify, main=main),
        )

    def _close_runner(self, session: AccountSession) -> None:
        """Stop the account's turn and close its MCP connection (sign-out, exit)."""
        if self._loop is None:
            return
        try:
            self._loop.submit(session.close_runner()).result(RUNNER_CLOSE_WAIT)
        except TimeoutError:
            log.warning(
                "%s: the agent runner did not close within %.0f s", session.username, RUNNER_CLOSE_WAIT
            )
        except Exception:  # closing goes on for the other accounts and the server link
            log.exception("%s: closing the agent runner", session.username)

    def _on_link_status(self, status: LinkStatus) -> None:
        # Nothing to rebuild here: a runner whose URL changed reconnects on its next turn (_runner_for);
        # the conversation lives in the session and the runner, so a restart of the server loses nothing.
        if status.accepts_turns and self._current is not None:
            session = self._current_session(required=False)
            if session is not None and session.runner_url and session.runner_url != status.url:
                self.bus.publish(
                    Notice(
                        message=f"the MCP server moved to {status.url}; reconnecting on the next turn",
                        source="workspace",
                        account=session.username,
                    )
                )
