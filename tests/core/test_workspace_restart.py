"""The console launched the local stack; the stack dies; the console says so, brings it back on the same ports,
reconnects, and the conversation goes on where it was."""

from __future__ import annotations

import os
import signal

from console.core.clock import FixedClock
from console.core.events import Event, Notice, SearchResults, ServerStatusChanged
from console.core.link_state import LinkState
from console.core.settings import Settings
from console.core.workspace import Workspace
from mcp_server.processes import pid_alive
from tests.fixtures.workspace import FAST


def test_server_killed_and_restarted_under_the_workspace_keeps_the_conversation() -> None:
    settings = Settings(mode="local", mcp_port=0, identity_port=0, search_port=0, calculator_port=0)
    ws = Workspace(settings, clock=FixedClock(), link_timings=FAST)
    seen: list[Event] = []
    ws.bus.subscribe(seen.append)
    try:
        ws.start()
        assert ws.link.launched and ws.server_status().state is LinkState.READY
        assert ws.server_log(), "the launched server's log is captured for the log tab"
        alice = ws.sign_in_as("alice")
        assert ws.send_sync("show my documents", timeout=60).error is None
        first = ws.last_search()
        assert first is not None and first.documents
        session = ws.session()
        assert session is not None and session.runner is not None
        history_before = len(session.runner.history)
        url_before = ws.link.mcp_url
        state_before = ws.link.stack_state
        assert state_before is not None

        pid = ws.link.server_pid
        assert pid is not None
        os.killpg(pid, signal.SIGKILL)
        ws.link.wait_for(LinkState.DOWN, LinkState.RECONNECTING, timeout=10)
        status = ws.link.wait_for(LinkState.READY, timeout=60)
        assert status.detail.startswith("reconnected") and ws.link.mcp_url == url_before
        state_after = ws.link.stack_state
        assert state_after is not None and state_after.pid != state_before.pid
        for field in (
            "authority",
            "search_endpoint",
            "calculator_url",
        ):  # same ports: tokens and URLs stay valid
            assert getattr(state_after, field) == getattr(state_before, field)
        assert not pid_alive(pid) and ws.link.server_pid not in (None, pid)

        # Same account, same conversation, a new turn against the restarted server.
        assert ws.current_account == alice
        outcome = ws.send_sync("show my documents again", timeout=60)
        assert outcome.error is None
        assert (
            len(session.runner.history) > history_before
        )  # the earlier turns are still in what the model gets
        users = [e.text for e in ws.history() if e.role == "user"]
        assert users == ["show my documents", "show my documents again"]
        again = ws.last_search()
        assert (
            again is not None
            and again is not first
            and {d["name"] for d in again.documents} == {d["name"] for d in first.documents}
        )
        assert sum(isinstance(e, SearchResults) for e in ws.events()) == 2
        states = [e.state for e in seen if isinstance(e, ServerStatusChanged)]
        assert "down" in states and states.index("down") < len(states) - 1 - states[::-1].index("ready")
        assert any(isinstance(e, Notice) and e.source == "server" and e.level == "warning" for e in seen)
        last_pid = ws.link.server_pid
    finally:
        ws.close()
    assert last_pid is not None and not pid_alive(last_pid)  # the console stops what it launched
    assert not settings.effective_state_file().exists()
