"""A turn during an MCP server outage, end to end: the real Workspace and a real local stack
whose MCP server is stopped under the console and started again. The failure is said in the chat where the answer
would be, in plain words with what to do, and a line says when the server is back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from console.core.agents.providers import calculator_model
from console.core.clock import FixedClock
from console.core.events import Event, Notice, ServerStatusChanged, TurnEnded
from console.core.link_state import LinkState
from console.core.settings import Settings
from console.core.workspace import Workspace
from console.ui.app import OboConsoleApp
from console.ui.screens.main import SERVER_AWAY, SERVER_BACK
from console.ui.widgets.chat_pane import ChatPane
from console.ui.widgets.message import Entry
from console.ui.widgets.status_bar import StatusBar
from mcp_server.stack import LocalStack, StackPorts
from tests.fixtures.stack import patient_health
from tests.fixtures.workspace import FAST
from tests.ui.fake_workspace import FakeWorkspace, server_at
from tests.ui.helpers import until
from tests.ui.test_flow import TURN, _ask, _sign_in_as

SIZE = (80, 24)


@pytest.fixture
def own_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStack]:
    """A local stack of this test's own (its MCP server is stopped and started again), attached to through its
    state file as ``obo-console`` attaches to one started with ``obo-console server``."""
    home = tmp_path / "stack"
    stack = LocalStack(
        home=home,
        ports=StackPorts(identity=0, search=0, mcp=0, calculator=0),
        state_file=home / "local-stack.json",
        calculator_model=calculator_model(Settings()),
    )
    stack.start()
    patient_health(stack)
    monkeypatch.setenv("OBO_CONSOLE_STATE_FILE", str(stack.state_file))
    try:
        yield stack
    finally:
        stack.stop()


def _stop_mcp(stack: LocalStack) -> int:
    assert stack.mcp is not None
    port = stack.mcp.port
    stack.mcp.stop()
    stack.mcp = None
    return port


def _start_mcp(stack: LocalStack, port: int) -> None:
    # The same port: the state file (same process, same URL) stays true, as after a restart of the server.
    stack.ports.mcp = port
    stack._start_mcp()
    stack._wait_ready()
    patient_health(stack)


async def test_a_turn_while_the_mcp_server_is_down_answers_in_the_chat_and_says_when_it_is_back(
    own_stack: LocalStack,
) -> None:
    workspace = Workspace(Settings(), clock=FixedClock(), link_timings=FAST)
    app = OboConsoleApp(workspace=workspace)
    try:
        async with app.run_test(size=SIZE) as pilot:
            screen = app.main_screen
            bar = screen.query_one(StatusBar)
            chat = screen.query_one(ChatPane)
            await _sign_in_as(pilot, "1")
            await until(pilot, lambda: bar.server_state == "ready", 30, "the server")
            await _ask(pilot, "show my documents")  # a working turn first: the account's MCP session is open
            assert chat.entries[-1].role == "assistant"

            port = _stop_mcp(own_stack)
            await until(pilot, lambda: bar.server_state == "reconnecting", 30, "the console to notice")
            url = workspace.link.mcp_url
            before = len(chat.entries)
            screen.query_one("#prompt").focus()
            await pilot.press(*"show my documents", "enter")
            await until(
                pilot,
                lambda: len(chat.entries) == before + 2 and not screen.turn_running,
                TURN,
                "the failure in the chat",
            )
            question, failure = chat.entries[before:]
            assert question == Entry("user", "show my documents")
            assert failure.role == "notice"
            assert failure.text.startswith(
                f"⚠ The MCP server is not available (reconnecting to {url} (attempt "
            )
            assert failure.text.endswith(f")).\n{SERVER_AWAY}")
            assert chat.mounted_messages[-1].entry is failure  # on screen where the answer would be
            assert not any(e.text.startswith("✓ The MCP server is back") for e in chat.entries)

            _start_mcp(own_stack, port)
            await until(pilot, lambda: bar.server_state == "ready", 60, "the server to come back")
            await until(pilot, lambda: len(chat.entries) == before + 3, 10, "the line saying it is back")
            assert chat.entries[-1] == Entry("notice", SERVER_BACK.format(where=f" ({url})"))
            assert chat.entries[-1].text == f"✓ The MCP server is back ({url}): ask your question again."

            await _ask(pilot, "show my documents")  # asking again works
            assert chat.entries[-1].role == "assistant" and chat.entries[-1].text
            # Said once: a later reconnect with no failed turn adds nothing to the chat.
            assert sum(e.text.startswith("✓ The MCP server is back") for e in chat.entries) == 1
            await pilot.press("ctrl+q")
    finally:
        workspace.close()


async def test_failure_wording_with_the_server_up_or_away_and_the_back_line_said_once() -> None:
    """The same rules with the fixed-data workspace, event by event: guidance only while the server is away, the
    line that it is back only after the chat said a turn failed, and only once."""
    workspace = FakeWorkspace()
    user = "alice@contoso.example"
    url = workspace.status.url
    app = OboConsoleApp(workspace=workspace)
    async with app.run_test(size=SIZE) as pilot:
        chat = app.main_screen.query_one(ChatPane)
        await pilot.pause()

        async def publish(event: Event, count: int) -> None:
            workspace.bus.publish(event)
            await until(pilot, lambda: len(chat.entries) == count, what=f"{count} messages")
            await pilot.pause()

        # The server is up: a failed turn says what failed, nothing about reconnecting; "ready" adds nothing.
        await publish(TurnEnded(account=user, error="The agents did not finish within 10 steps."), 1)
        assert chat.entries[-1] == Entry("notice", "⚠ The agents did not finish within 10 steps.")
        await publish(ServerStatusChanged(state="ready", url=url), 1)
        await publish(Notice(account=user, level="info", source="workspace", message="conversation reset"), 1)
        # The server is away: a turn that could not start says so where its answer would be, with what to do.
        workspace.status = server_at(LinkState.RECONNECTING, attempt=2)
        away = f"The MCP server is not available (reconnecting to {url} (attempt 2 in 0.4 s))."
        await publish(Notice(account=user, level="error", source="workspace", message=away), 2)
        assert chat.entries[-1] == Entry("notice", f"⚠ {away}\n{SERVER_AWAY}")
        workspace.status = server_at(LinkState.READY)
        await publish(ServerStatusChanged(state="ready", url=url), 3)
        assert chat.entries[-1] == Entry(
            "notice", f"✓ The MCP server is back ({url}): ask your question again."
        )
        await publish(ServerStatusChanged(state="reconnecting", url=url), 3)
        await publish(
            ServerStatusChanged(state="ready", url=url), 3
        )  # no failed turn this time: nothing to say
        await publish(Notice(account=user, level="warning", source="server", message="not answering"), 3)
        # Bus events are handled in order: once this one is in the chat, the ones before it added nothing.
        await publish(TurnEnded(account=user, error="stopped by the user"), 4)
        assert [e.text for e in chat.entries] == [
            "⚠ The agents did not finish within 10 steps.",
            f"⚠ {away}\n{SERVER_AWAY}",
            f"✓ The MCP server is back ({url}): ask your question again.",
            "⚠ stopped by the user",
        ]
