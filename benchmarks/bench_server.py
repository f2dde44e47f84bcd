"""The price of identity in the MCP server, measured in one run over real HTTP on loopback.

    .venv/bin/python -m benchmarks.bench_server [--calls 1000] [--block 100]

Full path: get_documents on the real OBO server (JWT validation, OBO cache, permission-trimmed search with the
OBO token), warm OBO cache. Baseline, built here for the benchmark only: the same tool on a FastMCP server with no
token validation, searching the same index without a user token; it reports the same three steps as progress
notifications (validate and obo_exchange as "skipped"), so the ratio prices identity, not observability. Both run
stateless over streamable HTTP from one client session each, in interleaved blocks (so machine noise hits both
alike). Prints calls per second, the ratio full/baseline (target >= 0.8), and OBO exchanges per 1,000 calls from
one user (target 1).

No-op: a FastMCP tool that does nothing, over the same transport (stateless streamable HTTP on loopback, one
client session), measured in the same interleaved blocks: the ratio full/no-op prices identity and search against
MCP's own cost per call (target <= 2).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import anyio
import msal
import requests
from fastmcp import Client, Context, FastMCP
from fastmcp.client import StreamableHttpTransport
from pydantic import Field, SecretStr
from starlette.types import ASGIApp

from console.core.auth.device_page import complete_device_page
from mcp_server.localcloud.serve import ThreadedServer
from mcp_server.server.documents import DocumentSearch
from mcp_server.server.steps import StepTrace
from mcp_server.stack import LocalStack, StackPorts


def sign_in(stack: LocalStack, login: str) -> str:
    """A user's API token through MSAL's device-code flow, the form POST (with the MFA step, which Conditional
    Access asks of carol) standing in for the browser."""
    state = stack.state
    assert state is not None
    session = requests.Session()
    session.verify, session.trust_env = str(state.ca_cert), False
    app = msal.PublicClientApplication(
        state.console_client_id, authority=state.authority, http_client=session, instance_discovery=False
    )
    flow = app.initiate_device_flow(scopes=[state.api_scope])
    complete_device_page(session, flow["verification_uri"], SecretStr(flow["user_code"]), login, mfa=True)
    return str(app.acquire_token_by_device_flow(flow)["access_token"])


def baseline_server(stack: LocalStack) -> ThreadedServer:
    """Benchmark-only: the same tool with no token validation, searching without a user token."""
    search = DocumentSearch(stack.server_config())
    mcp = FastMCP("baseline")

    @mcp.tool(name="get_documents")
    async def get_documents(
        ctx: Context,
        query: Annotated[str, Field(max_length=1000)] = "*",
        top: Annotated[int, Field(ge=1, le=50)] = 50,
    ) -> dict[str, Any]:
        trace = StepTrace(ctx)
        await trace.record("validate", "skipped", 0.0)
        await trace.record("obo_exchange", "skipped", 0.0)
        started = time.perf_counter()

        def run() -> list[dict[str, Any]]:
            fields = list(search.fields())
            return [
                {f: r.get(f) for f in fields} | {"score": r.get("@search.score")}
                for r in search.client.search(search_text=query, select=fields, top=top)
            ]

        documents = await anyio.to_thread.run_sync(run)
        await trace.record("search", "ok", (time.perf_counter() - started) * 1000, hits=len(documents))
        return {"documents": documents, "count": len(documents), "query": query}

    return ThreadedServer(mcp.http_app(path="/mcp", stateless_http=True), name="baseline").start()


def noop_app() -> ASGIApp:
    """Benchmark-only: MCP's own cost per call, a tool that does nothing (also a worker app factory)."""
    mcp = FastMCP("noop")

    @mcp.tool(name="noop")
    async def noop() -> dict[str, Any]:
        return {}

    return mcp.http_app(path="/mcp", stateless_http=True)


def noop_server() -> ThreadedServer:
    """The no-op tool on the same transport, in this process like the full path."""
    return ThreadedServer(noop_app(), name="noop").start()


