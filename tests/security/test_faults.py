"""Fault scenarios for the headless console: the real stack dies mid-turn, the identity platform or the search
service goes down, one agent config is broken (file store and Redis). Each case asserts the exit code and the
exact line the person reads on stderr."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis

from console.cli import main
from console.core.agents.providers import calculator_model
from console.core.auth.errors import SignInError
from console.core.auth.manager import AuthManager
from console.core.settings import Settings, load_settings
from mcp_server.stack import LocalStack, StackPorts
from tests.agents.helpers import agent, write_configs
from tests.security.fault_helpers import HoldingProxy, kill_group, launch_server, state_through

STOPPED_HINT = "Check that the stack is running (`obo-console server`), then ask again."
SERVER_HINT = "The MCP server reported it: check the stack's services and log, then ask again."
LEFT_OUT = "The other agents still run; fix it with `obo-console configs validate`."

DOCUMENTS = {"shelf": agent("Shelf Agent", "List the user's documents.", mcp_servers=["documents"])}


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def json_lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines()]


@pytest.fixture
def documents_configs(isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = write_configs(isolated_home / "configs", DOCUMENTS)
    monkeypatch.setenv("OBO_CONSOLE_CONFIGS_DIR", str(directory))
    return directory


@pytest.fixture
def private_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStack]:
    """A stack of this test's own: its services are stopped mid-test, which the shared stack must never see."""
    home = tmp_path / "stack-home"
    stack = LocalStack(
        home=home,
        ports=StackPorts(identity=0, search=0, mcp=0, calculator=0),
        state_file=home / "local-stack.json",
        calculator_model=calculator_model(Settings()),
    )
    stack.start()
    monkeypatch.setenv("OBO_CONSOLE_STATE_FILE", str(stack.state_file))
    try:
        yield stack
    finally:
        stack.stop()


# -- the stack dies mid-turn -----------------------------------------------------------------------------------


