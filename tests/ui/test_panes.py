"""Pilot tests of every pane and action against the fixed-data workspace (the real flow: test_flow.py)."""

from __future__ import annotations

import time

from textual.widgets import DataTable, Log, OptionList, Static, TabbedContent

from console.core.events import Notice, ServerStatusChanged
from console.core.link_state import LinkState
from console.core.workspace_views import AccountInfo
from console.ui.app import OboConsoleApp
from console.ui.screens.configs import ConfigsScreen
from console.ui.screens.main import MainScreen
from console.ui.screens.sign_in import SignInScreen
from console.ui.widgets.agent_pane import AgentPane
from console.ui.widgets.chat_pane import WINDOW, ChatPane
from console.ui.widgets.claims_pane import ClaimsPane
from console.ui.widgets.events_pane import ROWS_EVERY, EventsPane
from console.ui.widgets.message import Entry, MessageView
from console.ui.widgets.prompt_input import PromptInput
from console.ui.widgets.results_pane import ResultsPane
from console.ui.widgets.status_bar import StatusBar
from tests.ui.fake_workspace import FakeWorkspace, server_at
from tests.ui.helpers import help_rows, open_palette, timers_fired, until

SIZE = (160, 45)


def _status_text(app: OboConsoleApp) -> str:
    """The main screen's status bar text; "" while it is being composed."""
    bars = app.main_screen.query(StatusBar)
    return str(bars.first().render()) if bars else ""


def _table_column(table: DataTable, key: str) -> list[str]:
    return [str(table.get_cell(row, key)) for row in table.rows]


async def _ask(pilot, text: str) -> None:  # pilot: a textual Pilot
    await pilot.press(*text, "enter")
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def test_ask_for_documents_fills_results_claims_events_and_chat() -> None:
    app = OboConsoleApp(workspace=FakeWorkspace())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.focused is app.main_screen.query_one(PromptInput)
        await _ask(pilot, "show my documents")
        chat = app.main_screen.query_one(ChatPane)
        await until(pilot, lambda: len(chat.entries) == 2, what="the answer")
        assert chat.entries[0] == Entry("user", "show my documents")
        assert chat.entries[1].agent == "conversation" and "3 documents" in chat.entries[1].text
        results = app.main_screen.query_one(ResultsPane)
        assert results.document_names == [
            "Quarterly finance report",
            "Alice's onboarding notes",
            "Company holiday calendar",
        ]
        reasons = _table_column(results.query_one(DataTable), "why")
        assert reasons == [
            "public: open to all users; you are in group Finance",
            "your object id is on it",
            "public: open to group all",
        ]
        summary = str(results.query_one("#results-summary", Static).render())
        assert "ran as Alice Adams" in summary and "3 visible" in summary
        claims = app.main_screen.query_one(ClaimsPane)
        table = claims.query_one(DataTable)
        assert str(table.get_cell("aud", "user")).startswith("5b1e6f0a")
        assert str(table.get_cell("aud", "obo")) == "https://search.azure.com"
        assert "Audience" in str(table.get_cell("aud", "meaning"))
        events = app.main_screen.query_one(EventsPane)
        whats = [r.what for r in events.rows]
        assert whats == [
            "turn",
            "mcp tool get_documents",
            "server validate",
            "server obo_exchange",
            "search",
            "turn",
        ]
        assert [r.status for r in events.rows] == ["started", "done", "ok", "ok", "done", "done"]
        tool_row = events.rows[1]
        assert tool_row.status == "done" and tool_row.duration_ms == 31.0
        # The turn's events are handled after its worker ended (the turn is that quick): the pane follows them.
        agent = app.main_screen.query_one(AgentPane)
        assert not agent.running and "running" not in str(agent.render())


async def test_claims_show_countdowns_from_the_clock_and_never_a_raw_token() -> None:
    workspace = FakeWorkspace()
    app = OboConsoleApp(workspace=workspace)
    async with app.run_test(size=SIZE) as pilot:
        await _ask(pilot, "documents please")
        claims = app.main_screen.query_one(ClaimsPane)
        table = claims.query_one(DataTable)
        assert "in 50:00" in str(table.get_cell("exp", "user"))
        workspace.clock.advance(61)
        claims.refresh_countdowns()
        assert "in 48:59" in str(table.get_cell("exp", "user"))
        assert "in 57:59" in str(table.get_cell("exp", "obo"))
        workspace.clock.advance(3600)
        claims.refresh_countdowns()
        assert "expired" in str(table.get_cell("exp", "user"))
        cells = " ".join(str(table.get_cell(r, c)) for r in table.rows for c in ("user", "obo"))
        assert "eyJ" not in cells


