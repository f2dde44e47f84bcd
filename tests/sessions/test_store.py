"""The session store: per-account SQLite files that name nobody, messages and events recorded from the bus as
they happen (secrets masked), resume after a restart with a real agent run, and incomplete answers marked."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from console.core.agents import offline_model
from console.core.agents.runner import AgentRunner
from console.core.events import EventBus, Notice, TextDelta, TurnEnded, TurnStarted
from console.core.sessions import SessionStore, account_key, database_name
from console.core.settings import Settings
from mcp_server.paths import data_dir
from tests.agents.helpers import agent, load_configs, write_configs

ALICE = "alice@contoso.example"
BOB = "bob@contoso.example"
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXZhbHVl"
CONFIGS = {"main": agent("Front Agent", tools=["get_current_time", "get_current_date"])}


class Account:
    def __init__(self, username: str, tenant_id: str = "", oid: str = "") -> None:
        self.username, self.tenant_id, self.oid = username, tenant_id, oid


def settings_for(tmp_path: Path) -> Settings:
    return Settings(configs_dir=write_configs(tmp_path / "configs", CONFIGS))


def test_one_private_database_per_account_named_by_a_hash(tmp_path: Path) -> None:
    alice = Account(ALICE, "tenant-1", "oid-a")
    with SessionStore(alice) as a, SessionStore(BOB) as b:
        a.new_session("main")
        b.new_session("main")
        assert a.path.parent == b.path.parent == data_dir() / "sessions"
        assert a.path != b.path
        assert a.path.name == database_name(alice) and account_key(alice) == "tenant-1:oid-a"
        for store in (a, b):
            name = store.path.name
            assert "alice" not in name and "bob" not in name and "oid" not in name and "tenant" not in name
            assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
            assert sqlite3.connect(store.path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert len(a.list_sessions()) == 1 and len(b.list_sessions()) == 1
    # the same person under the same tenant+oid opens the same file, whatever the username's case
    assert SessionStore(Account("ALICE@contoso.example", "tenant-1", "oid-a")).path == a.path


def test_recording_from_the_bus_keeps_only_this_accounts_events_and_masks_secrets() -> None:
    bus = EventBus()
    store = SessionStore(ALICE)
    session = store.new_session("main", now=100.0)
    store.attach(bus, session)
    bus.publish(TurnStarted(account=ALICE, turn_id="t1", text=f"my token is {JWT}", ts=101.0))
    bus.publish(TurnStarted(account=BOB, turn_id="b1", text="bob's question", ts=101.5))
    bus.publish(TextDelta(account=ALICE, turn_id="t1", agent="Front Agent", delta="Hello ", ts=102.0))
    bus.publish(TextDelta(account=ALICE, turn_id="t1", agent="Front Agent", delta="Alice", ts=102.1))
    bus.publish(
        Notice(account=ALICE, turn_id="t1", level="info", message=f"Authorization: Bearer {JWT}", ts=102.2)
    )
    bus.publish(
        TurnEnded(
            account=ALICE,
            turn_id="t1",
            agent="Front Agent",
            output="Hello Alice.",
            last_agent="Front Agent",
            ts=103.0,
        )
    )
    loaded = store.load(session)
    assert [(m.role, m.text, m.agent, m.complete) for m in loaded.messages] == [
        ("user", "my token is ***", None, True),
        ("assistant", "Hello Alice.", "Front Agent", True),
    ]
    assert loaded.input_list == [
        {"role": "user", "content": "my token is ***"},
        {"role": "assistant", "content": "Hello Alice."},
    ]
    kinds = [e["kind"] for e in store.events(session)]
    assert kinds == ["turn_started", "notice", "turn_ended"]  # no deltas, nothing of bob's
    raw = store.path.read_bytes() + Path(str(store.path) + "-wal").read_bytes()
    assert b"eyJ" not in raw and b"bob's question" not in raw
    summary = store.latest()
    assert summary is not None and summary.id == session and summary.messages == 2 and not summary.interrupted
    assert summary.title == "my token is ***" and summary.updated == 103.0


def test_failed_and_stopped_turns(tmp_path: Path) -> None:
    store = SessionStore(ALICE)
    session = store.new_session()
    store.record(TurnStarted(account=ALICE, turn_id="t1", text="q1"))
    store.record(TextDelta(account=ALICE, turn_id="t1", agent="A", delta="half an ans"))
    store.record(TurnEnded(account=ALICE, turn_id="t1", agent="A", error="cancelled"))
    store.record(TurnStarted(account=ALICE, turn_id="t2", text="q2"))
    store.record(TurnEnded(account=ALICE, turn_id="t2", agent="A", output="full answer"))
    loaded = store.load(session)
    assert [(m.role, m.text, m.complete, m.error) for m in loaded.messages] == [
        ("user", "q1", True, False),
        ("assistant", "half an ans", False, False),  # stopped mid-answer: kept, marked incomplete
        ("notice", "cancelled", True, True),
        ("user", "q2", True, False),
        ("assistant", "full answer", True, False),
    ]
    # the model resumes with what was really said, not the cut-off answer or the notice
    assert loaded.input_list == [
        {"role": "user", "content": "q1"},
        {"role": "user", "content": "q2"},
        {"role": "assistant", "content": "full answer"},
    ]
    assert [m.text for m in loaded.interrupted] == ["half an ans"]
    assert store.latest().interrupted  # type: ignore[union-attr]


def test_sessions_are_listed_newest_first_and_unknown_ids_are_a_clear_error() -> None:
    store = SessionStore(ALICE)
    first = store.new_session("main", now=10.0)
    second = store.new_session("other", now=20.0)
    assert [s.id for s in store.list_sessions()] == [second, first]
    assert store.current_id == second
    store.append_message("user", "later activity", session_id=first, ts=30.0)
    assert store.latest().id == first  # type: ignore[union-attr]
    assert [m.text for m in store.load(second).messages] == []
    with pytest.raises(KeyError, match="no session"):
        store.load("nope")
    with pytest.raises(RuntimeError, match="no current session"):
        SessionStore(BOB).append_message("user", "where to?")


async def test_resume_after_a_restart_continues_the_real_agent_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(tmp_path)
    bus = EventBus()
    store = SessionStore(ALICE)
    session = store.new_session("main")
    store.attach(bus, session)
    runner = AgentRunner(settings=settings, configs=load_configs(settings), bus=bus, account=ALICE)
    outputs = [(await runner.run_turn(q)).output for q in ("what time is it?", "what is the date today?")]
    store.close()
    runner.close()

    # "restart": a new store on the same file, a new runner that never saw the conversation
    reopened = SessionStore(ALICE)
    latest = reopened.latest()
    assert latest is not None and latest.id == session
    loaded = reopened.resume(session)
    assert reopened.current_id == session
    assert [(m.role, m.text) for m in loaded.messages] == [
        ("user", "what time is it?"),
        ("assistant", outputs[0]),
        ("user", "what is the date today?"),
        ("assistant", outputs[1]),
    ]
    assert all(m.complete for m in loaded.messages) and loaded.main_agent == "main"

    seen: list[Any] = []
    real = offline_model.OfflineModel._output

    def spy(self: Any, system_instructions: Any, input: Any, tools: Any, handoffs: Any) -> Any:
        seen.append(input)
        return real(self, system_instructions, input, tools, handoffs)

    monkeypatch.setattr(offline_model.OfflineModel, "_output", spy)
    bus2 = EventBus()
    reopened.attach(bus2)  # the resumed session goes on recording where it was
    resumed = AgentRunner(settings=settings, configs=load_configs(settings), bus=bus2, account=ALICE)
    resumed.history = list(loaded.input_list)
    result = await resumed.run_turn("what time is it again?")
    assert result.error is None and result.output
    sent = json.dumps(seen[0], default=str)
    assert outputs[0] in sent and outputs[1] in sent and "what is the date today?" in sent
    resumed.close()
    again = reopened.load(session)
    assert [m.text for m in again.messages][4:] == ["what time is it again?", result.output]
    assert len(reopened.list_sessions()) == 1


def test_store_writes_are_visible_to_another_process_immediately() -> None:
    """Committed before append returns: a second connection (another process) reads it at once."""
    store = SessionStore(ALICE)
    store.new_session()
    store.append_message("user", "one", ts=time.time())
    other = sqlite3.connect(store.path)
    assert other.execute("SELECT text FROM messages").fetchall() == [("one",)]
