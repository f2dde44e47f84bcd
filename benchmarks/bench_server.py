"""The price of identity in the MCP server, measured in one run over real HTTP on loopback.

    .venv/bin/python -m benchmarks.bench_server [--calls 1000] [--block 100]

Full path: get_documents on the real OBO server (JWT validation, OBO cache, permission-trimmed search with the
OBO token), warm OBO cache. Baseline, built here for the benchmark only: the same tool on a FastMCP server with no
token validation, searching the same index without a user token on the same async search client; it reports the
same three steps as progress notifications (validate and obo_exchange as "skipped"), so the ratio prices identity,
not observability. No-op: a FastMCP tool that does nothing (MCP's own cost per call, a JSON answer); and the same
no-op sending the three step notifications (MCP's own cost of the steps the console shows: an SSE answer).

Each server runs in a worker process of its own (one uvicorn worker, as `obo-console server --workers 1`), the client
in another and the local identity platform and search service in this one, so no variant shares an interpreter
(and its GIL) with the client or the search service: the same for all. All stateless streamable HTTP, one client
session each, in interleaved blocks (so machine noise hits all alike). Prints calls per second, the ratio
full/baseline (target >= 0.8), the cost ratio full/no-op (target <= 2) and OBO exchanges per 1,000 calls from one
user (target 1). Run it from the checkout's top folder (the workers import their apps from ``benchmarks``).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Annotated, Any

import httpx2
import msal
import requests
from fastmcp import Client, Context, FastMCP
from fastmcp.client import StreamableHttpTransport
from pydantic import Field, SecretStr
from starlette.types import ASGIApp

from benchmarks._common import temporary_stack
from console.core.auth.device_page import complete_device_page
from mcp_server.server.documents import DocumentSearch
from mcp_server.server.multiworker import CONFIG_ENV, WorkerPool, config_from_json
from mcp_server.server.steps import STEPS, StepTrace
from mcp_server.stack import LocalStack

VARIANTS = ("full", "base", "noop", "progress")
WARM_UP = 10  # untimed calls per variant first: connections, the OBO cache, the index field list


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


def baseline_app() -> ASGIApp:
    """Benchmark-only worker app (uvicorn factory): the same tool with no token validation, searching without a user
    token on the same async search client, reporting the same three steps as progress notifications."""
    config = config_from_json(os.environ[CONFIG_ENV])
    search = DocumentSearch(config)
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
        fields = list(search.fields())
        results = await search._aio().search(search_text=query, select=fields, top=top)
        documents = [{f: r.get(f) for f in fields} | {"score": r.get("@search.score")} async for r in results]
        await trace.record("search", "ok", (time.perf_counter() - started) * 1000, hits=len(documents))
        return {"documents": documents, "count": len(documents), "query": query}

    return mcp.http_app(path="/mcp", stateless_http=True)


def noop_app() -> ASGIApp:
    """Benchmark-only: MCP's own cost per call, a tool that does nothing (a worker app factory)."""
    mcp = FastMCP("noop")

    @mcp.tool(name="noop")
    async def noop() -> dict[str, Any]:
        return {}

    @mcp.tool(name="progress")
    async def progress(ctx: Context) -> dict[str, Any]:
        """MCP's own cost of the three step notifications: the same three progress messages, nothing else."""
        trace = StepTrace(ctx)
        for step in STEPS:
            await trace.record(step, "skipped", 0.0)
        return {}

    return mcp.http_app(path="/mcp", stateless_http=True)


async def timed_block(
    client: Client, calls: int, tool: str = "get_documents", latencies: list[float] | None = None
) -> tuple[float, int]:
    started = time.perf_counter()
    documents = 0
    arguments: dict[str, Any] = {"query": "*"} if tool == "get_documents" else {}
    for _ in range(calls):
        call_started = time.perf_counter()
        result = await client.call_tool(tool, arguments)
        if latencies is not None:
            latencies.append(time.perf_counter() - call_started)
        documents += len((result.structured_content or {}).get("documents", []))
    return time.perf_counter() - started, documents