async def test_switching_account_shows_nothing_of_the_previous_account() -> None:
    workspace = FakeWorkspace()
    app = OboConsoleApp(workspace=workspace)
    async with app.run_test(size=SIZE) as pilot:
        await _ask(pilot, "show my documents")
        workspace.sign_in_as("bob")
        await until(pilot, lambda: not app.main_screen.query_one(ChatPane).entries, what="bob's empty chat")
        results = app.main_screen.query_one(ResultsPane)
        assert results.results is None and results.query_one(DataTable).row_count == 0
        assert app.main_screen.query_one(EventsPane).rows == []
        assert app.main_screen.query_one(ClaimsPane).obo == {}
        await _ask(pilot, "show my documents")
        assert results.document_names == ["Engineering roadmap", "Company holiday calendar"]
        assert "Alice" not in str(results.query_one("#results-summary", Static).render())
        # F3 cycles back to alice: her conversation and results come back.
        await pilot.press("f3")
        await until(pilot, lambda: workspace.current_account.username.startswith("alice"))
        await until(pilot, lambda: len(app.main_screen.query_one(ChatPane).entries) == 2)
        assert results.document_names[0] == "Quarterly finance report"
        assert "Alice Adams" in str(app.main_screen.query_one(StatusBar).render())


async def test_handoff_is_shown_in_the_agent_pane_and_ctrl_b_goes_back() -> None:
    workspace = FakeWorkspace()
    app = OboConsoleApp(workspace=workspace)
    async with app.run_test(size=SIZE) as pilot:
        await _ask(pilot, "simulate a loan")
        agent = app.main_screen.query_one(AgentPane)
        text = str(agent.render())
        assert "Simulator agent" in text and "conversation → simulator" in text
        assert "ctrl+b: back to conversation" in text
        assert app.main_screen.query_one(ChatPane).entries[-1].agent == "simulator"
        assert [r.what for r in app.main_screen.query_one(EventsPane).rows][1] == "handoff"
        await pilot.press("ctrl+b")
        await pilot.pause()
        assert "back_to_main" in workspace.calls
        text = str(agent.render())
        assert "Conversation agent" in text and "back to" not in text


async def test_prompt_history_multiline_stop_and_reset() -> None:
    workspace = FakeWorkspace()
    app = OboConsoleApp(workspace=workspace)
    async with app.run_test(size=SIZE) as pilot:
        prompt = app.main_screen.query_one(PromptInput)
        await _ask(pilot, "first")
        await _ask(pilot, "second")
        await pilot.press("up")
        assert prompt.text == "second"
        await pilot.press("up")
        assert prompt.text == "first"
        await pilot.press("down")
        assert prompt.text == "second"
        await pilot.press("down")
        assert prompt.text == ""
        await pilot.press(*"line one", "ctrl+j", *"line two")
        assert prompt.text == "line one\nline two"
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.main_screen.query_one(ChatPane).entries[-2].text == "line one\nline two"
        # esc while a turn runs asks the core to stop it.
        app.main_screen.turn_running = True
        await pilot.press("escape")
        assert "stop_turn" in workspace.calls
        app.main_screen.turn_running = False
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert "reset" in workspace.calls
        assert app.main_screen.query_one(ChatPane).entries == []


async def test_stop_ends_a_streaming_turn_with_a_notice() -> None:
    workspace = FakeWorkspace()
    app = OboConsoleApp(workspace=workspace)
    async with app.run_test(size=SIZE) as pilot:
        workspace.stop_turn()  # the scripted turn sees the stop at its first delta
        await _ask(pilot, "tell me something long")
        entries = app.main_screen.query_one(ChatPane).entries
        assert entries[-1].role == "notice" and "stopped by the user" in entries[-1].text


