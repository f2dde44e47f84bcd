"""Conversations saved as they happen in the real console (Workspace + real local stack + offline model): a new
Workspace on the same data directory resumes the account's latest conversation and the model receives it; each
account only ever loads its own; reset starts a new saved session and resume brings an older one back; export
writes the conversation (claims masked) and the trace."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from console.core.agents import offline_model
from console.core.clock import FixedClock
from console.core.sessions import SessionStore, sessions_dir
from console.core.settings import Settings
from console.core.workspace import Workspace
from mcp_server.errors import UserError
from mcp_server.redact import JWT
from mcp_server.stack import LocalStack
from tests.fixtures.workspace import FAST, user_oid

ZEPPELIN = "hello, this is alice speaking about the zeppelin budget"


class ModelInputs:
    """What the real offline model is given, one JSON text per model call."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def text(self) -> str:
        return "\n".join(self.calls)


@pytest.fixture
def model_inputs(monkeypatch: pytest.MonkeyPatch) -> ModelInputs:
    record = ModelInputs()
    real = offline_model.OfflineModel._output

    def spy(self: Any, system_instructions: Any, input: Any, tools: Any, handoffs: Any) -> Any:
        record.calls.append(json.dumps({"input": input}, default=str))
        return real(self, system_instructions, input, tools, handoffs)

    monkeypatch.setattr(offline_model.OfflineModel, "_output", spy)
    return record


@pytest.fixture
def open_workspace(use_local_stack: LocalStack) -> Iterator[Any]:
    """Start Workspaces on this test's data directory (as many as the test wants); all closed at the end."""
    opened: list[Workspace] = []

    def start() -> Workspace:
        ws = Workspace(Settings(), clock=FixedClock(), link_timings=FAST)
        opened.append(ws)
        ws.start()
        return ws

    try:
        yield start
    finally:
        for ws in opened:
            ws.close()


def test_a_new_console_resumes_the_saved_conversation_and_the_model_receives_it(
    open_workspace: Any, local_stack: LocalStack, model_inputs: ModelInputs
) -> None:
    first = open_workspace()
    assert first.sessions() == []  # nobody signed in: nothing to list
    alice = first.sign_in_as("alice")
    (started,) = first.sessions()
    assert started.messages == 0 and first.current_session_id() == started.id
    assert first.send_sync(ZEPPELIN, timeout=60).error is None
    answer = first.send_sync("show my documents", timeout=60)
    assert answer.error is None and answer.output
    shown = [(e.role, e.text) for e in first.history()]
    first.close()

    second = open_workspace()  # same data dir: alice signs in silently from the keyring
    assert second.current_account == alice
    assert [(e.role, e.text) for e in second.history()] == shown
    assert not any(e.interrupted for e in second.history())
    (resumed,) = second.sessions()
    assert resumed.id == started.id and resumed.messages == 4 and resumed.title == ZEPPELIN
    obo = second.obo_claims()  # the last search's OBO claims come back with the conversation (for export)
    assert obo is not None and obo["oid"] == user_oid(local_stack, "alice")

    model_inputs.calls.clear()
    assert second.send_sync("and what was my budget about?", timeout=60).error is None
    given = model_inputs.calls[0]
    assert (
        "zeppelin budget" in given and answer.output.splitlines()[0] in given
    )  # the earlier turns reach the model
    assert [e.role for e in second.history()] == ["user", "assistant"] * 3
    # Saved as it happened: the database already holds the new turn (nothing waits for a clean exit).
    with SessionStore(second.session().account) as store:  # type: ignore[union-attr]
        saved = store.load(started.id)
    assert [m.text for m in saved.messages if m.role == "user"] == [
        ZEPPELIN,
        "show my documents",
        "and what was my budget about?",
    ]
    assert all(m.complete for m in saved.messages)


def test_each_account_loads_only_its_own_conversations(
    open_workspace: Any, local_stack: LocalStack, model_inputs: ModelInputs
) -> None:
    first = open_workspace()
    first.sign_in_as("alice")
    assert first.send_sync(ZEPPELIN, timeout=60).error is None
    first.close()

    second = open_workspace()
    bob = second.sign_in_as("bob")
    assert second.current_account == bob
    assert second.history() == [] and second.obo_claims() is None
    (bobs,) = second.sessions()
    assert bobs.messages == 0 and bobs.title == ""
    model_inputs.calls.clear()
    assert second.send_sync("show my documents", timeout=60).error is None
    assert model_inputs.calls and "zeppelin" not in model_inputs.text()
    assert [s.title for s in second.sessions()] == ["show my documents"]

    second.switch_account("alice")  # alice's own conversation, resumed when her session opened
    assert [e.text for e in second.history() if e.role == "user"] == [ZEPPELIN]
    assert [s.title for s in second.sessions()] == [ZEPPELIN]

    # One database per account, named by a hash (no name in it), and bob's holds nothing of alice's.
    files = sorted(p for p in sessions_dir().glob("*.db"))
    assert len(files) == 2 and not any("alice" in p.name or "bob" in p.name for p in files)
    assert all(stat.S_IMODE(os.stat(p).st_mode) == 0o600 for p in files)
    session = second.session("bob")
    assert session is not None and session.store is not None
    assert b"zeppelin" not in session.store.path.read_bytes()


