"""The status line speaks the core's one vocabulary of server states (a degraded server named as such, with the part
that is not ready), and a new conversation the core refuses is said, with the conversation left on screen."""

from __future__ import annotations

from console.core.events import ServerStatusChanged, TurnEnded
from console.core.link_state import LinkState
from console.ui.app import OboConsoleApp
from console.ui.screens.main import SERVER_AWAY
from console.ui.widgets.chat_pane import ChatPane
from console.ui.widgets.message import Entry
from console.ui.widgets.status_bar import StatusBar
from mcp_server.errors import UserError
from tests.ui.fake_workspace import FakeWorkspace, server_at
from tests.ui.helpers import until

SIZE = (160, 45)
NOT_READY = "not ready: jwks (JWKS unreachable (ConnectError))"


async def test_a_degraded_server_is_shown_with_the_part_and_failed_turns_do_not_say_it_is_away() -> None:
    workspace = FakeWorkspace()
    app = OboConsoleApp(workspace=workspace)
    async with app.run_test(size=SIZE) as pilot:
        bar = app.main_screen.query_one(StatusBar)
        workspace.status = server_at(LinkState.DEGRADED, detail=NOT_READY)
        workspace.bus.publish(ServerStatusChanged(state=LinkState.DEGRADED, url=workspace.status.url))
        await until(pilot, lambda: bar.server_state is LinkState.DEGRADED, what="the degraded state")
        line = str(bar.render())
        assert f"◐ degraded {workspace.status.url}" in line
        assert f"connected to {workspace.status.url}, but {NOT_READY}" in line
        chat = app.main_screen.query_one(ChatPane)
        user = "alice@contoso.example"
        workspace.bus.publish(
            TurnEnded(account=user, error="get_documents failed: the search service is down")
        )
        await until(pilot, lambda: len(chat.entries) == 1, what="the failed turn")
        assert chat.entries[-1] == Entry("notice", "⚠ get_documents failed: the search service is down")
        assert SERVER_AWAY not in chat.entries[-1].text  # it answers: nothing to wait for


async def test_a_refused_new_conversation_is_said_and_the_conversation_stays() -> None:
    workspace = FakeWorkspace()
    app = OboConsoleApp(workspace=workspace)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"hello", "enter")
        await app.workers.wait_for_complete()
        chat = app.main_screen.query_one(ChatPane)
        await until(pilot, lambda: len(chat.entries) == 2, what="the answer")
        workspace.reset_refusal = UserError(
            "The running turn of alice@contoso.example did not stop within 10 s; the conversation was left as it is.",
            hint="Try again in a moment; if it keeps running, restart the console.",
        )
        await pilot.press("ctrl+n")
        await until(pilot, lambda: bool(app._notifications), what="the refusal")
        (note,) = [f"{n.title}: {n.message}" for n in app._notifications]
        assert note == (
            "No new conversation: The running turn of alice@contoso.example did not stop within 10 s; the "
            "conversation was left as it is. Try again in a moment; if it keeps running, restart the console."
        )
        assert [e.text for e in chat.entries] == ["hello", "You said: hello"] and app.is_running
