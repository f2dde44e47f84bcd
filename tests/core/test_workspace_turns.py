"""A new or resumed conversation while a turn runs (real Workspace, real local stack, offline model): the turn is
stopped and waited for, so its last events land in the conversation it was part of and never in the new one; a
turn that does not end in time is a clear refusal that changes nothing."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from console.core.clock import FixedClock
from console.core.events import Event, TextDelta
from console.core.settings import Settings
from console.core.workspace import Workspace
from mcp_server.errors import UserError
from mcp_server.stack import LocalStack
from tests.fixtures.workspace import FAST

QUESTION = "show my documents"


@pytest.fixture
def quick_refusal(use_local_stack: LocalStack) -> Iterator[Workspace]:
    """A started Workspace that waits only 0.2 s for a stopped turn to end."""
    ws = Workspace(Settings(), clock=FixedClock(), link_timings=FAST, turn_stop_timeout=0.2)
    ws.start()
    try:
        yield ws
    finally:
        ws.close()


class Streaming:
    """Subscribed to the bus: set once the first fragment of the answer streams; with ``hold``, it keeps the
    workspace loop there (so the turn cannot end) until ``release``."""

    def __init__(self, *, hold: bool) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self._hold = hold

    def __call__(self, event: Event) -> None:
        if isinstance(event, TextDelta) and not self.started.is_set():
            self.started.set()
            if self._hold:
                self.release.wait(120)


def kinds(ws: Workspace, session_id: str) -> list[str]:
    session = ws.session()
    assert session is not None and session.store is not None
    return [event["kind"] for event in session.store.events(session_id)]


def test_a_new_conversation_waits_for_the_stopped_turn_and_none_of_it_follows(workspace: Workspace) -> None:
    ws = workspace
    ws.sign_in_as("alice")
    first = ws.current_session_id()
    assert first is not None
    streaming = Streaming(hold=False)
    ws.bus.subscribe(streaming)
    turn = ws.submit(QUESTION)
    assert streaming.started.wait(60)

    second = ws.new_conversation()  # stops the turn and waits until it has ended

    assert second is not None and second != first and ws.current_session_id() == second
    turn.result(10)  # ended (stopped, or done just before): either way it belongs to the first conversation
    assert ws.history() == [] and ws.events() == [] and ws.last_search() is None
    assert kinds(ws, second) == []  # nothing of the stopped turn in the new conversation
    recorded = kinds(ws, first)
    assert recorded.count("turn_started") == 1 and recorded[-1] == "turn_ended"
    assert ws.send_sync("what time is it", timeout=60).error is None  # the account goes on
    assert [e.role for e in ws.history()] == ["user", "assistant"]


def test_a_turn_that_does_not_stop_in_time_refuses_the_new_conversation_and_changes_nothing(
    quick_refusal: Workspace,
) -> None:
    ws = quick_refusal
    alice = ws.sign_in_as("alice")
    first = ws.current_session_id()
    assert first is not None
    held = Streaming(hold=True)  # the workspace loop is held: the turn cannot end until released
    ws.bus.subscribe(held)
    turn = ws.submit(QUESTION)
    assert held.started.wait(60)
    try:
        for attempt in (ws.new_conversation, lambda: ws.resume_session(first)):
            with pytest.raises(UserError) as refused:
                attempt()
            assert refused.value.message == (
                f"The running turn of {alice.username} did not stop within 0.2 s; the conversation was left as it is."
            )
            assert refused.value.hint == "Try again in a moment; if it keeps running, restart the console."
            assert ws.current_session_id() == first and [e.role for e in ws.history()] == ["user"]
            assert [s.id for s in ws.sessions()] == [first]
    finally:
        held.release.set()

    assert turn.result(60).cancelled  # it was asked to stop; it ends once the loop runs again
    second = ws.new_conversation()
    assert second != first and ws.history() == [] and kinds(ws, second) == []
    recorded = kinds(ws, first)
    assert recorded.count("turn_started") == 1 and recorded[-1] == "turn_ended"


def test_a_second_turn_for_the_same_account_is_refused_while_one_runs(quick_refusal: Workspace) -> None:
    ws = quick_refusal
    ws.sign_in_as("bob")
    held = Streaming(hold=True)
    ws.bus.subscribe(held)
    turn = ws.submit(QUESTION)
    assert held.started.wait(60)
    try:
        with pytest.raises(UserError) as refused:
            ws.submit("and another question")
        assert (refused.value.message, refused.value.hint) == (
            "A turn is still running for this account.",
            "Wait for it, or stop it first.",
        )
    finally:
        held.release.set()
    assert turn.result(60).error is None
    assert [e.text for e in ws.history() if e.role == "user"] == [QUESTION]
