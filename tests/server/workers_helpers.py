"""Helpers for the multi-worker tests: raw MCP tool calls on a fresh connection each (so the kernel spreads them
over the workers) that say which worker answered, and /metrics read as numbers."""

from __future__ import annotations

import base64
import json
import os
from typing import Any

import anyio
import httpx2
from pydantic import SecretStr

from mcp_server.server.obo import CacheKey, OboExchanger, OboToken
from mcp_server.stack import LocalStack
from tests.fixtures.stack import api_token
from tests.server.helpers import MCP_HEADERS

SCOPE = "https://search.azure.com/.default"
CACHE_KEY = SecretStr(base64.urlsafe_b64encode(os.urandom(32)).decode())


def tool_call(
    base_url: str, token: str, query: str = "*"
) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
    """One stateless get_documents call on a new connection: (worker pid, documents, the result's _meta)."""
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "get_documents", "arguments": {"query": query}},
    }
    headers = MCP_HEADERS | {"Authorization": f"Bearer {token}", "MCP-Protocol-Version": "2025-06-18"}
    with httpx2.Client(trust_env=False, timeout=30.0) as client:
        response = client.post(f"{base_url}/mcp", headers=headers, content=json.dumps(body))
    assert response.status_code == 200, response.text
    result = _jsonrpc_result(response)
    assert not result.get("isError"), result
    return (
        response.headers["x-obo-console-worker"],
        result["structuredContent"]["documents"],
        result.get("_meta", {}).get("obo_console", {}),
    )


def _jsonrpc_result(response: httpx2.Response) -> dict[str, Any]:
    if response.headers.get("content-type", "").startswith("application/json"):
        return dict(response.json()["result"])
    for line in response.text.splitlines():  # text/event-stream: the data line holding the result
        if line.startswith("data:"):
            message = json.loads(line[5:])
            if "result" in message:
                return dict(message["result"])
    raise AssertionError(f"no JSON-RPC result in: {response.text[:500]}")


def metric(base_url: str, name: str, **labels: str) -> float:
    """One sample of /metrics (the sum over all workers), 0 when absent."""
    text = httpx2.get(f"{base_url}/metrics", trust_env=False, timeout=10.0).text
    wanted = {f'{k}="{v}"' for k, v in labels.items()}
    for line in text.splitlines():
        sample, _, value = line.rpartition(" ")
        metric_name, _, label_text = sample.partition("{")
        if metric_name == name and set(filter(None, label_text.rstrip("}").split(","))) == wanted:
            return float(value)
    return 0.0


def healthz(base_url: str) -> tuple[str, int, dict[str, Any]]:
    """(worker pid, status code, body) of one /healthz answer on a new connection."""
    response = httpx2.get(f"{base_url}/healthz", trust_env=False, timeout=10.0)
    return response.headers["x-obo-console-worker"], response.status_code, response.json()


class Exchanges:
    """The real OBO exchange for one user, counting how often it ran."""

    def __init__(self, stack: LocalStack, login: str) -> None:
        self.exchanger = OboExchanger(stack.server_config())
        self.assertion = api_token(stack, login)
        self.count = 0

    async def __call__(self) -> OboToken:
        self.count += 1
        return await anyio.to_thread.run_sync(self.exchanger.exchange, self.assertion)


def cache_key(stack: LocalStack, login: str) -> CacheKey:
    user = stack.tenant.user_by_login(login)
    assert user is not None
    return (stack.tenant.tenant_id, user.oid, SCOPE)
