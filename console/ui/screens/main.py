"""The main screen: every pane at once on a large terminal, tabs on smaller ones, the status line always."""

from __future__ import annotations

import asyncio
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, cast

from textual import work
from textual.app import ComposeResult
from textual.containers import Container, Horizontal
from textual.events import Resize
from textual.message import Message
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Tab, Tabs

from console.core.describe import amr_text, step_up_notice
from console.core.events import (
    AccountChanged,
    Event,
    HandoffOccurred,
    Notice,
    SearchResults,
    ServerStatusChanged,
    StepUp,
    StepUpStatus,
    TextDelta,
    TurnEnded,
    TurnStarted,
)
from console.core.export_bundle import export_zip
from console.core.link_state import LinkState
from console.core.workspace_views import Claims
from console.ui import bindings
from console.ui.widgets.agent_pane import AgentPane
from console.ui.widgets.chat_pane import ChatPane
from console.ui.widgets.claims_pane import ClaimsPane
from console.ui.widgets.events_pane import EventsPane
from console.ui.widgets.key_hints import KeyHints
from console.ui.widgets.message import Entry
from console.ui.widgets.results_pane import ResultsPane
from console.ui.widgets.staged_pane import StagedPane
from console.ui.widgets.status_bar import StatusBar
from mcp_server.errors import UserError

if TYPE_CHECKING:
    from console.ui.host import ConsoleHost
    from console.ui.protocols import WorkspaceLike
    from console.ui.widgets.prompt_input import PromptInput

PANES = ("chat", "agent", "events", "claims", "results")
# Layouts by terminal size: every pane at once, chat + one pane, or one pane at a time.
WIDE = (140, 36)
MEDIUM_WIDTH = 100
# What a failed turn adds in the chat while the MCP server is away, and the line when it is back.
SERVER_AWAY = (
    "The console keeps trying to reach it by itself: ask again once it is back (a line here will say when)."
)
SERVER_BACK = "✓ The MCP server is back{where}: ask your question again."


class BusEvent(Message):
    """An event from the core's bus, delivered on the UI's loop."""

    def __init__(self, event: Event) -> None:
        super().__init__()
        self.event = event


