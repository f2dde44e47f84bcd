"""When the real MCP server refuses the user's token on connect (401 invalid_token, 403 insufficient_scope), the
turn says so — status and the server's WWW-Authenticate error — instead of the client library's bare "Server
returned an error response", and never shows the token."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.core.agents.mcp_link import McpTarget
from console.core.agents.runner import AgentRunner
from console.core.events import ErrorCode, EventBus, FailedStep, Notice, TurnEnded
from console.core.settings import Settings
from mcp_server.errors import UserError
from mcp_server.stack import LocalStack
from tests.agents.helpers import Recorder, agent, load_configs, write_configs


@pytest.fixture
def settings(tmp_path: Path, use_local_stack: LocalStack) -> Settings:
    directory = write_configs(
        tmp_path / "configs", {"library": agent("Library Agent", mcp_servers=["documents"])}
    )
    return Settings(configs_dir=directory)


def runner_for(settings: Settings, token: str, *, require_mcp: bool) -> tuple[AgentRunner, Recorder]:
    bus = EventBus()
    runner = AgentRunner(
        settings=settings,
        configs=load_configs(settings),
        bus=bus,
        account="alice",
        token_provider=lambda: token,
        require_mcp=require_mcp,
    )
    return runner, Recorder(bus)


async def test_expired_token_is_reported_as_refused_with_its_status(
    settings: Settings, local_stack: LocalStack
) -> None:
    expired = local_stack.identity.issue_access_token("alice", lifetime=0)
    runner, rec = runner_for(settings, expired, require_mcp=True)
    try:
        with pytest.raises(UserError) as caught:
            await runner.run_turn("show my documents")
    finally:
        runner.close()
    url = local_stack.mcp_url
    assert caught.value.message.startswith(
        f"The MCP server at {url} refused the token: HTTP 401 invalid_token ("
    )
    assert "Server returned an error response" not in caught.value.message
    assert caught.value.hint and "Sign in again" in caught.value.hint
    (ended,) = [e for e in rec.events if isinstance(e, TurnEnded)]
    assert ended.error == caught.value.message
    assert not any(expired in str(e.to_dict()) for e in rec.events) and expired not in str(caught.value)
    assert runner.mcp.refusal is not None and runner.mcp.refusal.status == 401


async def test_wrong_audience_goes_on_without_tools_and_says_why(
    settings: Settings, local_stack: LocalStack
) -> None:
    foreign = local_stack.identity.issue_access_token("alice", audience="https://graph.microsoft.com")
    runner, rec = runner_for(settings, foreign, require_mcp=False)
    try:
        result = await runner.run_turn("show my documents")
    finally:
        runner.close()
    assert result.error is None  # the turn goes on without the server's tools
    errors = [e.message for e in rec.events if isinstance(e, Notice) and e.level == "error"]
    assert len(errors) == 1 and "refused the token: HTTP 401 invalid_token (" in errors[0]
    assert errors[0].endswith("Its tools are unavailable this turn.")
    (notice,) = [e for e in rec.events if isinstance(e, Notice) and e.level == "error"]
    assert (notice.code, notice.http_status, notice.step) == (
        ErrorCode.TOKEN_REFUSED,
        401,
        FailedStep.VALIDATE,
    )
    assert not any(foreign in str(e.to_dict()) for e in rec.events)


async def test_missing_scope_is_a_403_insufficient_scope(settings: Settings, local_stack: LocalStack) -> None:
    unscoped = local_stack.identity.issue_access_token("alice", scopes=("profile",))
    runner, _ = runner_for(settings, unscoped, require_mcp=True)
    try:
        with pytest.raises(UserError, match=r"refused the token: HTTP 403 insufficient_scope"):
            await runner.run_turn("show my documents")
    finally:
        runner.close()


async def test_a_refusal_notice_carries_the_403_as_data(settings: Settings, local_stack: LocalStack) -> None:
    unscoped = local_stack.identity.issue_access_token("alice", scopes=("profile",))
    runner, rec = runner_for(settings, unscoped, require_mcp=False)
    try:
        await runner.run_turn("show my documents")
    finally:
        runner.close()
    (notice,) = [e for e in rec.events if isinstance(e, Notice) and e.level == "error"]
    assert (notice.code, notice.http_status, notice.step) == (
        ErrorCode.TOKEN_REFUSED,
        403,
        FailedStep.VALIDATE,
    )
    assert "HTTP 403 insufficient_scope" in notice.message


async def test_an_unreachable_server_is_reported_as_a_failed_connect(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    directory = write_configs(
        tmp_path / "configs", {"library": agent("Library Agent", mcp_servers=["documents"])}
    )
    settings = Settings(configs_dir=directory)
    bus = EventBus()
    rec = Recorder(bus)
    runner = AgentRunner(
        settings=settings,
        configs=load_configs(settings),
        bus=bus,
        account="alice",
        token_provider=lambda: "not-a-token",
        mcp_target=McpTarget(f"http://127.0.0.1:{port}/mcp"),
    )
    try:
        await runner.run_turn("show my documents")
    finally:
        runner.close()
    (notice,) = [e for e in rec.events if isinstance(e, Notice) and e.level == "error"]
    assert (notice.code, notice.http_status, notice.step) == (
        ErrorCode.MCP_UNREACHABLE,
        None,
        FailedStep.CONNECT,
    )
    assert notice.message.startswith(f"The MCP server at http://127.0.0.1:{port}/mcp is not reachable (")
