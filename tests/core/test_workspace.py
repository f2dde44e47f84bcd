"""The Workspace against the real local stack and the offline model: each signed-in account has its own
conversation, MCP connection, results and events; switching shows nothing of the previous account's."""

from __future__ import annotations

import json
from typing import Any

import pytest

from console.core.agents import offline_model
from console.core.auth.errors import DeviceFlowCancelled
from console.core.clock import FixedClock
from console.core.events import AccountChanged, Event, SearchResults, ToolStarted, TurnEnded, TurnStarted
from console.core.link_state import LinkState
from console.core.settings import Settings
from console.core.workspace import Workspace
from mcp_server.errors import UserError
from mcp_server.stack import LocalStack
from tests.fixtures.workspace import FAST, user_oid


class ModelInputs:
    """Records what the (real) offline model is given, per call: the instructions and the input items."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def text(self) -> str:
        return "\n".join(self.calls)

    def clear(self) -> None:
        self.calls.clear()


@pytest.fixture
def model_inputs(monkeypatch: pytest.MonkeyPatch) -> ModelInputs:
    record = ModelInputs()
    real = offline_model.OfflineModel._output

    def spy(self: Any, system_instructions: Any, input: Any, tools: Any, handoffs: Any) -> Any:
        record.calls.append(json.dumps({"instructions": system_instructions, "input": input}, default=str))
        return real(self, system_instructions, input, tools, handoffs)

    monkeypatch.setattr(offline_model.OfflineModel, "_output", spy)
    return record


def doc_names(results: SearchResults | None) -> set[str]:
    assert results is not None
    return {str(d["name"]) for d in results.documents}


def dump(items: list[Any]) -> str:
    return json.dumps([getattr(i, "to_dict", lambda i=i: i.__dict__)() for i in items], default=str)


def test_each_account_has_its_own_conversation_results_and_model_input(
    workspace: Workspace, local_stack: LocalStack, model_inputs: ModelInputs
) -> None:
    ws = workspace
    assert ws.link.status.state is LinkState.READY and not ws.link.launched  # attached to the running stack
    assert ws.accounts() == [] and ws.current_account is None
    assert sorted(u.split("@")[0] for u in ws.demo_users()) == ["alice", "bob", "carol", "dave", "erin"]
    seen: list[Event] = []
    ws.bus.subscribe(seen.append)
    shown: list[Event] = []  # what a view subscribed to "the current account" receives
    ws.subscribe_current(shown.append)

    # alice signs in (device flow completed on the page, as the presenter's "sign in as" does) and asks.
    alice = ws.sign_in_as("alice")
    assert alice.username.startswith("alice@") and ws.current_account == alice
    claims = ws.user_claims()
    assert claims is not None and claims["oid"] == user_oid(local_stack, "alice")
    assert not any(isinstance(v, str) and v.startswith("eyJ") for v in claims.values())  # claims, not tokens
    ws.send_sync("hello, this is alice speaking about the zeppelin budget", timeout=60)
    outcome = ws.send_sync("show my documents", timeout=60)
    assert outcome.error is None and outcome.output
    alice_results = ws.last_search()
    assert alice_results is not None and alice_results.account == alice.username
    assert alice_results.error is None and alice_results.ran_as.get("oid") == user_oid(local_stack, "alice")
    alice_docs = doc_names(alice_results)
    assert alice_docs
    obo = ws.obo_claims()
    assert (
        obo is not None
        and obo["oid"] == user_oid(local_stack, "alice")
        and "search.azure.com" in str(obo["aud"])
    )
    assert [e.role for e in ws.history()] == ["user", "assistant", "user", "assistant"]
    assert {e.ts for e in ws.history()} == {ws.clock.time()}  # times from the injected clock

    # bob signs in: he becomes current and sees nothing of alice's.
    model_inputs.clear()
    bob = ws.sign_in_as("bob")
    assert ws.current_account == bob and {a.username for a in ws.accounts()} == {alice.username, bob.username}
    switched = [e for e in seen if isinstance(e, AccountChanged)]
    assert switched[-1].account == bob.username and switched[-1].previous == alice.username
    assert ws.history() == [] and ws.events() == [] and ws.last_search() is None and ws.obo_claims() is None
    bob_claims = ws.user_claims()
    assert bob_claims is not None and bob_claims["oid"] == user_oid(local_stack, "bob")
    assert ws.send_sync("show my documents", timeout=60).error is None
    bob_results = ws.last_search()
    assert bob_results is not None and bob_results.account == bob.username
    assert bob_results.ran_as.get("oid") == user_oid(local_stack, "bob")
    bob_docs = doc_names(bob_results)
    alice_only = alice_docs - bob_docs
    assert bob_docs and alice_only, "the demo tenant gives alice documents bob cannot see"

    # Nothing of alice's in bob's session state ...
    session = ws.session()
    assert session is not None and session.username == bob.username
    bob_state = (
        dump(ws.events()) + dump(ws.history()) + json.dumps(ws.obo_claims()) + dump([ws.last_search()])
    )
    assert all(e.account == bob.username for e in ws.events())
    for name in alice_only:
        assert name not in bob_state
    assert user_oid(local_stack, "alice") not in bob_state and "zeppelin" not in bob_state
    # ... nor in what his runner sent the model.
    sent = model_inputs.text()
    assert "show my documents" in sent and "zeppelin" not in sent
    for name in alice_only:
        assert name not in sent
    assert user_oid(local_stack, "alice") not in sent
    assert session.runner is not None and "zeppelin" not in json.dumps(session.runner.history, default=str)

    # A view following the current account got alice's events only while she was current.
    after_switch = shown[
        next(i for i, e in enumerate(shown) if isinstance(e, AccountChanged) and e.account == bob.username) :
    ]
    assert all(e.account in (None, bob.username) for e in after_switch if not isinstance(e, AccountChanged))
    assert any(isinstance(e, SearchResults) for e in after_switch)

    # Switching back shows alice's own conversation and results again, kept in her session.
    ws.switch_account("alice")
    assert ws.current_account == alice
    assert doc_names(ws.last_search()) == alice_docs
    assert [e.text for e in ws.history() if e.role == "user"][0].startswith("hello, this is alice")
    with pytest.raises(UserError, match="not signed in"):
        ws.switch_account("carol")

    # Signing alice out drops her session; bob becomes current.
    assert ws.sign_out() == bob
    assert [a.username for a in ws.accounts()] == [bob.username]
    assert doc_names(ws.last_search()) == bob_docs


def test_main_agent_choice_applies_from_the_next_turn(workspace: Workspace) -> None:
    ws = workspace
    ws.sign_in_as("carol")
    started: list[TurnStarted] = []
    ws.bus.subscribe(lambda e: started.append(e) if isinstance(e, TurnStarted) else None)
    main = ws.main_agent
    assert main is not None and ws.active_agent() is not None and ws.active_agent().key == main  # type: ignore[union-attr]
    assert ws.handoff_chain() == [ws.agent_info(main).name]  # type: ignore[union-attr]
    ws.send_sync("hello", timeout=60)
    other = next(c.key for c in ws.configs() if c.serving and c.key != main)
    ws.set_main_agent(other)
    info = ws.active_agent()
    assert info is not None and info.key == other and info.provider == "offline"
    ws.send_sync("hello again", timeout=60)
    assert started[-1].agent == ws.agent_info(other).name  # type: ignore[union-attr]
    assert [e.role for e in ws.history()].count("user") == 2  # the conversation carried over
    with pytest.raises(UserError, match="No agent config"):
        ws.set_main_agent("no-such-agent")
    ws.reset_conversation()
    assert ws.history() == [] and ws.last_search() is None


def test_device_flow_handle_masks_the_code_and_cancels(workspace: Workspace) -> None:
    ws = workspace
    flow = ws.begin_device_flow()
    code = flow.user_code.get_secret_value()
    assert code and code not in repr(flow) and code not in repr(flow.user_code)
    assert flow.verification_uri.startswith("https://127.0.0.1:")
    assert (
        flow.seconds_left(FixedClock(float(int(flow.expires_at) - 90))) == 90
    )  # whole seconds: exact in a clock
    flow.cancel()
    with pytest.raises(DeviceFlowCancelled):
        flow.result(10)
    assert ws.current_account is None


def test_send_needs_a_signed_in_account(workspace: Workspace) -> None:
    with pytest.raises(UserError, match="Not signed in"):
        workspace.send_sync("hello")
    workspace.sign_in_as("bob")
    with pytest.raises(UserError, match="Nothing to send"):
        workspace.send_sync("   ")
    ended: list[TurnEnded] = []
    workspace.bus.subscribe(lambda e: ended.append(e) if isinstance(e, TurnEnded) else None)
    assert workspace.send_sync("what time is it", timeout=60).error is None
    assert ended and ended[-1].account == workspace.current_account.username  # type: ignore[union-attr]


def test_handoff_is_tracked_per_account_and_back_to_main_returns(workspace: Workspace) -> None:
    ws = workspace
    ws.sign_in_as("alice")
    main = ws.active_agent()
    assert main is not None
    outcome = ws.send_sync("I want to run a simulation", timeout=60)
    assert outcome.error is None
    active = ws.active_agent()
    assert active is not None and active.key == "simulator" and active.key != main.key
    assert ws.handoff_chain() == [main.name, active.name]
    # bob's session knows nothing of alice's handoff.
    ws.sign_in_as("bob")
    assert ws.active_agent().key == main.key and ws.handoff_chain() == [main.name]  # type: ignore[union-attr]
    ws.switch_account("alice")
    assert ws.active_agent().key == "simulator"  # type: ignore[union-attr]
    ws.back_to_main()
    assert ws.active_agent().key == main.key and ws.handoff_chain() == [main.name]  # type: ignore[union-attr]
    started: list[TurnStarted] = []
    ws.bus.subscribe(lambda e: started.append(e) if isinstance(e, TurnStarted) else None)
    ws.send_sync("what time is it", timeout=60)
    assert started[-1].agent == main.name


def test_stop_turn_ends_the_running_turn_and_keeps_the_conversation(workspace: Workspace) -> None:
    ws = workspace
    ws.sign_in_as("carol")
    assert ws.send_sync("what time is it", timeout=60).error is None
    session = ws.session()
    assert session is not None and session.runner is not None
    before = list(session.runner.history)
    stopped: list[bool] = []

    def stop_when_the_search_starts(event: Event) -> None:
        if isinstance(event, ToolStarted) and event.tool_type == "agent" and not stopped:
            stopped.append(ws.stop_turn())

    ws.bus.subscribe(stop_when_the_search_starts)
    outcome = ws.send_sync("show my documents", timeout=60)
    assert stopped == [True] and outcome.cancelled and outcome.error == "cancelled"
    assert session.runner.history == before  # the stopped turn added nothing to what the model sees next
    assert ws.history()[-1].role == "notice" and not session.busy
    assert ws.stop_turn() is False  # nothing running any more
    assert ws.send_sync("show my documents", timeout=60).error is None  # and the account goes on
    assert ws.last_search() is not None


def test_connect_to_the_real_server_passes_its_metadata_check_and_carries_the_token(
    use_local_stack: LocalStack,
) -> None:
    """The bundled server's real RFC 9728 metadata satisfies --connect; the turn then runs against that URL. (The
    local stack's origin is trusted implicitly; its metadata names its own URL as the resource.)"""
    assert use_local_stack.state is not None and use_local_stack.state.mcp_url
    url = use_local_stack.state.mcp_url
    ws = Workspace(
        Settings(), connect=url.upper().replace("/MCP", "/mcp/"), clock=FixedClock(), link_timings=FAST
    )
    try:
        status = ws.start()  # the URL as a user might type it: the same URL once normalised
        assert status.state is LinkState.READY and status.url == url and not status.launched
        meta = ws.link.metadata
        assert meta is not None and any(
            s.startswith(use_local_stack.state.authority or "?") for s in meta.authorization_servers
        )
        ws.sign_in_as("alice")
        assert ws.send_sync("show my documents", timeout=60).error is None
        results = ws.last_search()
        assert results is not None and results.error is None and results.documents
        session = ws.session()
        assert session is not None and session.runner_url == url
    finally:
        ws.close()
    assert use_local_stack.state_file.exists()  # attached, not launched: the stack keeps running