def test_reset_starts_a_new_saved_session_and_resume_brings_the_old_one_back(
    open_workspace: Any, model_inputs: ModelInputs
) -> None:
    ws = open_workspace()
    ws.sign_in_as("alice")
    assert ws.send_sync(ZEPPELIN, timeout=60).error is None
    old_id = ws.current_session_id()
    ws.reset_conversation()
    new_id = ws.current_session_id()
    assert new_id is not None and new_id != old_id and ws.history() == []
    model_inputs.calls.clear()
    assert ws.send_sync("what's the weather in Oslo?", timeout=60).error is None
    assert "zeppelin" not in model_inputs.text()  # the new conversation starts empty for the model too
    assert [(s.id, s.title) for s in ws.sessions()] == [
        (new_id, "what's the weather in Oslo?"),
        (old_id, ZEPPELIN),
    ]

    with pytest.raises(UserError, match="no saved conversation 'nope'"):
        ws.resume_session("nope")
    summary = ws.resume_session(old_id or "")
    assert summary.id == old_id and ws.current_session_id() == old_id
    assert [e.text for e in ws.history() if e.role == "user"] == [ZEPPELIN]
    model_inputs.calls.clear()
    assert ws.send_sync("show my documents", timeout=60).error is None
    assert "zeppelin" in model_inputs.calls[0] and "Oslo" not in model_inputs.calls[0]
    assert [e.text for e in ws.history() if e.role == "user"] == [ZEPPELIN, "show my documents"]
    assert ws.new_conversation() not in (None, old_id, new_id) and len(ws.sessions()) == 3


def test_export_writes_the_conversation_claims_masked_and_the_trace(
    open_workspace: Any, local_stack: LocalStack, tmp_path: Path
) -> None:
    ws = open_workspace()
    alice = ws.sign_in_as("alice")
    assert ws.send_sync("show my documents", timeout=60).error is None
    results = ws.last_search()
    assert results is not None and results.documents
    markdown, trace = ws.export(tmp_path / "out")
    assert markdown.parent == trace.parent == tmp_path / "out"
    assert markdown.name.endswith(".md") and trace.name.endswith(".trace.jsonl")
    assert stat.S_IMODE(os.stat(markdown).st_mode) == 0o600 and stat.S_IMODE(os.stat(trace).st_mode) == 0o600

    md = markdown.read_text()
    lines = md.splitlines()
    assert lines[0] == "# OBO Console conversation: show my documents"
    assert f"- Account: {alice.username}" in lines and f"- Session: {ws.current_session_id()}" in lines
    assert "- Messages: 2" in lines
    first = lines.index("## Conversation") + 2
    assert lines[first].startswith("### 1. You · ") and lines[first + 2] == "show my documents"
    assert lines[first + 4].startswith("### 2. ")  # the answering agent's name
    for document in results.documents:
        assert str(document["name"]) in md
    user_block = md[md.index("### User token") : md.index("### OBO token")]
    obo_block = md[md.index("### OBO token") : md.index("## Events")]
    oid = user_oid(local_stack, "alice")
    assert f"| oid | {oid} |" in user_block and f"| oid | {oid} |" in obo_block
    assert "search.azure.com" in obo_block and (local_stack.state.api_client_id or "?") in user_block  # type: ignore[union-attr]
    assert "| Time | Agent | Event |" in md and "documents visible to" in md
    assert not JWT.search(md)

    events = [json.loads(line) for line in trace.read_text().splitlines()]
    kinds = [e["kind"] for e in events if e.get("turn_id")]  # (the runner's start-up warnings come first)
    assert kinds[0] == "turn_started" and kinds[-1] == "turn_ended" and "search_results" in kinds
    assert "tool_started" in kinds and "server_step" in kinds
    assert "text_delta" not in kinds and all(e["account"] == alice.username for e in events)
    assert not JWT.search(trace.read_text())

    default_md, _ = ws.export()  # without a folder: the data dir's exports/
    assert default_md.parent.name == "exports" and default_md.read_text() == md


def test_a_console_killed_mid_answer_loses_no_completed_message(
    open_workspace: Any, isolated_home: Path, model_inputs: ModelInputs
) -> None:
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}  # the test's home, keyring and state file come along
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.core.console_writer", ZEPPELIN, "show my documents"],
        cwd=isolated_home,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    said: list[dict[str, Any]] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:  # the writer never exits on its own
            said.append(json.loads(line))
            if "streaming" in said[-1]:
                break
    finally:
        process.send_signal(signal.SIGKILL)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert said and "streaming" in said[-1], stderr[-2000:]
    done, streaming = said[0]["done"], said[-1]

    ws = open_workspace()  # the next console: alice from the keyring, her conversation from the database
    assert ws.current_session_id() == streaming["session"]
    history = ws.history()
    assert [(e.role, e.text, e.interrupted) for e in history[:3]] == [
        ("user", ZEPPELIN, False),
        ("assistant", done, False),
        ("user", "show my documents", False),
    ]
    assert len(history) == 4 and history[3].role == "assistant" and history[3].interrupted
    assert history[3].text.startswith(streaming["streaming"])
    (summary,) = ws.sessions()
    assert summary.interrupted
    model_inputs.calls.clear()
    assert ws.send_sync("show my documents", timeout=60).error is None
    given = json.loads(model_inputs.calls[0])["input"]
    # The cut-off answer is not offered to the model; every completed message is.
    assert [(i["role"], i["content"]) for i in given if isinstance(i, dict) and "role" in i][:3] == [
        ("user", ZEPPELIN),
        ("assistant", done),
        ("user", "show my documents"),
    ]
