"""One signed-in account: its conversation and runner, MCP connection, claims, search results and events.

The runner publishes on the session's own bus; the session records each event in the account's session database,
tags it with the account and forwards it to the console's bus. Every change of the session's state is a method
here, so the workspace never reaches into it. Turns run on the workspace loop (``LoopThread``); the other methods
may be called from any thread (state is guarded by one lock).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
import sqlite3
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from pydantic import SecretStr

from console.core.describe import step_up_notice
from console.core.events import (
    Event,
    EventBus,
    HandoffOccurred,
    Notice,
    SearchResults,
    StepUp,
    TextDelta,
    TurnEnded,
)
from console.core.export import export_session
from console.core.sessions import LoadedSession, SessionStore, SessionSummary, writes_message
from console.core.workspace_views import AccountInfo, ChatEntry, Role, TurnOutcome
from mcp_server.errors import UserError

if TYPE_CHECKING:
    from agents.items import TResponseInputItem

    from console.core.agents.runner import AgentRunner, TurnResult
    from console.core.auth.accounts import SignedInAccount
    from console.core.auth.manager import AuthManager
    from console.core.clock import Clock
    from console.core.configs.live import LiveConfigs
    from console.core.loop_thread import LoopThread
    from console.core.settings import Settings
    from console.core.step_up_flow import StepUpSignIn

# Per account, the answers' text fragments left out (the answer holds their text): as many as the events pane shows
# (console.ui.widgets.events_pane.MAX_EVENTS); older ones drop off, and stay in the saved conversation.
EVENTS_KEPT = 500
RUNNER_CLOSE_TIMEOUT = (
    5.0  # seconds for a runner's MCP connection to close before it is told to clean up alone
)

log = logging.getLogger(__name__)

RunnerFor = Callable[["AccountSession"], Awaitable["AgentRunner"]]


class AccountSession:
    """Everything one account has: its conversation and runner, MCP connection, claims, results and events."""

    def __init__(
        self, account: SignedInAccount, *, bus: EventBus, clock: Clock, main_agent: str | None
    ) -> None:
        """``bus``: the console's bus, where this account's events go (tagged); ``main_agent``: the agent a new
        saved conversation starts with."""
        self.account = account
        self.info = AccountInfo(account.username, account.name, account.oid, account.tenant_id)
        self.username = account.username
        self.bus = EventBus()  # the runner publishes here
        self._console_bus = bus
        self._clock = clock
        self._lock = threading.RLock()
        self._events: deque[Event] = deque(maxlen=EVENTS_KEPT)
        self._history: list[ChatEntry] = []
        self.last_search: SearchResults | None = None
        self.obo_claims: dict[str, Any] | None = None
        self.user_claims: dict[str, Any] | None = None
        self.handoff_chain: list[str] = []
        self.active_agent_name: str | None = None
        self.runner: AgentRunner | None = None  # built on the first turn, on the workspace loop
        self.step_up_sign_in: StepUpSignIn | None = (
            None  # how a claims challenge is answered (the workspace's)
        )
        self.runner_url: str | None = None  # the MCP URL the runner's connection was built for
        # A resumed conversation's agent input (user and assistant messages), given to the runner when it is built.
        self._pending_input: list[dict[str, Any]] | None = None
        self._task: asyncio.Task[Any] | None = None  # the running turn, on the workspace loop
        self._idle = (
            threading.Event()
        )  # set while no turn runs (cleared when one is submitted, set once it ended)
        self._idle.set()
        self._stop_requested = False
        self.store: SessionStore | None = None
        self._store_failed = False
        self._open_store(main_agent)
        self._unsubscribe = self.bus.subscribe(self._on_event)

    # -- the saved conversation ---------------------------------------------------------------------------------

    def _open_store(self, main_agent: str | None) -> None:
        """Open this account's session database; resume its latest conversation, or start one."""
        try:
            store = SessionStore(self.account)
            latest = store.latest()
            if latest is not None:
                self.load(store.resume(latest.id), store)
            else:
                store.new_session(main_agent)
        except (sqlite3.Error, OSError) as exc:
            self._store_broken(exc)
            return
        self.store = store

    def load(self, loaded: LoadedSession, store: SessionStore) -> None:
        """Show a saved conversation: its messages (cut-off answers marked) and, from the next turn, the model
        continues it. Results and events of the conversation shown before are dropped."""
        obo = _last_obo_claims(store, loaded.summary.id)
        with self._lock:
            self._history[:] = [
                ChatEntry(
                    Role(m.role), m.text, m.agent, m.ts, m.turn_id, error=m.error, interrupted=not m.complete
                )
                for m in loaded.messages
            ]
            self._events.clear()
            self.last_search = None
            self.obo_claims = obo
            self.handoff_chain.clear()
            self.active_agent_name = None
            self._pending_input = list(loaded.input_list)

    def saved_store(self) -> SessionStore:
        """The account's session database; a UserError when it could not be opened."""
        if self.store is None:
            raise UserError(
                f"Conversations of {self.username} are not being saved (see the log).",
                hint="Check that the data directory is writable, then restart the console.",
            )
        return self.store

    def saved_sessions(self) -> list[SessionSummary]:
        return self.store.list_sessions() if self.store is not None else []

    def current_session_id(self) -> str | None:
        return self.store.current_id if self.store is not None else None

    def start_new_conversation(self, main_agent: str | None) -> str | None:
        """Empty the screen, the model's history, results and events, and begin a new saved session (the previous
        one stays saved). Call ``finish_turn`` first. Returns the new session's id (None when not saving)."""
        with self._lock:
            self._history.clear()
            self._events.clear()
            self.last_search = None
            self.obo_claims = None
            self.handoff_chain.clear()
            self.active_agent_name = None
            self._pending_input = None
        if self.store is None:
            return None
        try:
            return self.store.new_session(main_agent)
        except (sqlite3.Error, RuntimeError) as exc:
            self._store_broken(exc)
            return None

    def resume(self, session_id: str) -> LoadedSession:
        """Show a saved conversation of this account (``finish_turn`` first); the model continues it from the next
        turn. UserError for an id this account does not have."""
        store = self.require_saved(session_id)
        loaded = store.resume(session_id)
        self.load(loaded, store)
        return loaded

    def require_saved(self, session_id: str) -> SessionStore:
        """The store holding saved conversation ``session_id`` of this account; UserError when it has none such."""
        store = self.saved_store()
        if session_id not in {s.id for s in store.list_sessions()}:
            raise UserError(
                f"There is no saved conversation {session_id!r} for {self.username}.",
                hint="Pick one from the list of saved conversations (Workspace.sessions()).",
            )
        return store

    def export(self, target: Path | None) -> tuple[Path, Path]:
        """Write the shown conversation as Markdown and its trace as JSON lines, in ``target`` (a folder made 0700
        if missing) or ``<data dir>/exports``. Returns (markdown, trace)."""

        store = self.saved_store()
        try:
            store.flush_partial()  # an answer still streaming is exported as far as it got, marked interrupted
            if target is not None:
                target.mkdir(parents=True, exist_ok=True, mode=0o700)
            session_id = store.current_id
            assert session_id is not None  # a store is opened on a resumed or a new session
            paths = export_session(
                store, session_id, target, user_claims=self.user_claims, obo_claims=self.obo_claims
            )
        except OSError as exc:
            raise UserError(
                f"Could not write the export to {target or 'the exports folder'}: {exc.strerror or exc}.",
                hint="Choose a folder you can write to.",
            ) from exc
        return paths.markdown, paths.trace

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
        log.warning("%s: the session database failed: %s: %s", self.username, type(exc).__name__, exc)
        self._console_bus.publish(
            Notice(
                level="warning",
                source="sessions",
                account=self.username,
                message=f"this conversation is not being saved ({type(exc).__name__}: {exc}); it lives on until the "
                "console exits",
            )
        )

    # -- events and what the panes read ---------------------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        if event.account != self.username:
            event = dataclasses.replace(event, account=self.username)
        with self._lock:
            if not isinstance(event, TextDelta):
                self._events.append(event)
            if isinstance(event, SearchResults):
                self.last_search = event
                if event.obo_claims:
                    self.obo_claims = dict(event.obo_claims)
            elif isinstance(event, HandoffOccurred):
                self.handoff_chain.append(event.to_agent)
                self.active_agent_name = event.to_agent
            elif isinstance(event, TurnEnded):
                self._turn_ended(event)
            elif isinstance(event, StepUp) and (notice := step_up_notice(event)):  # the person must act
                failed = not event.url
                self._history.append(ChatEntry(Role.NOTICE, notice, None, self._clock.time(), error=failed))
        # A message (the question, the answer as it streams, an error) is committed before any view sees it: a kill
        # loses no completed message. Every other event reaches the views first and is saved right after.
        if writes_message(event):
            self._record(event)
            self._console_bus.publish(event)
        else:
            self._console_bus.publish(event)
            self._record(event)

    def _turn_ended(self, event: TurnEnded) -> None:
        if event.last_agent:
            self.active_agent_name = event.last_agent
        now = self._clock.time()  # the injectable clock, so snapshot tests see fixed times
        if event.error:
            self._history.append(
                ChatEntry(Role.NOTICE, event.error, event.last_agent, now, event.turn_id, error=True)
            )
        elif event.output:
            self._history.append(
                ChatEntry(Role.ASSISTANT, event.output, event.last_agent, now, event.turn_id)
            )

    def snapshot_events(self) -> list[Event]:
        with self._lock:
            return list(self._events)

    def snapshot_history(self) -> list[ChatEntry]:
        with self._lock:
            return list(self._history)

    def set_user_claims(self, claims: dict[str, Any]) -> None:
        """The claims of the account's latest access token (decoded, never the token)."""
        self.user_claims = dict(claims)

    def forget_handoffs(self) -> None:
        """Back at the main agent: the chain of handoffs starts over."""
        with self._lock:
            self.handoff_chain.clear()
            self.active_agent_name = None

    # -- turns ---------------------------------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return not self._idle.is_set()

    def begin_turn(
        self, text: str, loop: LoopThread, runner_for: RunnerFor
    ) -> concurrent.futures.Future[TurnOutcome]:
        """Show the question and run the turn on ``loop``; UserError when one is still running for this account."""
        with self._lock:
            if self.busy:
                raise UserError(
                    "A turn is still running for this account.", hint="Wait for it, or stop it first."
                )
            self._idle.clear()
            self._stop_requested = False
            self._history.append(ChatEntry(Role.USER, text, None, self._clock.time()))
        try:
            running = loop.submit(self._run_turn(text, runner_for))
        except RuntimeError:  # the loop closed (the console is shutting down)
            self._idle.set()
            raise
        # ``running`` is nobody else's: it completes only once the task has ended (its TurnEnded recorded), so then
        # the account is idle. Callers get their own future; cancelling it stops the turn.
        outcome: concurrent.futures.Future[TurnOutcome] = concurrent.futures.Future()
        running.add_done_callback(lambda done: self._turn_done(done, outcome))
        outcome.add_done_callback(lambda mine: self.stop_turn(loop) if mine.cancelled() else None)
        return outcome

    def _turn_done(
        self, done: concurrent.futures.Future[TurnOutcome], outcome: concurrent.futures.Future[TurnOutcome]
    ) -> None:
        self._idle.set()
        if not outcome.set_running_or_notify_cancel():
            return  # its waiter cancelled it: nobody wants the outcome
        if done.cancelled():
            outcome.set_result(TurnOutcome(output="", agent=None, error="cancelled", cancelled=True))
        elif (error := done.exception()) is not None:
            outcome.set_exception(error)
        else:
            outcome.set_result(done.result())

    async def _run_turn(self, text: str, runner_for: RunnerFor) -> TurnOutcome:
        self._task = asyncio.current_task()
        try:
            if self._stop_requested:  # stopped before it started
                return TurnOutcome(output="", agent=None, error="cancelled", cancelled=True)
            try:
                runner = await runner_for(self)
            except UserError as exc:  # no turn started: say why in this account's chat
                self._turn_not_started(text, exc)
                return TurnOutcome(output="", agent=None, error=exc.message)
            except asyncio.CancelledError:
                return TurnOutcome(output="", agent=None, error="cancelled", cancelled=True)
            try:
                result = await runner.run_turn(
                    text
                )  # publishes TurnStarted ... TurnEnded on the session's bus
                if result.step_up is not None:  # Conditional Access: sign in again, then retry once
                    result = await self._step_up(runner, text, result)
            except UserError as exc:
                return TurnOutcome(output="", agent=None, error=exc.message)
            except asyncio.CancelledError:
                return TurnOutcome(output="", agent=None, error="cancelled", cancelled=True)
            return TurnOutcome(
                output=result.output, agent=result.agent_name, error=result.error, cancelled=result.cancelled
            )
        finally:
            self._task = None

    async def _step_up(self, runner: AgentRunner, text: str, result: TurnResult) -> TurnResult:
        from console.core.step_up_flow import run_step_up  # deferred: only a challenged turn needs it

        final, claims = await run_step_up(
            bus=self.bus,
            account=self.account,
            claims_before=self.user_claims,
            sign_in=self.step_up_sign_in,
            runner=runner,
            text=text,
            result=result,
        )
        if claims is not None:
            self.set_user_claims(claims)
        return final

    def _turn_not_started(self, text: str, exc: UserError) -> None:
        if self.store is not None:  # the runner never saw the message: save it here
            try:
                self.store.append_message("user", text)
            except (sqlite3.Error, RuntimeError) as failure:
                self._store_broken(failure)
        self.bus.publish(Notice(level="error", message=exc.message, source="workspace"))
        with self._lock:
            self._history.append(ChatEntry(Role.NOTICE, str(exc), None, self._clock.time(), error=True))

    def stop_turn(self, loop: LoopThread) -> bool:
        """Ask the running turn to stop (True if one was running); it ends on the loop shortly after."""
        if not self.busy:
            return False
        self._stop_requested = True  # seen by a turn that has not started yet
        runner, task = self.runner, self._task
        if runner is not None and runner.running:
            loop.call(runner.cancel)  # the runner ends the turn cleanly (TurnEnded "cancelled")
        elif task is not None:
            loop.call(task.cancel)  # still connecting / building: nothing to clean up yet
        return True

    def finish_turn(self, loop: LoopThread, timeout: float) -> None:
        """Stop the running turn and wait until it has ended (its TurnEnded recorded in the conversation it was part
        of). UserError, changing nothing, when it has not ended within ``timeout`` seconds."""
        if not self.stop_turn(loop):
            return
        if loop.on_loop():
            raise UserError(
                "A turn is still running for this account and cannot be waited for here.",
                hint="Stop it first, then try again.",
            )
        if not self._idle.wait(timeout):
            raise UserError(
                f"The running turn of {self.username} did not stop within {timeout:g} s; the "
                "conversation was left as it is.",
                hint="Try again in a moment; if it keeps running, restart the console.",
            )

    # -- the runner (on the workspace loop) ------------------------------------------------------------------------

    async def use_runner(self, url: str, main: str | None, build: Callable[[], AgentRunner]) -> AgentRunner:
        """The account's runner for ``url`` and main agent ``main``: the one it has, or a new one built by
        ``build`` (in a thread) carrying the conversation over (or the resumed one's input)."""
        old = self.runner
        if old is not None and self.runner_url == url and old.main_key == main:
            return old
        runner = await asyncio.to_thread(build)
        if self._pending_input is not None:  # a resumed conversation: the model continues it
            runner.history = _as_input(self._pending_input)
            self._pending_input = None
        elif old is not None:
            runner.history = list(old.history)  # the conversation survives a server move or a new main agent
            if old.main_key == runner.main_key and old.active_key in runner.graph.agents:
                runner.active_key = old.active_key
            old.close()
        self.runner, self.runner_url = runner, url
        return runner

    def new_runner(
        self,
        settings: Settings,
        configs: LiveConfigs,
        auth: AuthManager,
        *,
        url: str,
        verify: bool | str,
        main: str | None,
    ) -> AgentRunner:
        """A runner for this account (the agent runtime: heavy, so built in a thread) carrying its own token, only
        ever sent to ``url`` (the server the link found in the state file or settings, or checked for --connect)."""
        from console.core.agents.mcp_link import McpTarget  # deferred: the Agents SDK, after the link
        from console.core.agents.runner import AgentRunner  # deferred: the Agents SDK, after the link

        def token() -> SecretStr:  # asked for shortly before the cached one expires
            fresh = auth.acquire_token(self.account)
            self.set_user_claims(fresh.claims())
            return fresh.token

        return AgentRunner(
            settings=settings,
            configs=configs,
            bus=self.bus,
            account=self.username,
            token_provider=token,
            main_key=main,
            mcp_target=McpTarget(url, verify),
        )

    def continue_on_runner(self, loaded: LoadedSession, loop: LoopThread) -> None:
        """After ``resume``: a runner that exists already continues the resumed conversation from its next turn."""
        runner = self.runner
        if runner is None:
            return

        def continue_it() -> None:
            runner.reset()
            runner.history = _as_input(loaded.input_list)

        loop.run(continue_it)
        self._pending_input = None

    async def close_runner(self) -> None:
        """Stop the turn, close the account's MCP connection, drop the runner (on the workspace loop)."""
        runner, task = self.runner, self._task
        if runner is not None:
            runner.cancel()
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task})  # its outcome goes to whoever submitted the turn
        if runner is not None:
            try:
                await asyncio.wait_for(runner.aclose(), RUNNER_CLOSE_TIMEOUT)  # closes it in its own task
            except Exception as exc:  # a broken connection: at least signal its task to clean up
                log.warning(
                    "%s: closing the MCP connection failed (%s: %s); leaving it to clean up alone",
                    self.username,
                    type(exc).__name__,
                    exc,
                )
                runner.close()
        self.runner = None

    def close(self) -> None:
        self._unsubscribe()
        store, self.store = self.store, None
        if store is not None:
            try:
                store.flush_partial()  # an answer still streaming is kept, marked interrupted
            except (sqlite3.Error, RuntimeError) as exc:
                log.warning("%s: could not keep the answer still streaming: %s", self.username, exc)
            store.close()


def _as_input(saved: list[dict[str, Any]]) -> list[TResponseInputItem]:
    """A saved conversation's agent input (user and assistant messages, as the runner's ``to_input_list`` gave it)."""
    return cast("list[TResponseInputItem]", list(saved))


def _last_obo_claims(store: SessionStore, session_id: str) -> dict[str, Any] | None:
    """The OBO token's claims of the session's last search (decoded claims, as recorded), for export after resume."""
    for event in reversed(store.events(session_id)):
        if event.get("kind") == "search_results" and isinstance(event.get("obo_claims"), dict):
            return dict(event["obo_claims"])
    return None
