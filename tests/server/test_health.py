"""/healthz reports every part and is ready only when all are; /metrics speaks Prometheus; both unauthenticated."""

from __future__ import annotations

from pathlib import Path

import httpx2
from pydantic import SecretStr

from mcp_server.server.app import create_server
from mcp_server.server.runner import serve_threaded
from mcp_server.stack import LocalStack
from tests.fixtures.stack import api_token
from tests.server.helpers import call


def test_healthz_is_ready_with_every_part(local_stack: LocalStack) -> None:
    base = local_stack.mcp_url.removesuffix("/mcp")
    response = httpx2.get(f"{base}/healthz", trust_env=False)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert set(body["parts"]) == {"mcp", "jwks", "obo", "search", "obo_cache"}
    assert (
        body["parts"]["obo_cache"]["backend"] == "memory" and body["parts"]["obo_cache"]["degraded"] is False
    )
    assert all(part["ready"] for part in body["parts"].values())
    assert body["parts"]["search"]["index_documents"] > 0 and body["parts"]["jwks"]["keys"] >= 1


def test_healthz_is_503_naming_the_part_that_is_down(local_stack: LocalStack, tmp_path: Path) -> None:
    config = local_stack.server_config(
        port=0, search_endpoint="http://127.0.0.1:9", search_api_key=SecretStr("x")
    )
    threaded = serve_threaded(create_server(config))
    try:
        response = httpx2.get(f"{threaded.base_url}/healthz", trust_env=False, timeout=30)
        assert response.status_code == 503
        parts = response.json()["parts"]
        assert parts["jwks"]["ready"] and parts["obo"]["ready"] and not parts["search"]["ready"]
        assert "unreachable" in parts["search"]["error"]
    finally:
        threaded.stop()


async def test_metrics_count_calls_exchanges_hits_failures_and_search_time(local_stack: LocalStack) -> None:
    await call(local_stack.mcp_url, api_token(local_stack, "bob"))
    httpx2.post(local_stack.mcp_url, trust_env=False)  # no token: an auth failure
    base = local_stack.mcp_url.removesuffix("/mcp")
    response = httpx2.get(f"{base}/metrics", trust_env=False)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    for name in (
        "mcp_tool_calls_total",
        "obo_exchanges_total",
        "obo_cache_hits_total",
        'auth_failures_total{reason="missing_token"}',
        "search_seconds_bucket",
        "search_seconds_count",
    ):
        assert name in text, name
    samples = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    assert samples['mcp_tool_calls_total{outcome="ok",tool="get_documents"}'] >= 1
    assert samples["search_seconds_count"] >= 1
