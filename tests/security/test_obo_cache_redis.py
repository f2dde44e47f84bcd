"""Hostile: the Redis OBO cache holds secrets. What is in Redis is not readable as a token (no JWT, no plaintext
token, no user id in names), and an entry that was tampered with, planted under another user's name or sealed
with another key is rejected and deleted — never served; Redis without an encryption key is refused at start."""

from __future__ import annotations

import base64
import os
import re

import pytest
import redis
from pydantic import SecretStr

from mcp_server.errors import UserError
from mcp_server.server.config import obo_cache_options
from mcp_server.server.metrics import ServerMetrics
from mcp_server.server.obo import CacheKey, CacheStatus, OboToken
from mcp_server.server.obo_cache import KEY_PREFIX, EntryCipher, RedisOboCache, build_obo_cache
from mcp_server.settings import ServerSettings
from mcp_server.stack import LocalStack
from tests.server.workers_helpers import Exchanges, cache_key

JWT_LIKE = re.compile(rb"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}")


def _key() -> SecretStr:
    return SecretStr(base64.urlsafe_b64encode(os.urandom(32)).decode())


def _cache(url: str, key: SecretStr, metrics: ServerMetrics | None = None) -> RedisOboCache:
    return RedisOboCache(url, EntryCipher.from_setting(key), metrics or ServerMetrics())


async def _get_once(
    cache: RedisOboCache, key: CacheKey, exchanges: Exchanges
) -> tuple[OboToken, CacheStatus]:
    """One lookup, then the cache closed (the next look is by a fresh cache: nothing held in its memory)."""
    try:
        return await cache.get(key, exchanges)
    finally:
        await cache.aclose()


async def test_redis_holds_no_readable_token_and_no_user_id(local_stack: LocalStack, redis_url: str) -> None:
    cache = _cache(redis_url, _key())
    tokens: list[OboToken] = []
    try:
        for login in ("alice", "bob"):
            token, status = await cache.get(cache_key(local_stack, login), Exchanges(local_stack, login))
            assert status == "miss"
            tokens.append(token)
    finally:
        await cache.aclose()
    raw = redis.Redis.from_url(redis_url)
    names = [n for n in raw.keys("*") if not n.endswith(b":lock")]
    assert len(names) == 2
    ids = [local_stack.tenant.tenant_id.encode()] + [str(t.claims["oid"]).encode() for t in tokens]
    for name in names:
        assert name.startswith(KEY_PREFIX.encode()) and not any(i in name for i in ids)
        value = raw.get(name)
        assert value is not None and not JWT_LIKE.search(value)
        for token in tokens:
            secret = token.access_token.get_secret_value().encode()
            for part in secret.split(b"."):
                assert part not in value  # neither the token nor any of its segments
            assert base64.b64encode(secret) not in value
        assert not any(i in value for i in ids)  # the sealed claims reveal no user either
    raw.close()


async def test_tampered_entry_is_rejected_and_deleted_not_served(
    local_stack: LocalStack, redis_url: str
) -> None:
    secret = _key()
    metrics = ServerMetrics()
    key = cache_key(local_stack, "alice")
    await _get_once(_cache(redis_url, secret), key, Exchanges(local_stack, "alice"))
    raw = redis.Redis.from_url(redis_url)
    name = EntryCipher.from_setting(secret).name(key)
    value = bytearray(raw.get(name) or b"")
    value[-5] ^= 0x01  # one flipped bit in the ciphertext
    raw.set(name, bytes(value))
    exchanges = Exchanges(local_stack, "alice")
    token, status = await _get_once(_cache(redis_url, secret, metrics), key, exchanges)
    assert (status, exchanges.count) == ("miss", 1)  # rejected: a real exchange, not the tampered value
    assert metrics.value("obo_cache_rejected_total") == 1
    assert raw.get(name) != bytes(value)  # deleted, then replaced by the new sealed entry
    assert token.claims["oid"] == key[1]
    raw.close()


async def test_entry_planted_under_another_users_name_is_rejected(
    local_stack: LocalStack, redis_url: str
) -> None:
    """Copying alice's (validly sealed) entry to bob's name does not give bob alice's token."""
    secret = _key()
    alice, bob = cache_key(local_stack, "alice"), cache_key(local_stack, "bob")
    alice_token, _ = await _get_once(_cache(redis_url, secret), alice, Exchanges(local_stack, "alice"))
    raw = redis.Redis.from_url(redis_url)
    cipher = EntryCipher.from_setting(secret)
    raw.set(cipher.name(bob), raw.get(cipher.name(alice)) or b"")
    metrics = ServerMetrics()
    exchanges = Exchanges(local_stack, "bob")
    token, status = await _get_once(_cache(redis_url, secret, metrics), bob, exchanges)
    assert (status, exchanges.count) == ("miss", 1)
    assert token.claims["oid"] == bob[1] != alice_token.claims["oid"]
    assert token.access_token.get_secret_value() != alice_token.access_token.get_secret_value()
    assert metrics.value("obo_cache_rejected_total") == 1
    raw.close()


async def test_entry_sealed_with_another_key_is_rejected(local_stack: LocalStack, redis_url: str) -> None:
    """A second deployment (or an attacker) with another key sharing the Redis: its entries never open here, even
    when sealed for the same name and the same user."""
    ours, theirs = _key(), _key()
    key = cache_key(local_stack, "carol")
    exchanged = await Exchanges(local_stack, "carol")()
    ours_name = EntryCipher.from_setting(ours).name(key)
    raw = redis.Redis.from_url(redis_url)
    raw.set(ours_name, EntryCipher.from_setting(theirs).seal(ours_name, exchanged))
    metrics = ServerMetrics()
    exchanges = Exchanges(local_stack, "carol")
    _, status = await _get_once(_cache(redis_url, ours, metrics), key, exchanges)
    assert (status, exchanges.count, metrics.value("obo_cache_rejected_total")) == ("miss", 1, 1)
    raw.close()


def test_redis_cache_without_a_key_is_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OBO_CONSOLE_OBO_CACHE", "redis")
    with pytest.raises(UserError) as refused:
        obo_cache_options(ServerSettings())
    assert str(refused.value).startswith(
        "OBO_CONSOLE_OBO_CACHE=redis needs OBO_CONSOLE_OBO_CACHE_KEY: OBO tokens in Redis are secrets"
    )


@pytest.mark.parametrize(
    "bad", ["", "c2hvcnQ", "not base64 at all!", base64.urlsafe_b64encode(b"x" * 31).decode()]
)
def test_a_key_that_is_not_32_bytes_is_refused(local_stack: LocalStack, bad: str) -> None:
    config = local_stack.server_config(
        obo_cache="redis", redis_url="redis://127.0.0.1:9/0", obo_cache_key=SecretStr(bad)
    )
    with pytest.raises(UserError) as refused:
        build_obo_cache(config, ServerMetrics())
    expected = (
        "The Redis OBO cache needs REDIS_URL and OBO_CONSOLE_OBO_CACHE_KEY."
        if not bad
        else "OBO_CONSOLE_OBO_CACHE_KEY is not 32 bytes in base64url."
    )
    assert str(refused.value).split("\n")[0] == expected
