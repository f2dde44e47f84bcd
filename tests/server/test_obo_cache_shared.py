"""The Redis OBO cache against a real redis-server: two caches stand for two processes (each its own per-process
cache), many concurrent calls for three users → one exchange per user in all, each user only their own token; the
memory backend stays the default."""

from __future__ import annotations

import asyncio
import socket
from collections import Counter

from mcp_server.server.health import Health
from mcp_server.server.metrics import ServerMetrics
from mcp_server.server.obo import OboCache
from mcp_server.server.obo_cache import EntryCipher, RedisOboCache, build_obo_cache
from mcp_server.stack import LocalStack
from tests.server.workers_helpers import CACHE_KEY, Exchanges, cache_key

USERS = ("alice", "bob", "carol")


async def test_two_processes_many_concurrent_calls_one_exchange_per_user(
    local_stack: LocalStack, redis_url: str
) -> None:
    caches = [
        RedisOboCache(redis_url, EntryCipher.from_setting(CACHE_KEY), ServerMetrics()) for _ in range(2)
    ]
    exchanges = {login: Exchanges(local_stack, login) for login in USERS}
    calls = [(cache, login) for _ in range(5) for cache in caches for login in USERS]
    try:
        results = await asyncio.gather(
            *(cache.get(cache_key(local_stack, login), exchanges[login]) for cache, login in calls)
        )
    finally:
        for cache in caches:
            await cache.aclose()
    assert {login: e.count for login, e in exchanges.items()} == {"alice": 1, "bob": 1, "carol": 1}
    for (_, login), (token, _) in zip(calls, results, strict=True):
        assert token.claims["oid"] == cache_key(local_stack, login)[1]
    statuses = Counter(status for _, status in results)
    assert statuses["miss"] == 3 and sum(statuses.values()) == len(calls)


async def test_redis_unreachable_serves_from_the_process_and_reports_degraded(
    local_stack: LocalStack,
) -> None:
    metrics = ServerMetrics()
    cache = RedisOboCache("redis://127.0.0.1:9/0", EntryCipher.from_setting(CACHE_KEY), metrics)
    alice = Exchanges(local_stack, "alice")
    try:
        token, status = await cache.get(cache_key(local_stack, "alice"), alice)
        again, second = await cache.get(cache_key(local_stack, "alice"), alice)
        health = await cache.health()
    finally:
        await cache.aclose()
    assert (status, second, alice.count) == ("miss", "hit", 1)  # the per-process cache still works
    assert again.access_token.get_secret_value() == token.access_token.get_secret_value()
    assert health["degraded"] is True and health["ready"] is True
    assert health["error"].startswith("Redis at the OBO cache URL is unreachable (")
    assert metrics.value("obo_cache_degraded") == 1 and metrics.value("obo_cache_redis_errors_total") >= 1


def test_memory_is_the_default_backend(local_stack: LocalStack) -> None:
    assert isinstance(build_obo_cache(local_stack.server_config(), ServerMetrics()), OboCache)


async def test_black_holed_redis_makes_healthz_degraded_not_unavailable() -> None:
    """Redis accepts the connection and never answers: the probe still answers within its deadline, "degraded"."""
    hole = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    hole.bind(("127.0.0.1", 0))
    hole.listen(8)  # connections complete in the kernel's backlog; nothing ever reads or answers
    metrics = ServerMetrics()
    url = f"redis://127.0.0.1:{hole.getsockname()[1]}/0"
    cache = RedisOboCache(url, EntryCipher.from_setting(CACHE_KEY), metrics)
    try:
        ready, body = await Health({"obo_cache": cache.health}).report()
    finally:
        await cache.aclose()
        hole.close()
    assert (ready, body["status"]) == (True, "degraded")
    assert body["parts"]["obo_cache"]["error"].startswith("Redis at the OBO cache URL is unreachable (")
    assert metrics.value("obo_cache_degraded") == 1
