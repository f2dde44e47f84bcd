"""The price of identity in the MCP server, measured in one run over real HTTP on loopback.

    .venv/bin/python -m benchmarks.bench_server [--calls 1000] [--block 100]

Full path: get_documents on the real OBO server (JWT validation, OBO cache, permission-trimmed search with the
OBO token), warm OBO cache. Baseline, built here for the benchmark only: the same tool on a FastMCP server with no
token validation, searching the same index without a user token on the same async search client; it reports the
same three steps as progress notifications (validate and obo_exchange as "skipped"), so the ratio prices identity,
not observability. No-op: a FastMCP tool that does nothing (MCP's own cost per call, a JSON answer); and the same
no-op sending the three step notifications (MCP's own cost of the steps the console shows: an SSE answer).

Two kinds of client, as MCP has them: one that asks for the steps (a progress token on each call, what the console
sends and what FastMCP's ``Client.call_tool`` sends by default), and a quiet one that asks for none
(``ClientSession.call_tool`` without a progress callback: the server sends no notification and answers in JSON).
Each ratio compares like with like: the full path for a quiet client against the no-op; for a client asking for
the steps against the no-op sending the same three notifications.

Each server runs in a worker process of its own (one uvicorn worker, as `obo-console server --workers 1`), the client
in another and the local identity platform and search service in this one, so no variant shares an interpreter
(and its GIL) with the client or the search service: the same for all. All stateless streamable HTTP, one client
session each, in interleaved blocks (so machine noise hits all alike). Prints calls per second, the ratio
full/baseline (target >= 0.8), the cost ratios full/no-op (target <= 2) and the OBO exchanges for the one user
(target 1). Run it from the checkout's top folder (the workers import their apps from ``benchmarks``).
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

VARIANTS = ("full", "quiet", "base", "noop", "progress")
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


async def call(client: Client, tool: str, arguments: dict[str, Any], *, steps: bool) -> dict[str, Any]:
    """One tool call's structured content; ``steps``: ask for the step notifications (a progress token), else
    call as a quiet client (no progress token: no notification, a JSON answer)."""
    if steps:
        return (await client.call_tool(tool, arguments)).structured_content or {}
    return (await client.session.call_tool(tool, arguments)).structured_content or {}


async def timed_block(
    client: Client,
    calls: int,
    tool: str = "get_documents",
    latencies: list[float] | None = None,
    *,
    steps: bool = True,
) -> tuple[float, int]:
    started = time.perf_counter()
    documents = 0
    arguments: dict[str, Any] = {"query": "*"} if tool == "get_documents" else {}
    for _ in range(calls):
        call_started = time.perf_counter()
        result = await call(client, tool, arguments, steps=steps)
        if latencies is not None:
            latencies.append(time.perf_counter() - call_started)
        documents += len(result.get("documents", []))
    return time.perf_counter() - started, documents


async def measure(urls: dict[str, str], token: str, calls: int, block: int) -> dict[str, float]:
    full = Client(StreamableHttpTransport(urls["full"], headers={"Authorization": f"Bearer {token}"}))
    base = Client(StreamableHttpTransport(urls["base"]))
    noop = Client(StreamableHttpTransport(urls["noop"]))
    variants = (  # (name, client, tool, asks for the steps)
        ("full", full, "get_documents", True),
        ("quiet", full, "get_documents", False),
        ("base", base, "get_documents", True),
        ("noop", noop, "noop", False),
        ("progress", noop, "progress", True),
    )
    totals = dict.fromkeys(VARIANTS, 0.0)
    docs = dict.fromkeys(VARIANTS, 0)
    latencies: dict[str, list[float]] = {name: [] for name in VARIANTS}
    async with full, base, noop:
        for _, client, tool, steps in variants:  # warm-up: connections, the OBO cache, the index field list
            await timed_block(client, WARM_UP, tool, steps=steps)
        done = 0
        while done < calls:
            n = min(block, calls - done)
            for name, client, tool, steps in variants:
                seconds, count = await timed_block(client, n, tool, latencies[name], steps=steps)
                totals[name] += seconds
                docs[name] += count
            done += n
    # Medians as well as totals: on a shared machine a burst of other work inflates a block's total, rarely the median.
    medians = {f"{name}_p50": statistics.median(values) * 1000 for name, values in latencies.items()}
    per_second = {f"{name}_cps": calls / totals[name] for name in VARIANTS}
    documents = {f"{name}_docs": docs[name] / calls for name in ("full", "quiet", "base")}
    return medians | per_second | documents


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
    total_calls = 2 * (args.calls + WARM_UP)  # the full path's two clients: asking for the steps, and quiet
    ratio = result["full_cps"] / result["base_cps"]
    print(
        f"get_documents, {args.calls} calls each, interleaved blocks of {args.block}, one client session each"
    )
    rows = (
        ("full", "full path (validate + OBO cache + trimmed search)"),
        ("quiet", "full path, quiet client (no step notifications)"),
        ("base", "baseline (no validation, no user token)"),
        ("noop", "no-op FastMCP tool (same transport), quiet client"),
        ("progress", "no-op tool sending the three step notifications"),
    )
    for name, label in rows:
        documents = f", {result[name + '_docs']:.0f} documents/call" if name + "_docs" in result else ""
        print(
            f"  {label + ':':<51}{result[name + '_cps']:8.1f} calls/s ({1000 / result[name + '_cps']:.2f} ms/call, "
            f"median {result[name + '_p50']:.2f} ms{documents})"
        )
    print(f"  ratio full/baseline: {ratio:.2f}  (target >= 0.8)")
    for full, noop, label in (
        ("quiet", "noop", "quiet client: full path / no-op"),
        ("full", "progress", "client asking for the steps: full path / no-op sending them"),
    ):
        print(
            f"  cost ratio, {label} (ms per call): {result[noop + '_cps'] / result[full + '_cps']:.2f}, "
            f"of medians {result[full + '_p50'] / result[noop + '_p50']:.2f}  (target <= 2)"
        )
    print(
        f"  (unlike with like, for reference: full path asking for the steps / quiet no-op: "
        f"{result['noop_cps'] / result['full_cps']:.2f})"
    )
    print(f"  OBO exchanges for the one user: {exchanges:.0f} in {total_calls} calls  (target 1)")


if __name__ == "__main__":
    main()