async def test_five_thousand_messages_mount_only_a_window() -> None:
    app = OboConsoleApp(workspace=FakeWorkspace())
    async with app.run_test(size=SIZE) as pilot:
        chat = app.main_screen.query_one(ChatPane)
        entries = [
            Entry("user" if i % 2 == 0 else "assistant", f"message {i}", agent="conversation")
            for i in range(5000)
        ]
        await chat.set_entries(entries)
        await pilot.pause()
        assert len(chat.mounted_messages) == WINDOW
        assert chat.mounted_messages[-1].entry.text == "message 4999"
        assert WINDOW == 12 and "4,988 earlier messages" in str(
            chat.query_one("#chat-earlier", Static).render()
        )
        await pilot.press("ctrl+g")
        await pilot.pause()
        assert len(chat.mounted_messages) == 2 * WINDOW
        assert chat.mounted_messages[0].entry.text == "message 4976"
        # Reading the earlier messages: what arrives meanwhile does not unmount what is being read...
        await chat.add(Entry("assistant", "one more", agent="conversation"))
        assert len(chat.mounted_messages) == 2 * WINDOW + 1 and chat.new_below
        # ...the person's next question goes back to the end, and the window is trimmed again.
        await chat.add_user("and another")
        assert len(chat.mounted_messages) == WINDOW and len(chat.entries) == 5002
        assert len(app.main_screen.query(MessageView)) == WINDOW and not chat.new_below


async def test_events_filter_expand_and_server_log_tab() -> None:
    workspace = FakeWorkspace()
    app = OboConsoleApp(workspace=workspace)
    async with app.run_test(size=SIZE) as pilot:
        await _ask(pilot, "show my documents")
        events = app.main_screen.query_one(EventsPane)
        await pilot.press("ctrl+f", *"obo")
        await pilot.pause()
        assert events.table.row_count == 1
        await pilot.press("enter")  # the filter box hands focus to the table
        assert app.focused is events.table
        await pilot.press("enter")  # expand the row
        await pilot.pause()
        detail = str(events.query_one("#events-detail", Static).render())
        assert "https://search.azure.com" in detail
        events.query_one("#events-filter").focus()
        await pilot.press("escape")
        await pilot.pause()
        assert events.table.row_count == 6
        await pilot.press("ctrl+l")
        await pilot.pause()
        assert events.query_one(TabbedContent).active == "server-log-tab"
        log = events.query_one(Log)
        await until(pilot, lambda: log.line_count >= 3, what="server log lines")
        assert "MCP server on http://127.0.0.1:8000/mcp" in log.lines[2]
        workspace.print_log("INFO  a new line")
        await until(pilot, lambda: log.lines[-1] == "INFO  a new line", what="the new line")


async def test_a_burst_of_events_reaches_the_table_in_one_update_following_the_newest() -> None:
    app = OboConsoleApp(workspace=FakeWorkspace())
    async with app.run_test(size=SIZE) as pilot:
        events = app.main_screen.query_one(EventsPane)
        await until(pilot, lambda: events.built, what="the events pane")
        await until(pilot, lambda: events.table.row_count == len(events.rows), what="the start-up rows shown")
        before = events.table.row_count
        sizes: list[int] = []
        original = events.table.add_row

        def add_row(*cells, **kwargs):  # DataTable.add_row's own signature
            sizes.append(events.table.row_count)
            return original(*cells, **kwargs)

        events.table.add_row = add_row  # type: ignore[method-assign]
        for n in range(12):
            events.add_event(Notice(message=f"burst {n}", source="test", ts=1.0 + n))
        assert [r.summary for r in events.rows[-12:]] == [f"burst {n}" for n in range(12)]  # kept at once
        assert events.table.row_count == before  # ... shown together, not one layout per row
        await until(pilot, lambda: events.table.row_count == before + 12, what="the burst in the table")
        assert sizes == list(range(before, before + 12))  # in order, in one update
        assert events.table.cursor_row == before + 11  # following the newest
        assert str(events.table.get_row_at(before + 11)[3]) == "burst 11"
        events.add_event(Notice(message="filtered away", source="test", ts=20.0))
        await pilot.press(
            "ctrl+f", *"burst 3"
        )  # a filter change rebuilds from the rows, pending ones included
        await pilot.pause()
        assert events.table.row_count == 1 and str(events.table.get_row_at(0)[3]) == "burst 3"
        await timers_fired(pilot, ROWS_EVERY * 1.5)  # the flush set for that pending row has come
        assert events.table.row_count == 1  # the row still pending before the rebuild was not added twice


async def test_server_status_is_always_visible_and_follows_the_link() -> None:
    workspace = FakeWorkspace()
    app = OboConsoleApp(workspace=workspace)
    async with app.run_test(size=SIZE) as pilot:
        bar = app.main_screen.query_one(StatusBar)
        assert "● ready" in str(bar.render()) and "(launched)" in str(bar.render())
        workspace.status = server_at(LinkState.RECONNECTING, attempt=2)
        workspace.bus.publish(ServerStatusChanged(state=LinkState.RECONNECTING))
        await until(pilot, lambda: bar.server_state == "reconnecting")
        assert "attempt 2" in str(bar.render())
        workspace.bus.publish(
            Notice(level="warning", message="config simulator is invalid", source="configs")
        )
        await until(
            pilot,
            lambda: any(
                (r.what, r.status, r.summary) == ("notice", "warning", "config simulator is invalid")
                for r in app.main_screen.query_one(EventsPane).rows
            ),
        )


