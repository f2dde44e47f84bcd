"""`--workers N`: real worker processes on one port sharing the OBO cache in a real redis-server — one exchange
per user whatever worker serves the call, each user only ever their own documents, /metrics summed over the
workers, and Redis going away mid-run: still serving, still isolated, /healthz degraded."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator

import pytest

from mcp_server.server.multiworker import WorkerPool, reuse_port_socket
from mcp_server.stack import LocalStack
from tests.fixtures.redis import RedisServer
from tests.fixtures.stack import api_token
from tests.server.helpers import expected_names
from tests.server.workers_helpers import CACHE_KEY, healthz, metric, tool_call

USERS = ("alice", "bob", "carol")


@pytest.fixture
def redis_for_workers(redis_server_factory: Callable[..., RedisServer]) -> RedisServer:
    return redis_server_factory()


@pytest.fixture
def two_workers(local_stack: LocalStack, redis_for_workers: RedisServer) -> Iterator[WorkerPool]:
    config = local_stack.server_config(
        port=0, obo_cache="redis", redis_url=redis_for_workers.url, obo_cache_key=CACHE_KEY
    )
    with WorkerPool(config, 2) as pool:
        yield pool


def _interleaved(pool: WorkerPool, stack: LocalStack, rounds: int) -> set[str]:
    """Calls in the order alice, bob, carol, alice, ... each on a new connection; every result must be exactly the
    caller's own view. Returns the worker pids that answered."""
    tokens = {login: api_token(stack, login) for login in USERS}
    pids: set[str] = set()
    for _ in range(rounds):
        for login in USERS:
            pid, documents, meta = tool_call(pool.base_url, tokens[login])
            pids.add(pid)
            assert {d["name"] for d in documents} == expected_names(stack, login), (login, pid)
            user = stack.tenant.user_by_login(login)
            assert user is not None and meta["ran_as"]["oid"] == user.oid
    return pids


def test_two_workers_three_users_do_exactly_three_exchanges(
    local_stack: LocalStack, two_workers: WorkerPool
) -> None:
    pids = _interleaved(two_workers, local_stack, rounds=8)
    assert len(pids) == 2  # both workers served calls (new connection per call)
    assert metric(two_workers.base_url, "obo_exchanges_total", outcome="started") == 3
    assert metric(two_workers.base_url, "mcp_tool_calls_total", tool="get_documents", outcome="ok") == 24
    assert metric(two_workers.base_url, "obo_cache_degraded") == 0


def _wait_all_degraded(pool: WorkerPool, timeout: float = 30.0) -> dict[str, dict]:
    """/healthz from every worker until each says degraded (probes are re-run within a few seconds)."""
    answers: dict[str, dict] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid, code, body = healthz(pool.base_url)
        assert code == 200, body  # degraded still serves: never 503 for a missing shared cache
        if body["status"] == "degraded":
            answers[pid] = body
        if len(answers) == pool.workers:
            return answers
        time.sleep(0.1)
    raise AssertionError(f"not every worker reported degraded within {timeout} s: {answers}")


def test_redis_killed_mid_run_still_serving_isolated_and_degraded(
    local_stack: LocalStack, two_workers: WorkerPool, redis_for_workers: RedisServer
) -> None:
    _interleaved(two_workers, local_stack, rounds=3)
    assert metric(two_workers.base_url, "obo_exchanges_total", outcome="started") == 3
    _, code, body = healthz(two_workers.base_url)
    assert (code, body["status"], body["parts"]["obo_cache"]["degraded"]) == (200, "ready", False)

    redis_for_workers.stop()  # Redis goes away mid-run

    pids = _interleaved(two_workers, local_stack, rounds=6)  # still serving, each user only their own
    assert len(pids) == 2
    answers = _wait_all_degraded(two_workers)
    for body in answers.values():
        part = body["parts"]["obo_cache"]
        assert part["backend"] == "redis" and part["degraded"] is True and part["ready"] is True
        assert "Redis at the OBO cache URL is unreachable" in part["error"]
        assert "serving from the per-process cache" in part["error"]
    assert metric(two_workers.base_url, "obo_cache_degraded") == 1
    assert metric(two_workers.base_url, "obo_cache_redis_errors_total") >= 2
    # Without the shared cache a worker exchanges for itself at most once per user: never more than 2 x 3.
    assert 3 <= metric(two_workers.base_url, "obo_exchanges_total", outcome="started") <= 6
    _interleaved(two_workers, local_stack, rounds=2)


def test_a_worker_that_dies_degraded_leaves_no_degraded_gauge_behind(
    local_stack: LocalStack, two_workers: WorkerPool, redis_for_workers: RedisServer
) -> None:
    """obo_cache_degraded is the max over live workers: once Redis is back and the dead worker's replacement and
    the survivor are ready, /metrics says 0 (a dead worker's 1 must not outlive it)."""
    _interleaved(two_workers, local_stack, rounds=1)
    redis_for_workers.stop()
    _interleaved(two_workers, local_stack, rounds=2)
    victim = int(next(iter(_wait_all_degraded(two_workers))))
    assert metric(two_workers.base_url, "obo_cache_degraded") == 1

    os.kill(victim, signal.SIGKILL)
    redis_for_workers.start()  # the same port: the survivor recovers by itself
    ready: set[str] = set()
    deadline = time.monotonic() + 60
    while len(ready) < two_workers.workers and time.monotonic() < deadline:
        pid, code, body = healthz(two_workers.base_url)
        if code == 200 and body["status"] == "ready" and int(pid) != victim:
            ready.add(pid)
        time.sleep(0.1)
    assert len(ready) == 2, f"the replacement and the survivor did not both become ready: {ready}"
    assert metric(two_workers.base_url, "obo_cache_degraded") == 0
    _interleaved(two_workers, local_stack, rounds=1)  # and still serving each user their own


def test_a_port_another_server_listens_on_is_refused_not_shared(local_stack: LocalStack) -> None:
    """SO_REUSEPORT would let a second server join the first one's port and take half its connections: refused."""
    other = reuse_port_socket("127.0.0.1", 0)
    port = other.getsockname()[1]
    try:
        with pytest.raises(OSError) as refused:
            WorkerPool(local_stack.server_config(), 2, port=port).start()
    finally:
        other.close()
    assert str(refused.value).startswith(
        f"mcp-server: cannot listen on 127.0.0.1:{port} (Address already in use)."
    )