class ServerLogLine(Message):
    """A line the launched MCP server printed, delivered on the UI's loop."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class MainScreen(Screen):
    CSS_PATH = "main.tcss"
    AUTO_FOCUS = None  # the prompt takes focus once it is mounted (build_panes)
    BINDINGS = bindings.MAIN

    def __init__(self) -> None:
        super().__init__(id="main")
        self.current_pane = "chat"
        self._layout = ""
        self.turn_running = False
        self.last_export: tuple[Path, Path] | None = None
        self._told_server_away: str | None = (
            None  # the account whose chat said a turn failed with the server away
        )
        self._tabs: Tabs | None = None  # the pane tabs, once the layout needs them (_ensure_tabs)

    @property
    def console_app(self) -> ConsoleHost:
        return cast("ConsoleHost", self.app)

    @property
    def workspace(self) -> WorkspaceLike | None:
        return self.console_app.workspace

    def compose(self) -> ComposeResult:
        # The layout classes go on before the panes mount, so the first frame is styled once.
        self._layout = self._layout_for(self.app.size.width, self.app.size.height)
        self.current_pane = "agent" if self._layout == "medium" else "chat"
        self.set_classes({f"-{self._layout}"} | ({"-show-chat"} if self.current_pane == "chat" else set()))
        yield StatusBar(id="status-bar")
        # The keys are on screen from the first frame: a light line of text, replaced by the Footer right after.
        yield KeyHints(self.app, [*self.BINDINGS, *self.app.BINDINGS], id="key-hints")
        with Horizontal(id="body"):
            yield ChatPane(id="chat")
            with Container(id="side"):
                yield ClaimsPane(self.console_app.clock, id="claims")
                yield AgentPane(id="agent")
                yield ResultsPane(id="results")
                yield EventsPane(id="events")

    def on_mount(self) -> None:
        self.show_pane(self.current_pane, focus=False, force=True)
        self.query_one("#prompt-placeholder").focus()  # keys typed before the real prompt mounts are kept

    async def build_panes(self, *, essentials_only: bool = False) -> None:
        """Mount the prompt, the pane tabs and the panes' tables (after the first frame when the console
        starts, so the first screen appears as fast as a minimal app's). Idempotent."""
        if self._layout != "wide":
            await self._ensure_tabs()
        if not self.query(Footer):
            await self.mount(Footer())
            await self.query("#key-hints").remove()
        await self.query_one(ChatPane).build()
        self.show_pane(self.current_pane, focus=False, force=True)
        self.query_one("#prompt").focus()
        if not essentials_only:
            await self.build_tables()

    async def build_tables(self) -> None:
        for pane in self.query(StagedPane):
            await pane.build()

    # ---- layout
    async def on_resize(self, event: Resize) -> None:
        self._apply_layout(event.size.width, event.size.height)
        if self._layout != "wide" and self.query("#prompt"):  # built already: the tabs are needed now
            await self._ensure_tabs()

    @property
    def layout_name(self) -> str:
        return self._layout

    async def _ensure_tabs(self) -> None:
        """The pane tabs of the smaller layouts (not mounted while every pane fits)."""
        if self.query("#pane-tabs"):
            return
        titles = (
            ("chat", "Chat"),
            ("agent", "Agent"),
            ("events", "Events"),
            ("claims", "Claims"),
            ("results", "Results"),
        )
        tabs = Tabs(*(Tab(title, id=f"tab-{key}") for key, title in titles), id="pane-tabs")
        await self.mount(tabs, before="#body")
        self._tabs = tabs
        self.show_pane(self.current_pane, focus=False, force=True)

    @staticmethod
    def _layout_for(width: int, height: int) -> str:
        if width >= WIDE[0] and height >= WIDE[1]:
            return "wide"
        return "medium" if width >= MEDIUM_WIDTH else "narrow"

    def _apply_layout(self, width: int, height: int) -> None:
        name = self._layout_for(width, height)
        if name == self._layout:
            return
        self._layout = name
        pane = "agent" if name == "medium" and self.current_pane == "chat" else self.current_pane
        self.show_pane(pane, focus=False, force=True)

    def show_pane(self, key: str, *, focus: bool = True, force: bool = False) -> None:
        """Make ``key`` the current pane (visible in the tabbed layouts) and optionally focus into it."""
        if key != self.current_pane or force:
            self.current_pane = key
            # One class change on the screen restyles every widget once (the first frame depends on it).
            keep = {c for c in self.classes if c not in ("-wide", "-medium", "-narrow", "-show-chat")}
            wanted = keep | {f"-{self._layout}"} | ({"-show-chat"} if key == "chat" else set())
            if wanted != set(self.classes):
                self.set_classes(wanted)
            for pane in PANES:
                widget = self.query_one(f"#{pane}")
                if widget.has_class("-current") != (pane == key):
                    widget.set_class(pane == key, "-current")
            if self._tabs is not None:
                self._tabs.query_one("#tab-chat").display = self._layout == "narrow"
                if self._tabs.active != f"tab-{key}" and (key != "chat" or self._layout == "narrow"):
                    self._tabs.active = f"tab-{key}"
        if focus:
            self._focus_into(self.query_one(f"#{key}"))

    def _focus_into(self, pane: Widget) -> None:
        if pane.focusable:
            pane.focus()
            return
        for child in pane.query("*"):
            if child.focusable and child.display and child.visible:
                child.focus()
                return

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        if event.tabs.id != "pane-tabs":
            return
        key = (event.tab.id or "tab-chat").removeprefix("tab-")
        if key != self.current_pane:
            self.show_pane(key, focus=False)

    def _step_pane(self, step: int) -> None:
        order = list(PANES)
        focused = self.focused
        current = self.current_pane
        if focused is not None:
            for key in PANES:
                pane = self.query_one(f"#{key}")
                if focused is pane or pane in focused.ancestors:
                    current = key
                    break
        self.show_pane(order[(order.index(current) + step) % len(order)])

    def action_next_pane(self) -> None:
        self._step_pane(1)

    def action_previous_pane(self) -> None:
        self._step_pane(-1)

    # ---- chat
    async def on_prompt_input_submitted(self, event: PromptInput.Submitted) -> None:
        workspace = self.workspace
        chat = self.query_one(ChatPane)
        if workspace is None:
            self.notify("The console is still starting; try again in a moment.", severity="warning")
            return
        if workspace.current_account is None:
            self.notify("Sign in first (F2).", severity="warning")
            return
        if self.turn_running:
            self.notify("A turn is running: wait for it or stop it (esc).", severity="warning")
            return
        # The core starts first: drawing the question overlaps the agents' work instead of delaying it.
        self._run_turn(event.text)
        await chat.add_user(event.text)

    @work(group="turn", exclusive=True, exit_on_error=False)
    async def _run_turn(self, text: str) -> None:
        workspace = self.workspace
        assert workspace is not None
        self._set_running(True)
        try:
            await asyncio.wrap_future(workspace.submit(text))
        except Exception as exc:  # a failed turn is shown, the console keeps going
            await self.query_one(ChatPane).finish_streaming()
            await self.query_one(ChatPane).add_notice(f"⚠ {exc}")
        finally:
            self._set_running(False)
            self.refresh_from_workspace(chat=False)
            self.console_app.turn_finished()

    def forget_drawn(self) -> None:
        """Between turns: the panes forget the lines they drew for nobody (the events table's rows drawn before its
        latest change, messages out of view), so a long session does not grow; they are drawn again when shown."""
        for events in self.query(EventsPane):  # (not mounted yet in a narrow layout)
            events.forget_drawn_rows()
        for chat in self.query(ChatPane):
            chat.forget_drawn_out_of_view()

    def _set_running(self, running: bool) -> None:
        self.turn_running = running
        self.query_one(AgentPane).set_running(running)

    async def action_stop_turn(self) -> None:
        if self.workspace is not None and self.turn_running:
            self.workspace.stop_turn()
            self.notify("Stopping the turn…")

    async def action_reset_conversation(self) -> None:
        if self.workspace is None:
            return
        try:
            await asyncio.to_thread(self.workspace.reset_conversation)  # waits for a stopped turn to end
        except UserError as exc:  # e.g. the running turn did not stop: the conversation stays as it is
            self.notify(
                f"{exc.message} {exc.hint or ''}".strip(),
                title="No new conversation",
                severity="error",
                markup=False,
            )
            return
        await self.query_one(ChatPane).clear()
        self.query_one(EventsPane).clear()
        self.refresh_from_workspace(chat=False)
        self.notify("New conversation (the previous one stays saved: F8).")

    # ---- saved sessions and export
    def action_export(self) -> None:
        if self.workspace is None or self.workspace.current_account is None:
            self.notify("Sign in first (F2): there is no conversation to export.", severity="warning")
            return
        self._export(self.workspace)

    @work(thread=True, group="export", exclusive=True, exit_on_error=False)
    def _export(self, workspace: WorkspaceLike) -> None:
        """Writing the files (SQLite, disk) happens in a worker thread: the UI keeps drawing."""
        try:
            markdown, trace = workspace.export()
        except Exception as exc:  # e.g. an unwritable folder: the UserError says what to do
            hint = (exc.hint or "") if isinstance(exc, UserError) else ""
            self.app.call_from_thread(
                self.notify,
                f"{exc} {hint}".strip(),
                title="Export failed",
                severity="error",
                timeout=20,
                markup=False,
            )
            return
        # In a browser (`obo-console web`) the files are on the server's disk: they are offered as one download.
        bundle = export_zip(Path(markdown), Path(trace)) if self.app.is_web else None
        self.app.call_from_thread(self._exported, Path(markdown), Path(trace), bundle)

    def _exported(self, markdown: Path, trace: Path, bundle: bytes | None = None) -> None:
        self.last_export = (markdown, trace)
        where = f"{markdown}\n{trace}"
        if bundle is not None:
            name = f"{markdown.stem}.zip"
            self.app.deliver_binary(BytesIO(bundle), save_filename=name, mime_type="application/zip")
            where = f"offered as the download {name}\n{where}"
        self.notify(where, title="Conversation exported (claims masked)", timeout=20, markup=False)

    def action_sessions(self) -> None:
        from console.ui.screens.sessions import SessionsScreen  # deferred: a DataTable, past the first frame

        workspace = self.workspace
        if workspace is None or workspace.current_account is None:
            self.notify("Sign in first (F2): saved conversations belong to an account.", severity="warning")
            return
        self.app.push_screen(SessionsScreen(workspace), callback=self._session_chosen)

    async def _session_chosen(self, session_id: str | None) -> None:
        if session_id is not None:
            await self.resume_session(session_id)

    async def resume_session(self, session_id: str) -> None:
        """Bring a saved conversation back on screen; the model continues it from the next turn."""
        workspace = self.workspace
        if workspace is None:
            return
        if self.turn_running:
            self.notify("A turn is running: wait for it or stop it (esc) first.", severity="warning")
            return
        try:
            summary = await asyncio.to_thread(workspace.resume_session, session_id)
        except Exception as exc:  # e.g. an unknown id: say why, keep the current conversation
            self.notify(str(exc), title="Cannot resume", severity="error", markup=False)
            return
        await self.rebuild_for_account()
        title = summary.title or "untitled"
        self.notify(f"Resumed: {title}", markup=False)

    async def action_load_earlier(self) -> None:
        await self.query_one(ChatPane).action_load_earlier()

    def action_jump_to_latest(self) -> None:
        """Back to the newest message (and follow new ones again), showing the chat if another pane is shown."""
        if self._layout == "narrow" and self.current_pane != "chat":
            self.show_pane("chat", focus=False)
        self.query_one(ChatPane).jump_to_latest()

    async def action_back_to_main(self) -> None:
        if self.workspace is None:
            return
        await asyncio.to_thread(self.workspace.back_to_main)
        self.refresh_agent()
        self.notify(f"Back to the main agent ({self.workspace.main_agent}).")

    def action_filter_events(self) -> None:
        self.show_pane("events", focus=False)
        self.query_one(EventsPane).action_filter()

    def action_server_log(self) -> None:
        self.show_pane("events", focus=False)
        self.query_one(EventsPane).action_toggle_log()

    # ---- the core's events
    def on_server_log_line(self, message: ServerLogLine) -> None:
        self.query_one(EventsPane).write_server_log([message.text])

    async def on_bus_event(self, message: BusEvent) -> None:
        event = message.event
        workspace = self.workspace
        if isinstance(event, AccountChanged):
            await self.rebuild_for_account()
            return
        current = workspace.current_account.username if workspace and workspace.current_account else None
        if isinstance(event, ServerStatusChanged):
            self.console_app.refresh_status()
            if event.state == LinkState.READY and self._told_server_away is not None:
                told, self._told_server_away = self._told_server_away, None
                if told == current:  # the person who was told to ask again learns when they can
                    where = f" ({event.url})" if event.url else ""
                    await self.query_one(ChatPane).add_notice(SERVER_BACK.format(where=where))
        if event.account is not None and event.account != current:
            return  # another account's run: nothing of it on this account's screen
        if not isinstance(event, TextDelta):
            self.query_one(EventsPane).add_event(event)
        chat = self.query_one(ChatPane)
        match event:
            case TextDelta():
                await chat.stream_delta(event.agent, event.delta)
            case TurnStarted():
                self.query_one(AgentPane).set_running(True)
            case TurnEnded():
                # Events can be handled after the turn's worker finished: the pane follows them, in their order.
                self.query_one(AgentPane).set_running(False)
                error = self._turn_failure(event.error, current) if event.error else None
                await chat.end_turn(event.output, event.last_agent or event.agent, error)
                self.refresh_from_workspace(chat=False)
            case Notice(level="error", source="workspace"):
                # A turn that could not start (the MCP server is away, an agent could not be built): no TurnEnded
                # follows, so the failure goes where its answer would have been.
                await chat.finish_streaming()
                await chat.add_notice(f"⚠ {self._turn_failure(event.message, current)}")
            case HandoffOccurred():
                self.refresh_agent()
            case SearchResults():
                self.query_one(ResultsPane).show(event)
                self.refresh_claims(obo=event.obo_claims or None)
            case StepUp():
                self._show_step_up(event)
                if (notice := step_up_notice(event)) is not None:  # the page to complete, or why it failed
                    await chat.add_notice(notice)

    def _show_step_up(self, event: StepUp) -> None:
        """The claims pane shows the sign-in's amr/acrs before and after; the chat says what is going on."""
        before = amr_text(event.amr_before, event.acrs_before)
        after = amr_text(event.amr_after, event.acrs_after) if event.status is StepUpStatus.DONE else None
        self.query_one(ClaimsPane).show_step_up(before, after)
        self.refresh_claims()

    def _turn_failure(self, message: str, account: str | None) -> str:
        """A failed turn in plain words: while the MCP server is away, that it is reconnecting and to ask again."""
        workspace = self.workspace
        if workspace is None or message == "cancelled" or workspace.server_status().accepts_turns:
            return message
        self._told_server_away = account
        return f"{message}\n{SERVER_AWAY}"

    async def rebuild_for_account(self) -> None:
        """Show the current account's own conversation and panes, nothing of the previous account's."""
        events = self.query_one(EventsPane)
        events.clear()
        workspace = self.workspace
        if workspace is not None and workspace.current_account is not None:
            for event in workspace.events():
                events.add_event(event)
            events.flush_rows()
        self.query_one(ResultsPane).show(None)
        self.query_one(ClaimsPane).show(None, None)
        self.query_one(ClaimsPane).show_step_up(None)
        for event in workspace.events() if workspace is not None and workspace.current_account else []:
            if isinstance(event, StepUp):
                self._show_step_up(event)
        self.refresh_from_workspace(chat=False)
        await self.reload_chat()

    async def reload_chat(self) -> None:
        workspace = self.workspace
        entries: list[Entry] = []
        if workspace is not None and workspace.current_account is not None:
            entries = [Entry(e.role, e.text, e.agent, interrupted=e.interrupted) for e in workspace.history()]
        await self.query_one(ChatPane).set_entries(entries)

    def refresh_from_workspace(self, *, chat: bool = True) -> None:
        workspace = self.workspace
        if workspace is None:
            return
        self.refresh_agent()
        self.refresh_claims()
        if workspace.current_account is not None:
            self.query_one(ResultsPane).show(workspace.last_search())
        self.console_app.refresh_status()

    def refresh_agent(self) -> None:
        workspace = self.workspace
        if workspace is None:
            return
        self.query_one(AgentPane).show(
            workspace.active_agent(), workspace.handoff_chain(), workspace.main_agent
        )

    def refresh_claims(self, obo: Claims | None = None) -> None:
        workspace = self.workspace
        if workspace is None or workspace.current_account is None:
            self.query_one(ClaimsPane).show(None, None)
            return
        self.query_one(ClaimsPane).show(workspace.user_claims(), obo or workspace.obo_claims())