def test_next_start_signs_in_silently_from_the_keyring(use_local_stack: LocalStack) -> None:
    first = Workspace(Settings(), clock=FixedClock(), link_timings=FAST)
    first.start()
    try:
        alice = first.sign_in_as("alice")
        bob = first.sign_in_as("bob")
        first.switch_account("alice")
    finally:
        first.close()
    again = Workspace(Settings(), clock=FixedClock(), link_timings=FAST)
    changes: list[AccountChanged] = []
    again.bus.subscribe(lambda e: changes.append(e) if isinstance(e, AccountChanged) else None)
    again.start()
    try:
        assert again.accounts() == sorted([alice, bob], key=lambda a: a.username)
        assert again.current_account == alice  # the account used last
        assert changes and changes[-1].account == alice.username
        claims = again.user_claims()
        assert claims is not None and claims["oid"] == user_oid(use_local_stack, "alice")
        assert again.history() == [] and again.last_search() is None  # conversations are not kept on disk
    finally:
        again.close()


def test_messages_are_saved_before_any_view_sees_them_other_events_reach_views_first(
    workspace: Workspace,
) -> None:
    ws = workspace
    ws.sign_in_as("alice")
    session = ws.session()
    assert session is not None and session.store is not None
    store = session.store
    seen: list[tuple[str, list[str], int]] = []  # (event, messages saved, events saved) when a view got it

    def view(event: Event) -> None:
        assert store.current_id is not None
        saved = [m.role for m in store.load(store.current_id).messages if m.complete]
        seen.append((type(event).__name__, saved, len(store.events(store.current_id))))

    unsubscribe = ws.bus.subscribe(view)
    ws.send_sync("show my documents", timeout=60)
    unsubscribe()
    kinds = [kind for kind, _, _ in seen]
    started = kinds.index("TurnStarted")
    assert seen[started][1] == ["user"]  # the question is on disk before anyone sees the turn start
    ended = kinds.index("TurnEnded")
    assert seen[ended][1] == ["user", "assistant"]  # and the answer before anyone sees it
    results = kinds.index("SearchResults")
    # The search results reach the views before they are written (nothing waits on the disk for them) ...
    assert seen[results][2] == len([k for k in kinds[:results] if k != "TextDelta"])
    # ... and are saved right after.
    assert "search_results" in [e["kind"] for e in store.events(store.current_id)]  # type: ignore[arg-type]
