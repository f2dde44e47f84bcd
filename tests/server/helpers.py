"""Helpers for the server tests: a plain FastMCP client call, raw HTTP probes, the demo documents each user
may read (computed here from the demo data and the tenant directory, never from the server's answers)."""

from __future__ import annotations

import json
from typing import Any

import httpx2
from fastmcp import Client
from fastmcp.client import StreamableHttpTransport

from mcp_server.stack import LocalStack

MCP_INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "probe", "version": "1"},
    },
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


async def plain_client_get_documents(url: str, token: str) -> list[dict[str, Any]]:
    """The plainest FastMCP client a user would write: a bearer header, list the tools, call
    get_documents("*"), read ``structured_content["documents"]``."""
    headers: dict[str, str] = {}
    headers["Authorization"] = f"Bearer {token}"
    transport = StreamableHttpTransport(url=url, headers=headers)
    client = Client(transport=transport)
    async with client:
        tools = await client.list_tools()
        assert any(t.name == "get_documents" for t in tools)
        search_result = await client.call_tool("get_documents", {"query": "*"})
        documents = search_result.structured_content.get("documents", [])
    return documents


async def call(url: str, token: str, arguments: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    """One get_documents call with the raw result (errors returned, not raised)."""
    transport = StreamableHttpTransport(url=url, headers={"Authorization": f"Bearer {token}"})
    async with Client(transport=transport) as client:
        return await client.call_tool(
            "get_documents", arguments or {"query": "*"}, raise_on_error=False, **kwargs
        )


def post_mcp(url: str, token: str | None, *, scheme: str = "Bearer") -> httpx2.Response:
    headers = dict(MCP_HEADERS)
    if token is not None:
        headers["Authorization"] = f"{scheme} {token}"
    return httpx2.post(url, headers=headers, content=json.dumps(MCP_INIT), timeout=10.0, trust_env=False)


def demo_documents(stack: LocalStack) -> list[dict[str, Any]]:
    from mcp_server import provision

    return provision.resolve_documents(provision.principals_from_tenant(stack.tenant)).documents


def _entries(value: Any) -> set[str]:
    if value is None:
        return set()
    return {value} if isinstance(value, str) else {str(v) for v in value}


def expected_names(stack: LocalStack, login: str) -> set[str]:
    """The names of the demo documents ``login`` may read: own oid, a group from the directory, or ``all``."""
    user = stack.tenant.user_by_login(login)
    assert user is not None
    admitted = {user.oid, "all"} | set(user.groups)
    return {
        d["name"]
        for d in demo_documents(stack)
        if (_entries(d.get("oid")) | _entries(d.get("group"))) & admitted
    }


def assert_only_callers_entries(stack: LocalStack, login: str, documents: list[dict[str, Any]]) -> None:
    """Access fields hold only the entries that admit the caller, and each document says why it is visible."""
    user = stack.tenant.user_by_login(login)
    assert user is not None
    others = {u.oid for u in stack.tenant.users if u.oid != user.oid}
    foreign_groups = {g.id for g in stack.tenant.groups} - set(user.groups)
    for doc in documents:
        assert set(doc["oid"]) <= {user.oid, "all"}, doc
        assert set(doc["group"]) <= set(user.groups) | {"all"}, doc
        assert not (set(doc["oid"]) & others) and not (set(doc["group"]) & foreign_groups)
        because = doc["visible_because"]
        assert because, f"{doc['name']} does not say why it is visible"
        for reason in because:
            assert reason["value"] in doc[reason["field"]]
