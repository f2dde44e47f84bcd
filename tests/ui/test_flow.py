"""The console end to end: the real Workspace, the real local stack (identity platform, search service, MCP
server) and the offline model, driven through the UI with Pilot."""

from __future__ import annotations

import json
import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from console.core.clock import FixedClock
from console.core.configs.file_store import write_atomic
from console.core.events import Event, Notice, TurnEnded, TurnStarted
from console.core.link_state import LinkState, LinkTimings
from console.core.settings import Settings
from console.core.workspace import Workspace
from console.ui.app import OboConsoleApp
from console.ui.screens.configs import ConfigsScreen
from console.ui.screens.sessions import SessionsScreen
from console.ui.screens.sign_in import SignInScreen
from console.ui.widgets.agent_pane import AgentPane
from console.ui.widgets.chat_pane import ChatPane
from console.ui.widgets.claims_pane import ClaimsPane
from console.ui.widgets.events_pane import EventsPane
from console.ui.widgets.results_pane import ResultsPane
from console.ui.widgets.status_bar import StatusBar
from mcp_server.processes import pid_alive
from mcp_server.stack import LocalStack
from tests.auth.helpers import JWT_SHAPE
from tests.fixtures.workspace import workspace_on
from tests.ui.helpers import until

ROOT = Path(__file__).resolve().parents[2]
# Quick polling and backoff; a /healthz probe may take long on a loaded machine without the link calling it down.
FAST = LinkTimings(startup_timeout=60, poll_interval=0.2, probe_timeout=30, backoff_base=0.1, backoff_max=0.8)
SIZE = (160, 45)
TURN = 60.0  # seconds a turn may take on a loaded machine