def test_stack_killed_mid_turn_fails_the_turn_with_one_clear_line(
    isolated_home: Path,
    documents_configs: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    proc, state = launch_server(isolated_home / "stack.json")
    proxy: HoldingProxy | None = None
    try:
        monkeypatch.setenv("OBO_CONSOLE_STATE_FILE", str(isolated_home / "stack.json"))
        assert run_cli(capsys, "login", "--as", "alice")[0] == 0
        proxy = HoldingProxy(int(urlsplit(str(state.mcp_url)).port or 0), on_hold=lambda: kill_group(proc))
        monkeypatch.setenv(
            "OBO_CONSOLE_STATE_FILE", str(state_through(state, proxy.port, isolated_home / "via.json"))
        )

        code, out, err = run_cli(capsys, "ask", "show my documents", "--agent", "shelf", "--json")

        assert (
            proxy.held.is_set() and proc.returncode is not None
        )  # the server was killed while answering the call
        url = f"http://127.0.0.1:{proxy.port}/mcp"
        failure = f"get_documents failed: the MCP server at {url} stopped answering (SSE stream ended without a response)"
        assert code == 3
        assert err.splitlines()[-1] == f"obo-console: error: The turn failed: {failure}. {STOPPED_HINT}"
        lines = json_lines(out)
        ended = [e for e in lines if e["kind"] == "tool_ended"]
        assert [(e["tool"], e["error"]) for e in ended] == [
            (
                "get_documents",
                f"Tool error: the MCP server at {url} stopped answering (SSE stream ended without a response)",
            )
        ]
        assert not [e for e in lines if e["kind"] == "search_results" and e["documents"]]
        assert lines[-1]["kind"] == "answer" and lines[-1]["error"] == failure
    finally:
        kill_group(proc)
        if proxy is not None:
            proxy.close()


# -- the identity platform is down ------------------------------------------------------------------------------


def test_identity_platform_down_whoami_and_ask_work_from_the_cache(
    private_stack: LocalStack, documents_configs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(capsys, "login", "--as", "alice")[0] == 0
    assert (
        run_cli(capsys, "ask", "show my documents", "--agent", "shelf")[0] == 0
    )  # warms the server's caches
    authority = private_stack.identity.authority
    private_stack.identity.stop()
    unreachable = f"the identity platform at {authority} is unreachable (connection failed (ConnectionError))"

    code, out, err = run_cli(capsys, "whoami", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["account"]["username"].startswith("alice@") and doc["token"]["source"] == "cache"
    assert doc["identity_platform"] == {"reachable": False, "detail": unreachable}
    warning = (
        f"obo-console: warning: {unreachable}; working from the cached token until it expires "
        f"({doc['token']['expires_on']})."
    )
    assert [line for line in err.splitlines() if "identity platform" in line] == [warning]

    code, out, err = run_cli(capsys, "ask", "show my documents", "--agent", "shelf", "--json")
    assert code == 0 and warning in err.splitlines()
    lines = json_lines(out)
    search = [e for e in lines if e["kind"] == "search_results"]
    assert len(search) == 1 and search[0]["error"] is None and search[0]["documents"]
    assert search[0]["ran_as"]["preferred_username"].startswith("alice@")
    assert lines[-1]["error"] is None

    # Once the cached token cannot serve (expired, or a refresh is forced), the person is told why.
    manager = AuthManager.from_settings(load_settings())
    with pytest.raises(SignInError) as refused:
        manager.acquire_token(manager.require_account(), force_refresh=True)
    assert refused.value.message == (
        f"The identity platform at {authority} is unreachable (ConnectionError) and "
        f"{doc['account']['username']}'s cached token has expired (or expires within 5 minutes)."
    )


def test_identity_platform_down_without_a_saved_discovery_document_is_a_clear_error(
    private_stack: LocalStack, isolated_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(capsys, "login", "--as", "alice")[0] == 0
    saved = isolated_home / "identity-metadata.json"
    assert (
        private_stack.identity.authority
        in json.loads(saved.read_text())[
            f"{private_stack.identity.authority}/v2.0/.well-known/openid-configuration"
        ]["document"]["token_endpoint"]
    )
    saved.unlink()  # nothing to work from: the person is told the identity platform cannot be reached
    private_stack.identity.stop()
    code, _, err = run_cli(capsys, "whoami")
    assert code == 1
    errors = [line for line in err.splitlines() if line.startswith("obo-console: error:")]
    assert len(errors) == 1 and errors[0].startswith(
        f"obo-console: error: Cannot reach the identity platform at {private_stack.identity.authority}: ConnectionError"
    )


# -- the search service is down ----------------------------------------------------------------------------------


def test_search_service_down_is_a_tool_error_with_no_documents(
    private_stack: LocalStack, documents_configs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(capsys, "login", "--as", "alice")[0] == 0
    private_stack.search.stop()

    code, out, err = run_cli(capsys, "ask", "show my documents", "--agent", "shelf", "--json")

    failure = "get_documents failed: Search failed: the search service is unreachable (ServiceRequestError)"
    assert code == 3
    assert err.splitlines()[-1] == f"obo-console: error: The turn failed: {failure}. {SERVER_HINT}"
    lines = json_lines(out)
    search = [e for e in lines if e["kind"] == "search_results"]
    assert [(s["documents"], s["error"]) for s in search] == [
        ([], "Search failed: the search service is unreachable (ServiceRequestError)")
    ]
    assert lines[-1]["error"] == failure


# -- one broken agent config -------------------------------------------------------------------------------------

CONFIGS: dict[str, dict[str, Any]] = {
    "clock": agent("Clock Agent", tools=["get_current_time"]),
    "desk": {"name": "Desk Agent", "model": "gpt-4o-mini", "tools": []},  # no instructions: invalid
    "front": agent("Front Agent", handoffs=[{"agent": "desk"}]),  # valid itself, but depends on desk
}


@pytest.fixture(params=["file", "redis"])
def broken_store(request: pytest.FixtureRequest, isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """CONFIGS in the file store or in Redis; returns how a config's source is shown ("configs/desk.json")."""
    if request.param == "file":
        monkeypatch.setenv("OBO_CONSOLE_CONFIGS_DIR", str(write_configs(isolated_home / "configs", CONFIGS)))
        return "configs/{key}.json"
    url = request.getfixturevalue("redis_url")
    client = redis.Redis.from_url(url)
    try:
        for key, document in CONFIGS.items():
            client.set(f"agent|{key}", json.dumps(document))
    finally:
        client.close()
    monkeypatch.setenv("USE_REDIS", "true")
    monkeypatch.setenv("REDIS_URL", url)
    return "redis agent|{key}"


def test_one_broken_config_leaves_the_other_agents_running(
    broken_store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(capsys, "ask", "what time is it?", "--agent", "clock")
    assert code == 0 and out.startswith("Clock Agent: The current time is")
    desk, front = broken_store.format(key="desk"), broken_store.format(key="front")
    warnings = [line for line in err.splitlines() if line.startswith("obo-console: warning:")]
    assert warnings == [
        f"obo-console: warning: agent 'desk' ({desk}) is invalid and left out: "
        f"$: missing required field 'instructions'. {LEFT_OUT}",
        f"obo-console: warning: agent 'front' ({front}) is invalid and left out: "
        f"$.handoffs[0].agent: refers to agent 'desk', which is invalid. {LEFT_OUT}",
    ]


@pytest.mark.parametrize("asked", ["desk", "Front Agent"])
def test_the_asked_agent_broken_is_refused_clearly(
    broken_store: str, asked: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(capsys, "ask", "hello", "--agent", asked)
    desk, front = broken_store.format(key="desk"), broken_store.format(key="front")
    key = "desk" if asked == "desk" else "front"
    issues = [f"  {desk}: $: missing required field 'instructions'"]
    if key == "front":
        issues.insert(0, f"  {front}: $.handoffs[0].agent: refers to agent 'desk', which is invalid")
    assert code == 1 and out == ""
    assert err.splitlines() == [
        f"obo-console: error: The agent '{key}' cannot run: its config, or one it depends on, is invalid:",
        *issues,
        "  → Fix it (`obo-console configs validate`), or ask another agent with --agent NAME.",
    ]


def test_the_console_keeps_valid_agents_usable_with_one_broken_config(
    isolated_home: Path, use_local_stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from console.core.clock import FixedClock
    from console.core.events import EventBus, Notice
    from console.core.settings import Settings
    from console.core.workspace import Workspace
    from tests.fixtures.workspace import FAST

    configs = {
        "conversation": agent("Conversation Agent", tools=["get_current_time"]),
        "desk": CONFIGS["desk"],
    }
    monkeypatch.setenv("OBO_CONSOLE_CONFIGS_DIR", str(write_configs(isolated_home / "configs", configs)))
    bus = EventBus()
    seen: list[Any] = []
    bus.subscribe(seen.append)
    ws = Workspace(Settings(), clock=FixedClock(), link_timings=FAST, bus=bus)
    try:
        ws.start()
        ws.sign_in_as("alice")
        outcome = ws.send_sync("what time is it?", timeout=60)
        assert outcome.error is None and outcome.output.startswith("The current time is")
        assert [(c.key, c.valid, c.serving) for c in ws.configs()] == [
            ("conversation", True, True),
            ("desk", False, False),
        ]
        notices = [(e.level, e.message) for e in seen if isinstance(e, Notice) and e.source == "configs"]
        assert notices == [("error", "configs/desk.json: $: missing required field 'instructions'")]
    finally:
        ws.close()
