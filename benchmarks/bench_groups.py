"""The price of the groups overage, measured in one run over real HTTP on loopback.

    .venv/bin/python -m benchmarks.bench_groups [--calls 200] [--block 20]

Both sides call get_documents on the same real OBO server with warm OBO caches. Baseline: a user whose token
carries ``groups`` (bob, 2 groups). Overage: erin (241 groups, the overage claims), whose memberships the server
reads from the Microsoft Graph subset on every call (its Graph token cached). Interleaved blocks, so machine noise
hits both alike. Prints calls per second, the ratio overage/baseline, and Graph requests per overage call.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from fastmcp import Client
from fastmcp.client import StreamableHttpTransport

from benchmarks._common import temporary_stack
from benchmarks.bench_server import sign_in
from mcp_server.stack import LocalStack


async def _block(url: str, token: str, calls: int) -> float:
    """Seconds for ``calls`` sequential get_documents calls on one client session."""
    transport = StreamableHttpTransport(url=url, headers={"Authorization": f"Bearer {token}"})
    async with Client(transport=transport) as client:
        started = time.perf_counter()
        for _ in range(calls):
            result = await client.call_tool("get_documents", {"query": "*"})
            assert not result.is_error
        return time.perf_counter() - started


async def _measure(stack: LocalStack, calls: int, block: int) -> None:
    url = stack.state.mcp_url if stack.state else ""
    tokens = {"baseline": sign_in(stack, "bob"), "overage": sign_in(stack, "erin")}
    for token in tokens.values():  # warm both OBO caches (search and Graph)
        await _block(url, token, 1)
    seconds = dict.fromkeys(tokens, 0.0)
    graph_before = stack.identity.graph.calls
    for _ in range(calls // block):
        for name, token in tokens.items():
            seconds[name] += await _block(url, token, block)
    graph_calls = stack.identity.graph.calls - graph_before
    done = (calls // block) * block
    rate = {name: done / s for name, s in seconds.items()}
    print(f"baseline (groups in the token): {rate['baseline']:.1f} calls/s")
    print(f"overage (groups from Graph):    {rate['overage']:.1f} calls/s")
    print(f"ratio overage/baseline: {rate['overage'] / rate['baseline']:.2f}")
    print(f"Graph requests per overage call: {graph_calls / done:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--block", type=int, default=20)
    args = parser.parse_args()
    with temporary_stack() as stack:
        asyncio.run(_measure(stack, args.calls, args.block))


if __name__ == "__main__":
    main()
