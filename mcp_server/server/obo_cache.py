"""The OBO token cache behind one small interface: per process in memory (``OboCache``, the default), or shared by
every worker and replica in Redis (``RedisOboCache``), with the per-process cache in front of it.

Redis entries are secrets: the entry's name is an HMAC of the validated caller's (tid, oid, scope), so names reveal
no user; its value is the token sealed with AES-GCM under a key from settings, bound to that name (an entry copied
or planted under another name does not open), and its claims must name the same tenant and user as the key. A
value that does not open is rejected and deleted, never served. Entries expire with the reuse margin (five minutes
before the token). One exchange per user across processes: a Redis lock (``SET NX PX``) with a timeout; the
others wait for the entry. If Redis goes away the server keeps serving from the per-process cache, exchanging
itself when it must, and says so (``/healthz`` degraded, the ``obo_cache_degraded`` gauge); it never skips the
exchange and never reads another user's entry.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import redis.asyncio as aioredis
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import SecretStr
from redis.exceptions import RedisError

from mcp_server.errors import UserError
from mcp_server.server.config import ServerConfig
from mcp_server.server.metrics import ServerMetrics
from mcp_server.server.obo import CacheKey, CacheStatus, OboCache, OboToken

log = logging.getLogger(__name__)

KEY_PREFIX = "obo-console:obo:"
HEALTH_PING_TIMEOUT = 0.3  # seconds; under health.PROBE_TIMEOUT
_VERSION = b"\x01"
_NONCE = 12
Exchange = Callable[[], Awaitable[OboToken]]
# Releases the lock only if this process still holds it (it may have expired and been taken by another).
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


class OboTokenCache(Protocol):
    """What the tool needs of an OBO cache (memory or Redis)."""

    async def get(self, key: CacheKey, exchange: Exchange) -> tuple[OboToken, CacheStatus]: ...

    def clear(self) -> None: ...

    def __len__(self) -> int: ...

    async def health(self) -> dict[str, Any]: ...

    async def aclose(self) -> None: ...


class EntryCipher:
    """Names and seals Redis entries with two keys derived from the configured one (32 bytes, base64url)."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the OBO cache key must be 32 bytes")
        self._seal_key = AESGCM(hmac.new(key, b"obo-console obo-cache seal", hashlib.sha256).digest())
        self._name_key = hmac.new(key, b"obo-console obo-cache name", hashlib.sha256).digest()

    @classmethod
    def from_setting(cls, value: SecretStr) -> EntryCipher:
        text = value.get_secret_value().strip()
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except (ValueError, binascii.Error):
            raw = b""
        if len(raw) != 32:
            raise UserError(
                "OBO_CONSOLE_OBO_CACHE_KEY is not 32 bytes in base64url.",
                hint='Make one with: python -c "import base64, os; '
                'print(base64.urlsafe_b64encode(os.urandom(32)).decode())"',
            )
        return cls(raw)

    def name(self, key: CacheKey) -> str:
        digest = hmac.new(self._name_key, "\x00".join(key).encode(), hashlib.sha256).hexdigest()
        return KEY_PREFIX + digest

    def seal(self, name: str, token: OboToken) -> bytes:
        plain = json.dumps(
            {"t": token.access_token.get_secret_value(), "e": token.expires_at, "c": token.claims},
            separators=(",", ":"),
        ).encode()
        nonce = secrets.token_bytes(_NONCE)
        return _VERSION + nonce + self._seal_key.encrypt(nonce, plain, name.encode())

    def open(self, name: str, blob: bytes, key: CacheKey) -> OboToken | None:
        """The token, or None when the value was not sealed by this key under this name for this user."""
        if len(blob) <= 1 + _NONCE or blob[:1] != _VERSION:
            return None
        try:
            plain = self._seal_key.decrypt(blob[1 : 1 + _NONCE], blob[1 + _NONCE :], name.encode())
            value = json.loads(plain)
            token = OboToken(
                access_token=SecretStr(str(value["t"])), expires_at=float(value["e"]), claims=dict(value["c"])
            )
        except (InvalidTag, ValueError, KeyError, TypeError):
            return None
        tid, oid = key[0], key[1]  # (tid, oid, scope, ...): the rest is what the token is for
        if str(token.claims.get("tid")) != tid or str(token.claims.get("oid")) != oid:
            return None  # defence in depth: a sealed token of another user is never served
        return token