async def test_configs_screen_lists_status_and_switches_the_main_agent() -> None:
    workspace = FakeWorkspace()
    app = OboConsoleApp(workspace=workspace)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f5")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ConfigsScreen)
        table = screen.query_one(DataTable)
        statuses = dict(zip(_table_column(table, "key"), _table_column(table, "status"), strict=True))
        assert statuses["conversation"] == "valid"
        assert statuses["news"].startswith("valid, 1 warning")
        assert statuses["simulator"] == "INVALID edit (1): last good version serving"
        await pilot.press("down", "down", "down")
        detail = str(screen.query_one("#configs-detail", Static).render())
        assert "$.model: 42 is not of type 'string'" in detail
        await pilot.press("up", "up")  # documents
        await pilot.press("enter")
        await pilot.pause()
        assert workspace.main_agent == "documents" and "main:documents" in workspace.calls
        assert str(table.get_cell("documents", "main")) == "★"
        await pilot.press("escape")
        await pilot.pause()
        assert "Documents agent" in str(app.main_screen.query_one(AgentPane).render())
        assert app.main_screen.query_one(StatusBar).main_agent == "documents"


async def test_command_palette_switches_the_main_agent() -> None:
    workspace = FakeWorkspace()
    app = OboConsoleApp(workspace=workspace)
    async with app.run_test(size=SIZE) as pilot:
        await open_palette(pilot)
        await pilot.press(*"use simulator as")
        await until(pilot, lambda: "main:simulator" in workspace.calls or _palette_has(app, "simulator"))
        await pilot.press("enter")
        await until(pilot, lambda: workspace.main_agent == "simulator", what="palette command")


def _palette_has(app: OboConsoleApp, text: str) -> bool:
    try:
        options = app.screen.query_one(OptionList)
    except Exception:
        return False
    return any(text in str(options.get_option_at_index(i).prompt) for i in range(options.option_count))


async def test_help_lists_every_binding_with_its_id_and_keymap_remaps() -> None:
    app = OboConsoleApp(workspace=FakeWorkspace(), keymap={"chat.reset": "ctrl+r"})
    async with app.run_test(size=SIZE) as pilot:
        rows = await help_rows(pilot)
        for wanted in (
            "app.quit",
            "app.help",
            "account.sign_in",
            "account.switch",
            "account.sign_out",
            "configs.show",
            "chat.send",
            "chat.newline",
            "chat.stop",
            "chat.reset",
            "agent.back",
            "events.filter",
            "events.server_log",
            "pane.next",
            "signin.cancel",
            "signin.copy_code",
            "configs.use",
        ):
            assert wanted in rows, wanted
        assert str(rows["chat.reset"][1]) == "ctrl+r"
        await pilot.press("escape")
        await pilot.pause()
        workspace = app.workspace
        await _ask(pilot, "hello")
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert "reset" in workspace.calls


async def test_sign_in_screen_shows_code_qr_countdown_and_signs_in_as_a_demo_user() -> None:
    workspace = FakeWorkspace(signed_in=None)
    app = OboConsoleApp(workspace=workspace)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, SignInScreen), what="the sign-in screen at start")
        screen = app.screen
        await until(pilot, lambda: screen.flow is not None)
        await pilot.pause()
        assert "F  K  X  W  -  Q  T  R  P" in str(screen.query_one("#sign-in-code", Static).render())
        assert workspace.flows[0].verification_uri in str(screen.query_one("#sign-in-url", Static).render())
        assert "expires in 15:00" in str(screen.query_one("#sign-in-status", Static).render())
        workspace.clock.advance(30)
        screen._tick()
        assert "expires in 14:30" in str(screen.query_one("#sign-in-status", Static).render())
        qr = str(screen.query_one("#sign-in-qr", Static).render())
        assert qr.count("\n") >= 14 and "▀" in qr
        await pilot.press("c")
        assert app.clipboard == "FKXW-QTRP"
        await pilot.press("u")
        assert app.clipboard == workspace.flows[0].verification_uri
        await pilot.press("2")  # bob
        await until(pilot, lambda: not isinstance(app.screen, SignInScreen), what="sign-in to complete")
        assert workspace.current_account.username == "bob@contoso.example"
        # The main screen composes its status bar again after the switch: wait until it shows the account.
        await until(pilot, lambda: "Bob Baker" in _status_text(app), what="the status bar naming bob")


