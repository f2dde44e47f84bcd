"""bench_load's lean MCP client (benchmarks/_mcp_load_client.py) against the real server: it gets exactly what
FastMCP's ``Client`` gets, the three step notifications only when it asks for them, one connection for all its
calls, and a clear error for a refused call (the benchmark's "0 differing results" rests on it)."""

from __future__ import annotations

import asyncio

import pytest
from fastmcp import Client
from fastmcp.client import StreamableHttpTransport

from benchmarks._mcp_load_client import CallFailed, LeanMcpClient
from mcp_server.stack import LocalStack
from tests.fixtures.forwarding import pipe
from tests.fixtures.stack import OwnServer, api_token
from tests.server.helpers import expected_names


@pytest.mark.parametrize("login", ["alice", "bob"])
async def test_the_lean_client_gets_what_fastmcps_client_gets(
    local_stack: LocalStack, own_mcp_server: OwnServer, login: str
) -> None:
    token = api_token(local_stack, login)
    headers = {"Authorization": f"Bearer {token}"}
    async with Client(StreamableHttpTransport(own_mcp_server.mcp_url, headers=headers)) as reference:
        expected = (await reference.call_tool("get_documents", {"query": "*"})).structured_content
    async with (
        LeanMcpClient(own_mcp_server.mcp_url, token, steps=True) as steps,
        LeanMcpClient(own_mcp_server.mcp_url, token, steps=False) as quiet,
    ):
        asked = await steps.call_tool("get_documents", {"query": "*"})
        silent = await quiet.call_tool("get_documents", {"query": "*"})
    assert asked.result["structuredContent"] == silent.result["structuredContent"] == expected
    assert {d["name"] for d in asked.result["structuredContent"]["documents"]} == expected_names(
        local_stack, login
    )
    assert (asked.notifications, silent.notifications) == (3, 0)
    assert asked.result["_meta"]["obo_console"]["hits"] == len(expected["documents"])


async def test_the_lean_client_keeps_one_connection(
    local_stack: LocalStack, own_mcp_server: OwnServer
) -> None:
    """Every call on the client's one keep-alive connection: five calls through a loopback forwarder that counts the
    connections it accepts (the benchmark's clients must not reconnect; FastMCP's does after every streamed answer)."""
    server_port = int(own_mcp_server.mcp_url.split(":")[-1].split("/")[0])
    accepted = 0

    async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", server_port)
        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

    forwarder = await asyncio.start_server(forward, "127.0.0.1", 0)
    port = forwarder.sockets[0].getsockname()[1]
    try:
        async with LeanMcpClient(f"http://127.0.0.1:{port}/mcp", api_token(local_stack, "alice")) as client:
            for _ in range(5):
                assert (await client.call_tool("get_documents", {"query": "*"})).notifications == 3
    finally:
        forwarder.close()
        await forwarder.wait_closed()
    assert accepted == 1


async def test_a_refused_call_is_a_clear_error(own_mcp_server: OwnServer) -> None:
    async with LeanMcpClient(own_mcp_server.mcp_url, "not-a-token") as client:
        with pytest.raises(CallFailed, match=r"^HTTP 401: "):
            await client.call_tool("get_documents", {"query": "*"})
    async with LeanMcpClient(own_mcp_server.mcp_url) as client:
        with pytest.raises(CallFailed, match=r"^HTTP 401: "):
            await client.call_tool("get_documents", {"query": "*"})