async def timed_block(client: Client, calls: int, tool: str = "get_documents") -> tuple[float, int]:
    started = time.perf_counter()
    documents = 0
    arguments: dict[str, Any] = {"query": "*"} if tool == "get_documents" else {}
    for _ in range(calls):
        result = await client.call_tool(tool, arguments)
        documents += len((result.structured_content or {}).get("documents", []))
    return time.perf_counter() - started, documents


async def measure(
    stack: LocalStack, baseline_url: str, noop_url: str, token: str, calls: int, block: int
) -> dict[str, float]:
    full = Client(StreamableHttpTransport(stack.mcp_url, headers={"Authorization": f"Bearer {token}"}))
    base = Client(StreamableHttpTransport(baseline_url))
    noop = Client(StreamableHttpTransport(noop_url))
    variants = (("full", full, "get_documents"), ("base", base, "get_documents"), ("noop", noop, "noop"))
    totals = {"full": 0.0, "base": 0.0, "noop": 0.0}
    docs = {"full": 0, "base": 0, "noop": 0}
    async with full, base, noop:
        for _, client, tool in variants:  # warm-up: connections, the OBO cache, the index field list
            await timed_block(client, 10, tool)
        done = 0
        while done < calls:
            n = min(block, calls - done)
            for name, client, tool in variants:
                seconds, count = await timed_block(client, n, tool)
                totals[name] += seconds
                docs[name] += count
            done += n
    return {
        "full_cps": calls / totals["full"],
        "base_cps": calls / totals["base"],
        "noop_cps": calls / totals["noop"],
        "full_docs": docs["full"] / calls,
        "base_docs": docs["base"] / calls,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=1000, help="calls per variant (default 1000)")
    parser.add_argument("--block", type=int, default=100, help="calls per interleaved block (default 100)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        stack = LocalStack(
            home=Path(home),
            ports=StackPorts(identity=0, search=0, mcp=0, calculator=None),
            state_file=Path(home) / "local-stack.json",
        )
        stack.start()
        baseline = baseline_server(stack)
        noop = noop_server()
        try:
            token = sign_in(stack, "alice")
            server = stack.server
            assert server is not None
            server.cache.clear()
            before = server.metrics.value("obo_exchanges_total", outcome="started")
            result = asyncio.run(
                measure(
                    stack, f"{baseline.base_url}/mcp", f"{noop.base_url}/mcp", token, args.calls, args.block
                )
            )
            exchanges = server.metrics.value("obo_exchanges_total", outcome="started") - before
            total_calls = args.calls + 10
        finally:
            noop.stop()
            baseline.stop()
            stack.stop()
    ratio = result["full_cps"] / result["base_cps"]
    print(
        f"get_documents, {args.calls} calls each, interleaved blocks of {args.block}, one client session each"
    )
    print(
        f"  full path (validate + OBO cache + trimmed search): {result['full_cps']:8.1f} calls/s "
        f"({1000 / result['full_cps']:.2f} ms/call, {result['full_docs']:.0f} documents/call)"
    )
    print(
        f"  baseline (no validation, no user token):           {result['base_cps']:8.1f} calls/s "
        f"({1000 / result['base_cps']:.2f} ms/call, {result['base_docs']:.0f} documents/call)"
    )
    print(
        f"  no-op FastMCP tool (same transport):               {result['noop_cps']:8.1f} calls/s "
        f"({1000 / result['noop_cps']:.2f} ms/call)"
    )
    print(f"  ratio full/baseline: {ratio:.2f}  (target >= 0.8)")
    print(
        f"  cost ratio full/no-op (ms per call): {result['noop_cps'] / result['full_cps']:.2f}  (target <= 2)"
    )
    print(
        f"  OBO exchanges per 1,000 calls from one user: {exchanges * 1000 / total_calls:.2f} "
        f"({exchanges:.0f} exchange(s) in {total_calls} calls; target 1)"
    )


if __name__ == "__main__":
    main()