class DemoSignInAfterTheDeviceFlow(FakeWorkspace):
    """Completing the page as a demo user also approves the device code (as with the real identity platform):
    here the demo sign-in returns just after the device flow's own completion has popped the screen, while the
    screen is still being removed (the moment the race needs)."""

    app: OboConsoleApp | None = None

    def sign_in_as(self, username: str, *, timeout: float = 60.0) -> AccountInfo:
        account = super().sign_in_as(username, timeout=timeout)  # completes the device flow too
        deadline = time.monotonic() + 5
        while (
            self.app is not None and isinstance(self.app.screen, SignInScreen) and time.monotonic() < deadline
        ):
            time.sleep(0.0005)
        return account


async def test_a_demo_sign_in_that_also_completes_the_device_flow_closes_the_screen_once() -> None:
    """Both completions close the sign-in screen; a second dismiss would pop the main screen and leave an empty one
    (seen once in CI as "the status bar never names bob")."""
    workspace = DemoSignInAfterTheDeviceFlow(signed_in=None)
    app = workspace.app = OboConsoleApp(workspace=workspace)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, SignInScreen), what="the sign-in screen at start")
        screen = app.screen
        await until(pilot, lambda: screen.flow is not None)
        await pilot.press("2")  # bob
        await until(
            pilot, lambda: not isinstance(app.screen, SignInScreen), what="the device flow to close it"
        )
        await until(
            pilot,
            lambda: not any(w.group == "sign-in-as" and w.is_running for w in app.workers),
            what="the demo sign-in to return",
        )
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)
        await until(pilot, lambda: "Bob Baker" in _status_text(app), what="the status bar naming bob")


async def test_sign_in_can_be_cancelled_and_sign_out_from_the_keyboard() -> None:
    workspace = FakeWorkspace()
    app = OboConsoleApp(workspace=workspace)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f2")
        await until(pilot, lambda: isinstance(app.screen, SignInScreen))
        await until(pilot, lambda: app.screen.flow is not None)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, SignInScreen) and workspace.flows[0].cancelled
        await pilot.press("f4")
        await until(pilot, lambda: workspace.current_account is None)
        await pilot.pause()
        await until(
            pilot, lambda: "not signed in" in _status_text(app), what="the status bar saying signed out"
        )
        assert app.main_screen.query_one(ClaimsPane).user == {}


async def test_layouts_rearrange_on_smaller_terminals() -> None:
    app = OboConsoleApp(workspace=FakeWorkspace())
    async with app.run_test(size=SIZE) as pilot:
        screen = app.main_screen
        panes = ["#chat", "#agent", "#events", "#claims", "#results"]
        assert screen.layout_name == "wide"
        assert all(screen.query_one(p).display and screen.query_one(p).region.area for p in panes)
        await pilot.resize_terminal(100, 30)
        await pilot.pause()
        assert screen.layout_name == "medium"
        visible = [p for p in panes if screen.query_one(p).region.area]
        assert visible == ["#chat", "#agent"]
        await pilot.press("f6")  # from the prompt to the next pane
        await pilot.pause()
        assert [p for p in panes if screen.query_one(p).region.area] == ["#chat", "#agent"]
        await pilot.press("f6", "f6")
        await pilot.pause()
        assert [p for p in panes if screen.query_one(p).region.area] == ["#chat", "#claims"]
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        assert screen.layout_name == "narrow"
        assert [p for p in panes if screen.query_one(p).region.area] == ["#claims"]
        await pilot.press("f6")
        await pilot.pause()
        assert [p for p in panes if screen.query_one(p).region.area] == ["#results"]
        await pilot.press("f6")
        await pilot.pause()
        assert [p for p in panes if screen.query_one(p).region.area] == ["#chat"]
        assert screen.query_one(StatusBar).region.area  # the server status stays visible


async def test_f7_opens_the_presenter_view_and_esc_returns() -> None:
    from console.ui.screens.main import MainScreen
    from console.ui.screens.presenter import PresenterScreen

    app = OboConsoleApp(workspace=FakeWorkspace())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f7")
        await until(pilot, lambda: isinstance(app.screen, PresenterScreen), what="the presenter view")
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, MainScreen), what="back to the console")
        await pilot.press("f7", "f7")
        await until(pilot, lambda: isinstance(app.screen, MainScreen), what="f7 toggles back")
