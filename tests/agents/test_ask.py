"""`obo-console ask`: one headless turn; JSON lines on stdout with --json; clear failures with non-zero exits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from console.cli import main
from mcp_server.stack import LocalStack
from tests.agents.helpers import agent, desk_and_shelf, write_configs


@pytest.fixture
def configs_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = write_configs(
        tmp_path / "configs",
        {**desk_and_shelf(), "clock": agent("Clock Agent", tools=["get_current_time"])},
    )
    monkeypatch.setenv("OBO_CONSOLE_CONFIGS_DIR", str(directory))
    return directory


def test_json_lines_only_on_stdout(configs_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ask", "what time is it?", "--agent", "Clock Agent", "--json"]) == 0
    out, err = capsys.readouterr()
    lines = [json.loads(line) for line in out.splitlines()]  # every line is JSON
    kinds = [line["kind"] for line in lines]
    assert kinds[0] == "turn_started" and kinds[-2:] == ["turn_ended", "answer"]
    assert "tool_started" in kinds and "model_called" in kinds
    answer = lines[-1]
    assert (
        answer["agent"] == "clock" and answer["model"] == "offline-demo (offline)" and answer["error"] is None
    )
    assert answer["output"].startswith("The current time is")


def test_human_output(configs_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ask", "what time is it?", "--agent", "clock"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("Clock Agent: The current time is")
    assert "model: offline-demo (offline)" in err and "tool get_current_time" in err


def test_unknown_agent_and_invalid_config(configs_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ask", "hi", "--agent", "nobody"]) == 1
    assert "There is no agent 'nobody'" in capsys.readouterr().err
    (configs_dir / "clock.json").write_text('{"name": "Clock", "tools": []}')
    assert main(["ask", "hi", "--agent", "clock"]) == 1
    err = capsys.readouterr().err
    assert (
        "The agent 'clock' cannot run: its config, or one it depends on, is invalid" in err
        and "clock.json" in err
    )


def test_needs_a_stack_and_a_signed_in_user_for_mcp_agents(
    configs_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ask", "show my documents", "--agent", "desk"]) == 1
    assert "No local stack is running" in capsys.readouterr().err


def test_not_signed_in(
    configs_dir: Path, use_local_stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ask", "show my documents", "--agent", "desk", "--json"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and "not signed in" in err.lower()


def test_ask_as_alice_on_the_local_stack(
    configs_dir: Path, use_local_stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["login", "--as", "alice"]) == 0
    capsys.readouterr()
    assert main(["ask", "show my documents", "--agent", "desk", "--json"]) == 0
    out, _ = capsys.readouterr()
    lines = [json.loads(line) for line in out.splitlines()]
    search = [line for line in lines if line["kind"] == "search_results"]
    assert (
        len(search) == 1
        and search[0]["ran_as"]["preferred_username"].startswith("alice@")
        and search[0]["documents"]
    )
    answer = lines[-1]
    assert answer["account"].startswith("alice@") and answer["error"] is None
    assert all(doc["name"] in answer["output"] for doc in search[0]["documents"])


def test_a_failed_tool_fails_the_turn_with_one_line(
    configs_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on: the calculator service is down
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("OBO_CONSOLE_CALCULATOR_PORT", str(port))
    write_configs(
        configs_dir, {"calc": agent("Calc Agent", "Compute with the calculator.", tools=["ask_calculator"])}
    )
    failure = f"ask_calculator failed: The calculator service at http://127.0.0.1:{port} is not reachable (ConnectError)"
    last = f"obo-console: error: The turn failed: {failure}. Fix what the tool reports, then ask again."

    assert main(["ask", "what is 6 * 7?", "--agent", "calc"]) == 3
    out, err = capsys.readouterr()
    assert err.splitlines()[-1] == last
    assert "turn done in" in err.splitlines()[-2] and err.splitlines()[-2].endswith(
        ", but without the result of ask_calculator (it failed)"
    )

    assert main(["ask", "what is 6 * 7?", "--agent", "calc", "--quiet"]) == 3
    out, err = capsys.readouterr()
    assert err.splitlines()[1:] == [last]  # after "asking ...": only the one line that says what failed
    assert out.startswith("Calc Agent: ")

    assert main(["ask", "what is 6 * 7?", "--agent", "calc", "--json"]) == 3
    out, err = capsys.readouterr()
    assert json.loads(out.splitlines()[-1])["error"] == failure and err.splitlines()[-1] == last


def test_only_a_tools_last_call_decides_whether_the_turn_failed() -> None:
    from console.core.agents.context import DEFAULT_FAILURE_HINT, AgentContext, ToolFailure
    from console.core.events import EventBus

    context = AgentContext(bus=EventBus())
    context.record_outcome("get_current_time", "c1", "Tool error: the clock is gone")
    context.record_outcome("get_current_time", "c2", None)  # the model retried and it worked
    assert context.failed_tool() is None
    context.failure_hints["c4"] = "Do this."
    context.record_outcome("get_documents", "c3", None)
    context.record_outcome("get_documents", "c4", "Tool error: Search failed: down")
    assert context.failed_tool() == ToolFailure("get_documents", "Search failed: down", "Do this.")
    context.record_outcome(
        "get_current_date", "c5", "An error occurred while running the tool. Please try again."
    )
    assert context.tool_outcomes["get_current_date"] == ToolFailure(
        "get_current_date", "Please try again.", DEFAULT_FAILURE_HINT
    )
