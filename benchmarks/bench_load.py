"""The MCP server under load, 1 and 2 worker processes, measured in one run over real HTTP on loopback.

    .venv/bin/python -m benchmarks.bench_load [--users 3] [--clients 30] [--calls 20] [--rounds 2]

U users x C concurrent client sessions x N get_documents calls each, against (a) the full path: `--workers` worker
processes (mcp_server/server/multiworker.py), token validation, the OBO cache in a real redis-server (encrypted,
one exchange per user across workers), permission-trimmed search; and (b) the no-identity baseline: the same
workers serving the same tool with no validation and no user token (search with the API key alone). Variants
alternate in rounds (so machine noise hits both alike). Prints calls/s, p50/p99 latency, OBO exchanges, results
that differ from each user's solo result (must be 0), and the ratios against the targets: full path >= 0.8x the
baseline's throughput at 30 clients; 2 workers >= 1.3x 1 worker (full path, Redis cache); exchanges = users.

The clients run in a process of their own and, like the console, ask for the step notifications on every call
(``--quiet``: they ask for none). They are lean ones (_mcp_load_client.py: one keep-alive connection each, the same
requests FastMCP's client sends): FastMCP's own client costs about as much CPU per call as the server does, and on
a 2-core machine thirty of them would leave the server workers no core to scale onto. Each user's solo result is
taken with FastMCP's ``Client``, and every loaded result is checked against it.
Run it from the checkout's top folder (the workers import the baseline app from ``benchmarks``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import multiprocessing
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from fastmcp import Client
from fastmcp.client import StreamableHttpTransport
from pydantic import SecretStr

from benchmarks._common import temporary_stack
from benchmarks._mcp_load_client import LeanMcpClient
from benchmarks.bench_server import obo_exchanges, sign_in
from mcp_server.server.multiworker import WorkerPool
from mcp_server.stack import LocalStack
from tests.fixtures.redis import RedisServer

USERS = ("alice", "bob", "carol")  # dave may not use the device-code flow


@dataclass
class Run:
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    differing: int = 0
    notifications: int = 0
    rounds: list[float] = field(default_factory=list)  # calls/s of each round

    @property
    def calls_per_second(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0


def _names(structured: dict[str, Any] | None) -> list[str]:
    return sorted(str(d.get("id")) for d in (structured or {}).get("documents", []))


async def _solo(url: str, tokens: dict[str, str | None]) -> dict[str, list[str]]:
    """Each user's result alone, before any load: what every loaded call must return for that user."""
    solo: dict[str, list[str]] = {}
    for login, token in tokens.items():
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with Client(StreamableHttpTransport(url, headers=headers)) as client:
            solo[login] = _names((await client.call_tool("get_documents", {"query": "*"})).structured_content)
    return solo


async def _load(
    url: str, tokens: dict[str, str | None], clients: int, calls: int, steps: bool, run: Run
) -> None:
    solo = await _solo(url, tokens)
    logins = list(tokens)

    async def one_client(index: int) -> None:
        login = logins[index % len(logins)]
        async with LeanMcpClient(url, tokens[login], steps=steps) as client:
            await ready.wait()
            for _ in range(calls):
                started = time.perf_counter()
                answer = await client.call_tool("get_documents", {"query": "*"})
                run.latencies.append(time.perf_counter() - started)
                run.differing += _names(answer.result.get("structuredContent")) != solo[login]
                run.notifications += answer.notifications

    ready = asyncio.Event()
    tasks = [asyncio.create_task(one_client(i)) for i in range(clients)]
    await asyncio.sleep(0.5)  # sessions opened before the clock starts
    started = time.perf_counter()
    ready.set()
    await asyncio.gather(*tasks)
    run.seconds += time.perf_counter() - started


def _load_in_process(url: str, tokens: dict[str, str | None], clients: int, calls: int, steps: bool) -> Run:
    """The clients in a process of their own: their work never holds the GIL of the local search service (which
    runs in this process, as in `obo-console server`)."""
    run = Run()
    asyncio.run(_load(url, tokens, clients, calls, steps, run))
    return run