class RedisOboCache:
    """The shared cache: the per-process ``OboCache`` in front (hits never leave the process), Redis behind it."""

    def __init__(
        self,
        url: str,
        cipher: EntryCipher,
        metrics: ServerMetrics,
        *,
        margin: float = 300.0,
        lock_timeout: float = 10.0,
        op_timeout: float = 0.5,
        retry_after: float = 2.0,
        wait_step: float = 0.02,
    ) -> None:
        self.url = url
        self.cipher = cipher
        self.metrics = metrics
        self.margin = margin
        self.lock_timeout = lock_timeout
        self.op_timeout = op_timeout
        self.retry_after = retry_after
        self.wait_step = wait_step
        self.local = OboCache(margin=margin)
        self.degraded = False
        self.last_error: str | None = None
        self._retry_at = 0.0
        self._client: aioredis.Redis | None = None
        metrics.obo_cache_degraded.set(0)

    # -- the interface --------------------------------------------------------------------------------------
    async def get(self, key: CacheKey, exchange: Exchange) -> tuple[OboToken, CacheStatus]:
        shared: list[CacheStatus] = []

        async def fetch() -> OboToken:
            token, status = await self._shared(key, exchange)
            shared.append(status)
            return token

        token, status = await self.local.get(key, fetch)
        if status == "miss" and shared and shared[0] != "miss":
            status = shared[0]  # found in Redis: another process exchanged
        return token, status

    def clear(self) -> None:
        self.local.clear()

    def __len__(self) -> int:
        return len(self.local)

    async def health(self) -> dict[str, Any]:
        try:
            # Within the health probe's 0.5 s deadline: a black-holed Redis makes the part degraded, not "no answer".
            await asyncio.wait_for(self._redis().ping(), HEALTH_PING_TIMEOUT)
            self._recovered()
        except (TimeoutError, RedisError, OSError) as exc:
            self._degrade(exc)
        part: dict[str, Any] = {"ready": True, "backend": "redis", "degraded": self.degraded}
        if self.degraded:
            part["error"] = f"{self.last_error}; serving from the per-process cache"
        return part

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    # -- Redis ----------------------------------------------------------------------------------------------
    def _redis(self) -> aioredis.Redis:
        """Made on first use on the serving loop (its connections belong to that loop)."""
        if self._client is None:
            self._client = aioredis.Redis.from_url(
                self.url, socket_timeout=self.op_timeout, socket_connect_timeout=self.op_timeout
            )
        return self._client

    async def _shared(self, key: CacheKey, exchange: Exchange) -> tuple[OboToken, CacheStatus]:
        if self.degraded and time.monotonic() < self._retry_at:
            return await exchange(), "miss"  # Redis is away: this process exchanges for itself
        name = self.cipher.name(key)
        try:
            return await self._single_flight(name, key, exchange)
        except RedisError as exc:  # raised before any exchange (after it, Redis errors are absorbed below)
            self._degrade(exc)
            return await exchange(), "miss"

    async def _single_flight(
        self, name: str, key: CacheKey, exchange: Exchange
    ) -> tuple[OboToken, CacheStatus]:
        client = self._redis()
        found = await self._read(name, key)
        if found is not None:
            return found, "hit"
        lock, owner = name + ":lock", secrets.token_hex(16)
        deadline = time.monotonic() + self.lock_timeout
        while time.monotonic() < deadline:
            if await client.set(lock, owner, nx=True, px=int(self.lock_timeout * 1000)):
                try:
                    found = await self._read(name, key)  # written while this process waited for the lock
                    if found is not None:
                        return found, "hit"
                    token = await exchange()
                    await self._write(name, token)
                    return token, "miss"
                finally:
                    await self._release(lock, owner)
            await asyncio.sleep(self.wait_step)  # another process is exchanging for this user: wait for it
            found = await self._read(name, key)
            if found is not None:
                return found, "joined"
        # The lock holder took longer than the lock's timeout (or died): exchange here rather than wait forever.
        return await exchange(), "miss"

    async def _read(self, name: str, key: CacheKey) -> OboToken | None:
        blob = await self._redis().get(name)
        self._recovered()
        if blob is None:
            return None
        token = self.cipher.open(name, blob if isinstance(blob, bytes) else blob.encode(), key)
        if token is None or time.time() >= token.expires_at - self.margin:
            if token is None:  # tampered, planted or sealed with another key: never served
                self.metrics.obo_cache_rejected.inc()
                log.warning("OBO cache: rejected a Redis entry that does not open for its user; deleted it")
            await self._redis().delete(name)
            return None
        return token

    async def _write(self, name: str, token: OboToken) -> None:
        ttl_ms = int((token.expires_at - self.margin - time.time()) * 1000)
        if ttl_ms <= 0:
            return
        try:
            await self._redis().set(name, self.cipher.seal(name, token), px=ttl_ms)
        except (RedisError, OSError) as exc:  # the token is good: serve it, only sharing failed
            self._degrade(exc)

    async def _release(self, lock: str, owner: str) -> None:
        try:
            await self._redis().eval(_RELEASE, 1, lock, owner)
        except (RedisError, OSError) as exc:
            self._degrade(exc)

    def _degrade(self, exc: BaseException) -> None:
        self._retry_at = time.monotonic() + self.retry_after
        self.last_error = f"Redis at the OBO cache URL is unreachable ({type(exc).__name__})"
        self.metrics.obo_cache_redis_errors.inc()
        if not self.degraded:
            self.degraded = True
            self.metrics.obo_cache_degraded.set(1)
            log.error("OBO cache DEGRADED: %s; serving from the per-process cache", self.last_error)

    def _recovered(self) -> None:
        if self.degraded:
            self.degraded = False
            self.metrics.obo_cache_degraded.set(0)
            log.warning("OBO cache: Redis is back; the shared cache is in use again")


def build_obo_cache(config: ServerConfig, metrics: ServerMetrics) -> OboTokenCache:
    """The cache the configuration chooses; Redis without a valid key is refused (a ``UserError``) at start."""
    if config.obo_cache == "memory":
        return OboCache(margin=config.obo_expiry_margin)
    if config.obo_cache_key is None or not config.obo_cache_key.get_secret_value() or not config.redis_url:
        raise UserError(
            "The Redis OBO cache needs REDIS_URL and OBO_CONSOLE_OBO_CACHE_KEY.",
            hint="Set both (see docs/server.md, OBO cache), or OBO_CONSOLE_OBO_CACHE=memory.",
        )
    cipher = EntryCipher.from_setting(config.obo_cache_key)
    return RedisOboCache(config.redis_url, cipher, metrics, margin=config.obo_expiry_margin)
