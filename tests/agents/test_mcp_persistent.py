"""The account's MCP connection persists across turns: a real FastMCP server counts the handshakes it receives — one
for many turns — and a restart of the server between turns (same URL) is survived without the user noticing; a
server that is down fails that turn's call as before and the next turn reconnects; close() ends the connection."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastmcp import FastMCP

from console.core.agents.mcp_link import McpTarget
from console.core.agents.runner import AgentRunner
from console.core.events import EventBus
from console.core.settings import Settings
from mcp_server.localcloud.serve import ThreadedServer
from tests.agents.helpers import Recorder, agent, config
from tests.agents.test_mcp_link import fake_jwt


class CountingServer:
    """A real FastMCP server behind an ASGI wrapper that counts MCP handshakes (``initialize`` / ``server/discover``)
    and ``tools/list`` requests and records each request's Authorization header; restartable on the same port."""

    def __init__(self) -> None:
        self.initializes = 0
        self.tool_calls = 0
        self.tool_lists = 0
        self.authorizations: list[str | None] = []
        self.server: ThreadedServer | None = None
        self.port = 0

    def _app(self) -> Any:
        mcp = FastMCP("counting")

        @mcp.tool
        def get_documents() -> dict[str, list[dict[str, str]]]:
            """Lists the documents the signed-in user may read."""
            self.tool_calls += 1
            return {"documents": [{"name": "Quarterly Report", "id": "doc-1"}]}

        inner = mcp.http_app(path="/mcp", stateless_http=False)

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] != "http" or scope["method"] != "POST":
                await inner(scope, receive, send)
                return
            body, more = b"", True
            while more:
                message = await receive()
                body += message.get("body", b"")
                more = message.get("more_body", False)
            compact = body.replace(b" ", b"")
            # The handshake: ``initialize``, or ``server/discover`` under the stateless protocol revision.
            if b'"method":"initialize"' in compact or b'"method":"server/discover"' in compact:
                self.initializes += 1
            if b'"method":"tools/list"' in compact:
                self.tool_lists += 1
            headers = dict(scope.get("headers") or [])
            self.authorizations.append(headers.get(b"authorization", b"").decode() or None)
            replayed = False

            async def replay() -> dict[str, Any]:
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            await inner(scope, replay, send)

        return app

    def start(self) -> None:
        self.server = ThreadedServer(self._app(), name="counting-mcp", port=self.port)
        self.server.start()
        self.port = self.server.port

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"


@pytest.fixture
def counting() -> Iterator[CountingServer]:
    server = CountingServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _runner(server: CountingServer, bus: EventBus, who: str = "alice") -> tuple[AgentRunner, str]:
    token = fake_jwt(time.time() + 3600, who)
    settings = Settings(mcp_url=server.url, mcp_servers={"documents": "local"})
    configs = {"docs": config("docs", agent("Docs", mcp_servers=["documents"]))}
    runner = AgentRunner(
        settings=settings,
        configs=configs,
        bus=bus,
        account=who,
        token_provider=lambda: token,
        mcp_target=McpTarget(server.url),
        require_mcp=True,
    )
    return runner, token


async def test_connection_is_reused_across_turns(counting: CountingServer) -> None:
    bus = EventBus()
    rec = Recorder(bus)
    runner, token = _runner(counting, bus)
    for _ in range(3):
        result = await runner.run_turn("show my documents")
        assert result.error is None and "Quarterly Report" in result.output
    assert counting.tool_calls == 3
    assert counting.initializes == 1 and runner.mcp.connects == 1  # one connection for the three turns
    assert counting.tool_lists == 1  # cache_tools_list: the tools are listed once per connection
    assert [t for _, t in rec.tools_called()] == ["get_documents"] * 3
    assert set(counting.authorizations) == {f"Bearer {token}"}  # the account's own token on every request
    assert not any(n.level == "error" for n in rec.of("notice"))
    await runner.aclose()
    assert not runner.mcp.connected


async def test_each_account_keeps_its_own_connection(counting: CountingServer) -> None:
    runners = {who: _runner(counting, EventBus(), who) for who in ("alice", "bob")}
    for _ in range(2):
        for runner, token in runners.values():
            start = len(counting.authorizations)
            assert (await runner.run_turn("show my documents")).error is None
            assert set(counting.authorizations[start:]) == {f"Bearer {token}"}
    assert counting.initializes == 2
    assert runners["alice"][0].mcp.servers[0] is not runners["bob"][0].mcp.servers[0]
    for runner, _ in runners.values():
        await runner.aclose()


async def test_server_restart_between_turns_is_survived(counting: CountingServer) -> None:
    bus = EventBus()
    rec = Recorder(bus)
    runner, _ = _runner(counting, bus)
    assert (await runner.run_turn("show my documents")).error is None
    old_server = runner.mcp.servers[0]
    counting.stop()
    counting.start()  # same port, a new process: whatever the old one held is gone
    result = await runner.run_turn("show my documents")
    assert result.error is None and "Quarterly Report" in result.output
    assert counting.tool_calls == 2
    ended = rec.of("tool_ended", result.turn_id)
    assert ended and ended[0].error is None
    assert not any(n.level == "error" for n in rec.of("notice"))
    assert runner.mcp.servers[0] is old_server  # the agents keep their server object
    # At most one new handshake (the stateless protocol revision needs none), then reused again.
    handshakes = counting.initializes
    assert handshakes <= 2 and runner.mcp.connects <= 2
    assert (await runner.run_turn("show my documents")).error is None
    assert counting.initializes == handshakes and counting.tool_calls == 3
    await runner.aclose()


async def test_server_down_then_back_reconnects_on_the_next_turn(counting: CountingServer) -> None:
    bus = EventBus()
    runner, _ = _runner(counting, bus)
    assert (await runner.run_turn("show my documents")).error is None
    counting.stop()
    failed = await runner.run_turn("show my documents")  # the call fails as it always did: the turn says so
    assert "Quarterly Report" not in failed.output
    counting.start()
    result = await runner.run_turn("show my documents")
    assert result.error is None and "Quarterly Report" in result.output
    assert runner.mcp.connects == 2
    await runner.aclose()


async def test_close_signals_the_owner_task_which_cleans_up(counting: CountingServer) -> None:
    runner, _ = _runner(counting, EventBus())
    assert (await runner.run_turn("show my documents")).error is None
    owner = runner.mcp._owner
    assert owner is not None and not owner.done()
    runner.close()  # sync (the workspace calls it on its loop): the owner task closes the connection itself
    await asyncio.wait_for(asyncio.shield(owner), 10)
    assert owner.done() and not runner.mcp.connected
    assert runner.mcp.servers[0].session is None
