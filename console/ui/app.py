"""The OBO Console Textual app.

Start-up is fast on purpose: this module imports only textual and light modules. The core (agents, fastmcp,
msal, azure) is imported after the first frame, in a thread, by the workspace factory; until then the screen is
already usable (help, themes, quit) and the status line says the console is starting.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping
from concurrent.futures import Future, InvalidStateError
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING

from textual import work
from textual.app import App, SystemCommand
from textual.css.query import NoMatches
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer

from console.core.clock import Clock, SystemClock
from console.core.events import Event
from console.core.heap import HeapSettler
from console.core.link_state import LinkState
from console.core.workspace_views import AccountInfo
from console.ui import bindings, commands
from console.ui.protocols import ScenarioControl, WorkspaceLike
from console.ui.screens.main import BusEvent, MainScreen, ServerLogLine
from console.ui.screens.sign_in import SignInScreen
from console.ui.screens.trust import TrustScreen
from console.ui.widgets.claims_pane import ClaimsPane
from console.ui.widgets.events_pane import EventsPane
from console.ui.widgets.status_bar import StatusBar
from mcp_server.errors import UserError

if TYPE_CHECKING:
    from console.core.mcp_trust import TrustRequest

WorkspaceFactory = Callable[[], WorkspaceLike]
HEAP_SETTLE_DELAY = 0.5  # seconds after a turn before its full collection: the answer is drawn by then


class TrustAsked(Message):
    """The core asks (from its thread) whether a --connect origin may receive the token; ``answer`` gets it."""

    def __init__(self, request: TrustRequest, answer: Future[bool | None]) -> None:
        super().__init__()
        self.request = request
        self.answer = answer


class OboConsoleApp(App[int]):
    TITLE = "OBO Console"
    CSS_PATH = "app.tcss"
    COMMANDS = App.COMMANDS | {
        commands.ActionCommands,
        commands.AccountCommands,
        commands.ConfigCommands,
        commands.SessionCommands,
        commands.ScenarioCommands,
    }
    BINDINGS = bindings.APP

    def __init__(
        self,
        *,
        workspace: WorkspaceLike | None = None,
        workspace_factory: WorkspaceFactory | None = None,
        clock: Clock | None = None,
        keymap: dict[str, str] | None = None,
        start_workspace: bool = True,
        settle_heap: bool = False,
    ) -> None:
        """``settle_heap``: freeze the long-lived heap once started (``console.core.heap``), as ``obo-console``
        does; off by default, for test processes that run many apps."""
        super().__init__()
        self.heap = HeapSettler(enabled=settle_heap)
        self._heap_timer: Timer | None = None
        self.workspace: WorkspaceLike | None = None
        self._given_workspace = workspace
        self._factory = workspace_factory
        self.clock: Clock = clock or (workspace.clock if workspace is not None else SystemClock())
        self._start_workspace = start_workspace
        self._unsubscribe: Callable[[], None] | None = None
        self._log_hint_shown = False
        self._log_follow: Callable[[], object] | None = None
        self.startup_error: str | None = None
        self._trust_answers: set[Future[bool | None]] = set()  # questions the core waits on (None on exit)
        self._trust_lock = threading.Lock()
        self.user_keymap: dict[str, str] = {}  # binding id → keys, as given (the help screen shows them)
        if keymap:
            self.set_keymap(keymap)

    def set_keymap(self, keymap: Mapping[str, str]) -> None:
        super().set_keymap(keymap)
        self.user_keymap = dict(keymap)

    def update_keymap(self, keymap: Mapping[str, str]) -> None:
        super().update_keymap(keymap)
        self.user_keymap = {**self.user_keymap, **keymap}

    async def on_mount(self) -> None:
        self._main = MainScreen()
        await self.push_screen(self._main)
        self.set_interval(1.0, self.refresh_status, name="status-tick")
        if self._given_workspace is not None:
            await self.attach(self._given_workspace)
        self.refresh_status()

    def on_ready(self) -> None:
        """Ready comes before the first frame is written: once it is on screen (with light stand-ins for the
        prompt and the footer), mount the real prompt and footer, then the tables, then import and start the heavy
        core (in a thread, but it holds the GIL for most of a second, so it waits for the UI)."""
        self.call_after_refresh(self._build_essentials)

    async def _build_essentials(self) -> None:
        try:
            await self._main.build_panes(essentials_only=True)
        except NoMatches:
            if not self._quitting():
                raise
            return  # quit before the UI was complete (e.g. ctrl+q in the first frame)
        self.call_after_refresh(self._build_rest)

    async def _build_rest(self) -> None:
        try:
            await self._main.build_tables()
        except NoMatches:
            if not self._quitting():
                raise
            return
        if self._given_workspace is None and self._factory is not None and self.workspace is None:
            self._load_workspace()

    def _quitting(self) -> bool:
        """Whether the app is exiting: ``exit()`` sets a return code; shutting down stops it running."""
        return self.return_code is not None or not self.is_running

    @property
    def main_screen(self) -> MainScreen:
        return self._main

    # ---- the workspace
    @work(thread=True, group="workspace", exit_on_error=False)
    def _load_workspace(self) -> None:
        assert self._factory is not None
        try:
            workspace = self._factory()
        except Exception as exc:  # shown on screen; the console stays usable
            self.call_from_thread(self._startup_failed, exc)
            return
        # Typed "None or awaitable" so mypy can solve call_from_thread's result (from a coroutine alone it cannot).
        attach: Callable[[WorkspaceLike], Awaitable[None] | None] = self.attach
        self.call_from_thread(attach, workspace)

    def _startup_failed(self, exc: BaseException) -> None:
        self.startup_error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        self.notify(str(exc), title="Could not start the console core", severity="error", timeout=30)
        self.refresh_status()

    async def attach(self, workspace: WorkspaceLike) -> None:
        """Bind the UI to a workspace: subscribe to its bus, then start it (server link, silent sign-in)."""
        await self.main_screen.build_panes()
        self.workspace = workspace
        self.clock = workspace.clock
        self.main_screen.query_one(ClaimsPane).clock = workspace.clock
        self._unsubscribe = workspace.bus.subscribe(self._deliver)

        def follow(
            text: str,
        ) -> None:  # pushed line by line from the reader's thread (a bounded tail: no polling)
            self._main.post_message(ServerLogLine(text))

        self._log_follow = workspace.subscribe_server_log(follow)
        self.main_screen.refresh_from_workspace()
        workspace.set_trust_prompt(self.confirm_trust)
        if self._start_workspace:
            self._start()

    def confirm_trust(self, request: TrustRequest) -> bool | None:
        """Ask the person whether ``request.origin`` may receive their token (the core calls this from its own
        thread and waits). None (no answer: nothing sent, nothing remembered) if the console closes first."""
        answer: Future[bool | None] = Future()
        with self._trust_lock:
            self._trust_answers.add(answer)
        if self._quitting() or not self.post_message(TrustAsked(request, answer)):
            self._settle_trust_answers()
        try:
            return answer.result()
        finally:
            with self._trust_lock:
                self._trust_answers.discard(answer)

    def on_trust_asked(self, message: TrustAsked) -> None:
        self.push_screen(TrustScreen(message.request, message.answer))

    def _settle_trust_answers(self) -> None:
        with self._trust_lock:
            pending, self._trust_answers = self._trust_answers, set()
        for answer in pending:
            with contextlib.suppress(InvalidStateError):  # answered meanwhile
                answer.set_result(None)

    def on_unmount(self) -> None:
        self._settle_trust_answers()

    def _deliver(self, event: Event) -> None:
        # Called in the publisher's thread; post_message is thread-safe.
        self._main.post_message(BusEvent(event))

    @work(group="workspace", exit_on_error=False)
    async def _start(self) -> None:
        workspace = self.workspace
        assert workspace is not None
        try:
            await asyncio.to_thread(workspace.start)
        except Exception as exc:  # e.g. the server could not be launched; shown, not fatal
            self.startup_error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self.notify(str(exc), title="Start-up problem", severity="error", timeout=30)
            self.refresh_status()
            return
        self.heap.core_started()
        await self.main_screen.rebuild_for_account()
        if workspace.current_account is None:
            self.action_sign_in()

    def turn_finished(self) -> None:
        """Half a second after a turn, once its answer is drawn and no turn runs: a full collection (the first time,
        collect and freeze the heap). A pause of tens of milliseconds between turns rather than inside one; turns in
        quick succession share one. Before it, the panes forget what they drew for nobody (``MainScreen.forget_drawn``),
        also when the heap is not settled."""
        if self._heap_timer is not None:
            self._heap_timer.stop()
        self._heap_timer = self.set_timer(HEAP_SETTLE_DELAY, self._settle_heap, name="heap-settle")

    def _settle_heap(self) -> None:
        if self.main_screen.turn_running:
            self._heap_timer = self.set_timer(HEAP_SETTLE_DELAY, self._settle_heap, name="heap-settle")
            return
        self._heap_timer = None
        self.main_screen.forget_drawn()  # before the collection, so that it frees what they held
        self.heap.between_turns()

    def refresh_status(self) -> None:
        try:
            bar = self.main_screen.query_one(StatusBar)
        except Exception:  # not mounted yet
            return
        bar.clock_text = self.clock.now().astimezone(UTC).strftime("%H:%M:%S UTC")
        workspace = self.workspace
        if workspace is None:
            bar.server_state = LinkState.DOWN if self.startup_error else LinkState.CONNECTING
            bar.server_detail = self.startup_error or "loading the console core…"
            return
        bar.mode = workspace.mode
        account = workspace.current_account
        bar.account = f"{account.name} <{account.username}>" if account else ""
        status = workspace.server_status()
        bar.server_state = status.state
        bar.server_url = status.url or ""
        # The core's own wording (with the retry countdown, or the parts not ready) unless all is well.
        bar.server_detail = status.detail if status.ready else status.describe()
        bar.server_launched = status.launched
        bar.main_agent = workspace.main_agent or ""
        events = self.main_screen.query_one(EventsPane)
        if not status.launched and not self._log_hint_shown and events.built:
            self._log_hint_shown = True
            events.write_server_log(["(the console did not launch this server: its log is where it runs)"])

    # ---- actions
    async def action_quit(self) -> None:
        await self.shutdown_workspace()
        self.exit(0)

    async def shutdown_workspace(self) -> None:
        self._settle_trust_answers()  # a start-up still waiting for the person's answer: refused, nothing sent
        workspace, self.workspace = self.workspace, None
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._log_follow is not None:
            self._log_follow()
            self._log_follow = None
        if workspace is not None:
            try:
                await asyncio.to_thread(workspace.close)
            except Exception as exc:  # quitting anyway
                self.log.error(f"closing the workspace: {exc}")

    def action_help(self) -> None:
        from console.ui.screens.help import HelpScreen  # deferred: a DataTable, past the first frame

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.user_keymap))

    def action_presenter(self) -> None:
        """The presenter view: the flow as numbered steps, debug detail hidden."""
        # deferred: markdown-it, past the first frame
        from console.ui.screens.presenter import PresenterScreen

        if isinstance(self.screen, PresenterScreen):
            self.pop_screen()  # the same key toggles back to the console
        else:
            self.push_screen(PresenterScreen(lambda: self.workspace))

    def action_sign_in(self) -> None:
        if self.workspace is None:
            self.notify("The console is still starting.", severity="warning")
            return
        if not isinstance(self.screen, SignInScreen):
            self.push_screen(SignInScreen(self.workspace, self.clock), callback=self._signed_in)

    async def _signed_in(self, account: AccountInfo | None) -> None:
        if account is not None:
            await self.main_screen.rebuild_for_account()
            self.notify(f"Signed in as {account.name} <{account.username}>.")

    async def action_switch_account(self, username: str | None = None) -> None:
        workspace = self.workspace
        if workspace is None:
            return
        accounts = [a.username for a in workspace.accounts()]
        current = workspace.current_account.username if workspace.current_account else None
        if username is None:
            others = [a for a in accounts if a != current]
            if not others:
                self.notify("No other account: sign in with another user (F2).")
                return
            index = (accounts.index(current) + 1) % len(accounts) if current in accounts else 0
            username = accounts[index]
        await asyncio.to_thread(workspace.switch_account, username)
        await self.main_screen.rebuild_for_account()
        self.notify(f"Switched to {username}.")

    async def action_sign_out(self) -> None:
        workspace = self.workspace
        if workspace is None or workspace.current_account is None:
            self.notify("Not signed in.")
            return
        who = workspace.current_account.username
        await asyncio.to_thread(workspace.sign_out)
        await self.main_screen.rebuild_for_account()
        self.notify(f"Signed out {who}.")

    def scenario_control(self) -> ScenarioControl:
        """The running local stack's scenarios; UserError outside local mode or without a stack. Blocks (reads
        the state file): call it off the loop."""
        from console.core.scenario_client import ScenarioClient  # deferred: httpx2, only when asked for
        from console.core.settings import load_settings  # deferred: as above

        return ScenarioClient.from_settings(load_settings())

    async def action_scenarios(self) -> None:
        """The local stack's scenarios (F9): apply one, reset."""
        # deferred: a DataTable, past the first frame
        from console.ui.screens.scenarios import ScenariosScreen

        if isinstance(self.screen, ScenariosScreen):
            return
        try:
            control = await asyncio.to_thread(self.scenario_control)
        except UserError as exc:
            self.notify(exc.message, severity="error")
            return
        self.push_screen(ScenariosScreen(control))

    async def apply_scenario(self, name: str | None) -> None:
        """Apply scenario ``name`` (None: reset), from the command palette."""
        try:
            control = await asyncio.to_thread(self.scenario_control)
            if name is None:
                status = await asyncio.to_thread(control.reset)
                self.notify(f"Scenario {status.reset} reset." if status.reset else "No scenario was active.")
                return
            await asyncio.to_thread(control.apply, name)
        except UserError as exc:
            self.notify(exc.message, severity="error")
            return
        self.notify(
            f"Scenario {name} applied: ask again to see the break (F7: presenter).", severity="warning"
        )

    def action_configs(self) -> None:
        from console.ui.screens.configs import ConfigsScreen  # deferred: a DataTable, past the first frame

        if self.workspace is None:
            self.notify("The console is still starting.", severity="warning")
            return
        if not isinstance(self.screen, ConfigsScreen):
            self.push_screen(ConfigsScreen(self.workspace, self.use_main_agent))

    async def use_main_agent(self, key: str) -> None:
        workspace = self.workspace
        if workspace is None:
            return
        try:
            await asyncio.to_thread(workspace.set_main_agent, key)
        except Exception as exc:  # e.g. an invalid config: say why
            self.notify(str(exc), title=f"Cannot use {key}", severity="error")
            return
        self.main_screen.refresh_agent()
        self.refresh_status()
        self.notify(f"{key} is the main agent from the next turn.")

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Keys and actions", "Every binding with its id (remappable)", self.action_help)


def load_keymap(path: Path) -> dict[str, str]:
    """A user keymap file: ``{"binding id": "keys"}`` (e.g. ``{"chat.reset": "ctrl+r"}``)."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise ValueError(
            f'{path} must be a JSON object of binding id → keys, e.g. {{"chat.reset": "ctrl+r"}}'
        )
    return data