@pytest.fixture
def configs_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the shipped configs the test may edit (live reload watches it)."""
    folder = tmp_path / "configs"
    shutil.copytree(ROOT / "configs", folder)
    monkeypatch.setenv("OBO_CONSOLE_CONFIGS_DIR", str(folder))
    return folder


@pytest.fixture
def workspace(
    use_local_stack: LocalStack, patient_local_stack: LocalStack, configs_dir: Path
) -> Iterator[Workspace]:
    with workspace_on(FAST) as ws:
        yield ws


def _oid(stack: LocalStack, login: str) -> str:
    assert stack.state is not None
    return next(u.oid for u in stack.state.users if u.username.startswith(login + "@"))


async def _sign_in_as(pilot: Pilot, digit: str) -> None:
    app = pilot.app
    try:
        await until(
            pilot,
            lambda: isinstance(app.screen, SignInScreen) and app.screen.flow is not None,
            60,
            "the device code on the sign-in screen",
        )
    except AssertionError as exc:  # say what the screen said (an error from the core, or still requesting)
        status = (
            str(app.screen.query_one("#sign-in-status").render())
            if isinstance(app.screen, SignInScreen)
            else ""
        )
        raise AssertionError(f"{exc}; screen {type(app.screen).__name__}: {status!r}") from None
    await pilot.press(digit)
    await until(pilot, lambda: not isinstance(app.screen, SignInScreen), 60, "sign-in to complete")


def _turn_of(seen: list[Event], text: str) -> TurnStarted | Notice | None:
    """The start of the turn asking ``text``, or the error notice of a turn that could not start."""
    for event in seen:
        if isinstance(event, TurnStarted) and event.text == text:
            return event
        if isinstance(event, Notice) and event.level == "error" and event.source == "workspace":
            return event
    return None


def _end_of(seen: list[Event], turn_id: str | None) -> TurnEnded | None:
    return next((e for e in seen if isinstance(e, TurnEnded) and e.turn_id == turn_id), None)


async def _ask(pilot: Pilot, text: str) -> TurnEnded:
    """Ask ``text`` and wait for that turn's own TurnEnded, then for the chat to show its answer as the last,
    finished entry (the worker may clear ``turn_running`` before the UI has handled TurnEnded). A turn that could
    not start or that ended with an error fails here, saying why: an error notice is not an answer."""
    app: OboConsoleApp = pilot.app  # type: ignore[assignment]
    workspace = app.workspace
    assert isinstance(workspace, Workspace)
    chat = app.main_screen.query_one(ChatPane)
    seen: list[Event] = []
    unsubscribe = workspace.bus.subscribe(seen.append)  # called in the publisher's thread; append is atomic
    try:
        app.main_screen.query_one("#prompt").focus()
        await pilot.press(*text, "enter")
        await until(
            pilot, lambda: _turn_of(seen, text) is not None, TURN, f"the turn asking {text!r} to start"
        )
        started = _turn_of(seen, text)
        if isinstance(started, Notice):
            raise AssertionError(f"the turn asking {text!r} could not start: {started.message}")
        assert started is not None
        await until(pilot, lambda: _end_of(seen, started.turn_id) is not None, TURN, f"the end of {text!r}")
    finally:
        unsubscribe()
    ended = _end_of(seen, started.turn_id)
    assert ended is not None and ended.error is None, (
        f"the turn asking {text!r} failed: {ended and ended.error}"
    )

    def answered() -> bool:
        last = chat.entries[-1] if chat.entries else None
        return (
            last is not None
            and last.role == "assistant"
            and last.text == (ended.output or last.text)
            and not last.streaming
            and not app.main_screen.turn_running
        )

    await until(pilot, answered, TURN, f"the answer to {text!r} in the chat")
    return ended


def _screen_text(app: OboConsoleApp) -> str:
    """Everything the panes hold as text (what a person could read on screen)."""
    screen = app.main_screen
    screen.query_one(EventsPane).flush_rows()  # rows still waiting for the table's next update count too
    parts = [e.text for e in screen.query_one(ChatPane).entries]
    for table in screen.query(DataTable):
        parts += [str(cell) for row in table.rows for cell in table.get_row(row)]
    parts += [str(w.render()) for w in screen.query(Static)]
    return "\n".join(parts)


async def test_alice_then_bob_handoff_and_an_invalid_config_edit(
    workspace: Workspace, local_stack: LocalStack, configs_dir: Path
) -> None:
    app = OboConsoleApp(workspace=workspace)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.main_screen
        # Nobody signed in: the sign-in screen opens by itself; "1" completes the page as alice.
        await _sign_in_as(pilot, "1")
        assert workspace.current_account is not None and workspace.current_account.username.startswith(
            "alice@"
        )
        await until(pilot, lambda: "alice@" in str(screen.query_one(StatusBar).render()))
        assert "● ready" in str(screen.query_one(StatusBar).render())

        await _ask(pilot, "show my documents")
        results = screen.query_one(ResultsPane)
        await until(pilot, lambda: results.results is not None, 10, "the results pane")
        assert results.results is not None and results.results.error is None
        alice_docs = set(results.document_names)
        assert alice_docs
        assert results.results.ran_as.get("oid") == _oid(local_stack, "alice")
        summary = str(results.query_one("#results-summary", Static).render())
        assert "ran as" in summary and f"{len(alice_docs)} visible" in summary
        reasons = [
            str(results.query_one(DataTable).get_cell(r, "why")) for r in results.query_one(DataTable).rows
        ]
        assert all(reasons) and any("public" in r or "your object id" in r or "group" in r for r in reasons)
        # The OBO token's claims beside the user's: the audience changes in the exchange, the user does not.
        claims = screen.query_one(ClaimsPane)
        await until(pilot, lambda: bool(claims.obo), 10, "the OBO claims")
        assert claims.user["oid"] == claims.obo["oid"] == _oid(local_stack, "alice")
        assert claims.user["aud"] != claims.obo["aud"] and "search.azure.com" in str(claims.obo["aud"])
        table = claims.query_one(DataTable)
        assert "search.azure.com" in str(table.get_cell("aud", "obo"))
        assert "eyJ" not in _screen_text(app)  # claims only, never a token
        whats = [r.what for r in screen.query_one(EventsPane).rows]
        assert "search" in whats and any("get_documents" in w for w in whats)

        # A handoff: the agent pane shows the simulator and the way back; ctrl+b returns to the main agent.
        main_name = workspace.agent_info(workspace.main_agent).name  # type: ignore[arg-type,union-attr]
        await _ask(pilot, "I want to run a simulation")
        agent = screen.query_one(AgentPane)
        await until(pilot, lambda: "Simulator" in str(agent.render()), 10, "the simulator in the agent pane")
        text = str(agent.render())
        assert f"{main_name} → Simulator Agent" in text and "ctrl+b: back to" in text
        assert "handoff" in [r.what for r in screen.query_one(EventsPane).rows]
        await pilot.press("ctrl+b")
        await until(pilot, lambda: "Simulator" not in str(agent.render()), 10, "back to the main agent")
        assert main_name in str(agent.render())

        # bob signs in (F2): nothing of alice's stays on screen; his own documents come back.
        await pilot.press("f2")
        await _sign_in_as(pilot, "2")
        assert workspace.current_account.username.startswith("bob@")  # type: ignore[union-attr]
        await until(
            pilot,
            lambda: not screen.query_one(ChatPane).entries and results.results is None,
            10,
            "bob's empty panes",
        )
        await _ask(pilot, "show my documents")
        await until(pilot, lambda: results.results is not None, 10)
        bob_docs = set(results.document_names)
        assert bob_docs and bob_docs != alice_docs
        assert results.results.ran_as.get("oid") == _oid(local_stack, "bob")  # type: ignore[union-attr]
        on_screen = _screen_text(app)
        for name in alice_docs - bob_docs:
            assert name not in on_screen, f"alice's document {name!r} is on bob's screen"
        assert _oid(local_stack, "alice") not in on_screen

        # An invalid edit of a config: the configs screen shows its errors, the last good version keeps serving.
        path = configs_dir / "weather.json"
        config = json.loads(path.read_text())
        config["model"] = 42
        write_atomic(path, json.dumps(config))  # in one step: the watcher never reads half a file
        await until(
            pilot,
            lambda: any(c.key == "weather" and not c.valid for c in workspace.configs()),
            20,
            "the reload of the invalid edit",
        )
        await pilot.press("f5")
        await until(
            pilot,
            lambda: (
                isinstance(app.screen, ConfigsScreen) and "weather" in app.screen.query_one(DataTable).rows
            ),
            10,
            "the configs screen's table",
        )
        configs = app.screen.query_one(DataTable)
        status = str(configs.get_cell("weather", "status"))
        assert status.startswith("INVALID edit") and "last good version serving" in status
        configs.move_cursor(row=configs.get_row_index("weather"))
        detail = app.screen.query_one("#configs-detail", Static)
        await until(
            pilot, lambda: str(detail.render()).startswith("weather"), 10, "the weather config's detail"
        )
        assert "model" in str(detail.render())
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen, 10, "back on the main screen")
        await _ask(pilot, "what is the weather in Paris")
        last = screen.query_one(ChatPane).entries[-1]
        assert last.role == "assistant" and last.text, "the last good weather agent still answers"


async def test_server_stopped_and_restarted_under_the_console(configs_dir: Path) -> None:
    settings = Settings(mode="local", mcp_port=0, identity_port=0, search_port=0, calculator_port=0)
    workspace = Workspace(settings, clock=FixedClock(), link_timings=FAST)
    app = OboConsoleApp(workspace=workspace)
    try:
        async with app.run_test(size=SIZE) as pilot:
            screen = app.main_screen
            bar = screen.query_one(StatusBar)
            await _sign_in_as(pilot, "1")
            assert bar.server_launched and bar.server_state == "ready"
            await _ask(pilot, "show my documents")
            first = set(screen.query_one(ResultsPane).document_names)
            errors = [
                (r.what, r.details)
                for r in screen.query_one(EventsPane).rows
                if r.status in ("failed", "error")
            ]
            assert first, f"no documents; errors on the events pane: {errors}"
            log = screen.query_one(EventsPane).server_log
            assert log.line_count > 0, "the launched server's log is in the server log tab"

            pid = workspace.link.server_pid
            assert pid is not None
            os.killpg(pid, signal.SIGKILL)
            await until(
                pilot, lambda: bar.server_state in ("down", "reconnecting"), 15, "the console to notice"
            )
            await until(pilot, lambda: bar.server_state == "ready", 90, "the server to come back")
            assert workspace.link.server_pid not in (None, pid)
            assert any(
                r.what == "MCP server" and r.status != "ready" for r in screen.query_one(EventsPane).rows
            )

            results = screen.query_one(ResultsPane)
            before = results.results
            await _ask(pilot, "show my documents")
            chat = [e.text for e in screen.query_one(ChatPane).entries if e.role == "user"]
            assert chat == ["show my documents", "show my documents"]  # the conversation survived
            await until(pilot, lambda: results.results is not before, 10, "the new search results")
            assert results.results is not None and results.results.error is None, results.results
            assert set(results.document_names) == first
            last_pid = workspace.link.server_pid
            await pilot.press("ctrl+q")
        assert last_pid is not None and not pid_alive(last_pid)  # ctrl+q stops what the console launched
        assert (
            workspace.link.status.state is LinkState.STOPPED or not settings.effective_state_file().exists()
        )
    finally:
        workspace.close()


async def test_export_new_session_and_resume_with_the_real_workspace(
    workspace: Workspace, local_stack: LocalStack
) -> None:
    """ctrl+e writes the real export (claims masked, no token), ctrl+n starts a new saved session, F8 resumes the
    first one and the model continues it."""
    app = OboConsoleApp(workspace=workspace)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.main_screen
        await _sign_in_as(pilot, "1")
        await _ask(pilot, "show my documents")
        results = screen.query_one(ResultsPane)
        await until(pilot, lambda: results.results is not None, 10, "the results pane")
        docs = set(results.document_names)
        assert docs
        first_session = workspace.current_session_id()

        await pilot.press("ctrl+e")
        await until(pilot, lambda: screen.last_export is not None, 30, "the export")
        markdown, trace = screen.last_export  # type: ignore[misc]
        notes = [f"{n.title}: {n.message}" for n in app._notifications]
        assert any(str(markdown) in n and str(trace) in n for n in notes), notes
        md = markdown.read_text()
        assert (markdown.stat().st_mode & 0o777) == 0o600 and (trace.stat().st_mode & 0o777) == 0o600
        assert "## Conversation" in md and "show my documents" in md and any(name in md for name in docs)
        alice = _oid(local_stack, "alice")
        assert f"| oid | {alice} |" in md  # the decoded claims, each on its own row
        assert "search.azure.com" in md.split("### OBO token", 1)[1]  # the OBO token's audience
        lines = [json.loads(line) for line in trace.read_text().splitlines()]
        assert lines and any(e.get("kind") == "search_results" or "search" in json.dumps(e) for e in lines)
        for text in (md, trace.read_text()):
            assert not JWT_SHAPE.search(text), "a JWT-shaped string in the export"
            assert "Bearer " not in text

        await pilot.press("ctrl+n")
        chat = screen.query_one(ChatPane)
        await until(pilot, lambda: not chat.entries, 10, "the new conversation")
        second_session = workspace.current_session_id()
        assert second_session not in (None, first_session)
        assert {s.id for s in workspace.sessions()} >= {first_session, second_session}

        await pilot.press("f8")
        await until(
            pilot, lambda: isinstance(app.screen, SessionsScreen) and app.screen.loaded, 10, "the list"
        )
        table = app.screen.query_one(DataTable)
        assert "show my documents" in str(table.get_cell(first_session, "title"))
        table.move_cursor(row=table.get_row_index(first_session))
        await pilot.press("enter")
        await until(pilot, lambda: [e.text for e in chat.entries][:1] == ["show my documents"], 10, "resumed")
        assert workspace.current_session_id() == first_session
        await _ask(pilot, "show my documents again")
        assert [e.text for e in chat.entries if e.role == "user"] == [
            "show my documents",
            "show my documents again",
        ]