async def measure(urls: dict[str, str], token: str, calls: int, block: int) -> dict[str, float]:
    full = Client(StreamableHttpTransport(urls["full"], headers={"Authorization": f"Bearer {token}"}))
    base = Client(StreamableHttpTransport(urls["base"]))
    noop = Client(StreamableHttpTransport(urls["noop"]))
    variants = (
        ("full", full, "get_documents"),
        ("base", base, "get_documents"),
        ("noop", noop, "noop"),
        ("progress", noop, "progress"),
    )
    totals = dict.fromkeys(VARIANTS, 0.0)
    docs = dict.fromkeys(VARIANTS, 0)
    latencies: dict[str, list[float]] = {name: [] for name in VARIANTS}
    async with full, base, noop:
        for _, client, tool in variants:  # warm-up: connections, the OBO cache, the index field list
            await timed_block(client, WARM_UP, tool)
        done = 0
        while done < calls:
            n = min(block, calls - done)
            for name, client, tool in variants:
                seconds, count = await timed_block(client, n, tool, latencies[name])
                totals[name] += seconds
                docs[name] += count
            done += n
    # Medians as well as totals: on a shared machine a burst of other work inflates a block's total, rarely the median.
    medians = {f"{name}_p50": statistics.median(values) * 1000 for name, values in latencies.items()}
    return medians | {
        "full_cps": calls / totals["full"],
        "base_cps": calls / totals["base"],
        "noop_cps": calls / totals["noop"],
        "progress_cps": calls / totals["progress"],
        "full_docs": docs["full"] / calls,
        "base_docs": docs["base"] / calls,
    }


def _measure_in_process(urls: dict[str, str], token: str, calls: int, block: int) -> dict[str, float]:
    """The client in a process of its own (as a real client is): its work never holds the GIL of a server."""
    return asyncio.run(measure(urls, token, calls, block))


def run(stack: LocalStack, calls: int, block: int) -> tuple[dict[str, float], float]:
    """Each server in a worker process of its own (one worker each), the client in another, the local identity
    platform and search service in this one: no variant shares an interpreter with the client or the search
    service, so the comparison is the same for all three."""
    token = sign_in(stack, "alice")
    config = stack.server_config(port=0)
    with (
        WorkerPool(config, 1) as full,
        WorkerPool(config, 1, app="benchmarks.bench_server:baseline_app") as base,
        WorkerPool(config, 1, app="benchmarks.bench_server:noop_app") as noop,
        ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as client,
    ):
        urls = {
            name: f"{pool.base_url}/mcp" for name, pool in (("full", full), ("base", base), ("noop", noop))
        }
        result = client.submit(_measure_in_process, urls, token, calls, block).result()
        exchanges = obo_exchanges(full.base_url)
    return result, exchanges


def obo_exchanges(base_url: str) -> float:
    text = httpx2.get(f"{base_url}/metrics", trust_env=False, timeout=10.0).text
    for line in text.splitlines():
        if line.startswith("obo_exchanges_total") and 'outcome="started"' in line:
            return float(line.split()[-1])
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=1000, help="calls per variant (default 1000)")
    parser.add_argument("--block", type=int, default=100, help="calls per interleaved block (default 100)")
    args = parser.parse_args()
    with temporary_stack() as stack:
        result, exchanges = run(stack, args.calls, args.block)
    total_calls = args.calls + WARM_UP
    ratio = result["full_cps"] / result["base_cps"]
    print(
        f"get_documents, {args.calls} calls each, interleaved blocks of {args.block}, one client session each"
    )
    rows = (
        ("full", "full path (validate + OBO cache + trimmed search)"),
        ("base", "baseline (no validation, no user token)"),
        ("noop", "no-op FastMCP tool (same transport)"),
        ("progress", "no-op tool sending the three step notifications"),
    )
    for name, label in rows:
        documents = f", {result[name + '_docs']:.0f} documents/call" if name + "_docs" in result else ""
        print(
            f"  {label + ':':<51}{result[name + '_cps']:8.1f} calls/s ({1000 / result[name + '_cps']:.2f} ms/call, "
            f"median {result[name + '_p50']:.2f} ms{documents})"
        )
    print(f"  ratio full/baseline: {ratio:.2f}  (target >= 0.8)")
    print(
        f"  cost ratio full/no-op (ms per call): {result['noop_cps'] / result['full_cps']:.2f}, "
        f"of medians {result['full_p50'] / result['noop_p50']:.2f}  (target <= 2)"
    )
    print(
        f"  cost ratio full/no-op with the three notifications: {result['progress_cps'] / result['full_cps']:.2f}, "
        f"of medians {result['full_p50'] / result['progress_p50']:.2f}"
    )
    print(
        f"  OBO exchanges per 1,000 calls from one user: {exchanges * 1000 / total_calls:.2f} "
        f"({exchanges:.0f} exchange(s) in {total_calls} calls; target 1)"
    )


if __name__ == "__main__":
    main()