def measure(stack: LocalStack, redis_url: str, args: argparse.Namespace) -> dict[int, dict[str, Any]]:
    """Both worker counts, both variants, all four servers up at once and loaded in turn, round after round (an
    idle server costs nothing): machine noise hits every variant alike."""
    users = USERS[: args.users]
    tokens: dict[str, str | None] = {login: sign_in(stack, login) for login in users}
    anonymous: dict[str, str | None] = {"anyone": None}
    runs = {(workers, name): Run() for workers in (1, 2) for name in ("full", "base")}
    with (
        ExitStack() as servers,
        ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as clients,
    ):
        urls: dict[tuple[int, str], str] = {}
        for workers in (1, 2):
            # Its own cache key per server: entry names differ, so each server's exchanges are its own.
            key = SecretStr(base64.urlsafe_b64encode(os.urandom(32)).decode())
            full_config = stack.server_config(
                port=0, obo_cache="redis", redis_url=redis_url, obo_cache_key=key
            )
            base_config = stack.server_config(port=0)
            full = servers.enter_context(WorkerPool(full_config, workers))
            base = servers.enter_context(
                WorkerPool(base_config, workers, app="benchmarks.bench_server:baseline_app")
            )
            urls[workers, "full"], urls[workers, "base"] = full.base_url, base.base_url
        for _ in range(args.rounds):
            for (workers, name), url in urls.items():
                who = tokens if name == "full" else anonymous
                done = clients.submit(
                    _load_in_process, f"{url}/mcp", who, args.clients, args.calls, not args.quiet
                ).result()
                run = runs[workers, name]
                run.seconds += done.seconds
                run.latencies += done.latencies
                run.differing += done.differing
                run.notifications += done.notifications
                run.rounds.append(done.calls_per_second)
        exchanges = {workers: obo_exchanges(urls[workers, "full"]) for workers in (1, 2)}
    return {
        workers: {
            "runs": {name: runs[workers, name] for name in ("full", "base")},
            "exchanges": exchanges[workers],
        }
        for workers in (1, 2)
    }


def _line(name: str, run: Run) -> str:
    steps = run.notifications / len(run.latencies) if run.latencies else 0.0
    return (
        f"    {name:<38} {run.calls_per_second:8.1f} calls/s   p50 {run.percentile(0.5):7.1f} ms   "
        f"p99 {run.percentile(0.99):7.1f} ms   differing results {run.differing}   steps/call {steps:.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=3, help=f"distinct users (1-{len(USERS)}, default 3)")
    parser.add_argument("--clients", type=int, default=30, help="concurrent client sessions (default 30)")
    parser.add_argument("--calls", type=int, default=20, help="calls per client per round (default 20)")
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds per variant (default 4)")
    parser.add_argument("--quiet", action="store_true", help="clients ask for no step notifications")
    args = parser.parse_args()
    with temporary_stack() as stack:
        redis = RedisServer(stack.home)
        redis.start()
        try:
            results = measure(stack, redis.url, args)
        finally:
            redis.stop()
    total = args.clients * args.calls * args.rounds
    print(
        f"get_documents under load: {args.users} users x {args.clients} concurrent clients x {args.calls} calls "
        f"x {args.rounds} rounds ({total} calls per variant), clients "
        + ("asking for no steps" if args.quiet else "asking for the step notifications, as the console does")
    )
    for workers, result in results.items():
        runs = result["runs"]
        print(f"  {workers} worker(s):")
        print(_line("full path (validate, Redis OBO cache)", runs["full"]))
        print(_line("baseline (no identity)", runs["base"]))
        ratio = runs["full"].calls_per_second / runs["base"].calls_per_second
        print(f"    full/baseline throughput: {ratio:.2f}  (target >= 0.8)")
        print(f"    OBO exchanges: {result['exchanges']:.0f}  (target {args.users}, one per user)")
    scale = results[2]["runs"]["full"].calls_per_second / results[1]["runs"]["full"].calls_per_second
    print(f"  2 workers / 1 worker, full path with the Redis cache: {scale:.2f}  (target >= 1.3)")
    per_round = sorted(
        two / one
        for one, two in zip(results[1]["runs"]["full"].rounds, results[2]["runs"]["full"].rounds, strict=True)
    )
    print(
        f"    round by round: median {statistics.median(per_round):.2f}, "
        f"from {per_round[0]:.2f} to {per_round[-1]:.2f} ({len(per_round)} rounds)"
    )


if __name__ == "__main__":
    main()
