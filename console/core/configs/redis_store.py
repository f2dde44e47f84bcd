"""Configs in Redis: key ``agent|<key>`` holds the config JSON (see docs/contracts.md, config store settings).

Live reload listens to keyspace notifications for ``agent|*`` (enabled with CONFIG SET when the server allows
it) and, always, to a pub/sub channel that writers through this store publish changed keys on — so reload
works on managed Redis where CONFIG is disabled. When Redis goes away, the last good configs keep serving;
the watcher reconnects with backoff and resyncs everything once Redis is back.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from console.core.configs.catalog import RawConfig
from console.core.configs.model import REDIS_KEY_PREFIX, redis_source
from console.core.configs.store import ReconcilingStore
from console.core.configs.validation import ValidationContext
from mcp_server.errors import UserError

log = logging.getLogger(__name__)

DEFAULT_CHANNEL = "obo-console:configs"


def masked_url(url: str) -> str:
    """The URL without its password, for messages and the backend label."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return urlunsplit((parts.scheme, f"{user}:***@{host}", parts.path, parts.query, parts.fragment))


def connect(url: str, *, timeout: float = 2.0) -> Any:
    """A client that fails fast (no silent retries), so outages surface where they can be reported."""

    return redis.Redis.from_url(
        url,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=5,
    )


def redis_errors() -> tuple[type[BaseException], ...]:
    return (redis.ConnectionError, redis.TimeoutError, OSError)


def unreachable(url: str, exc: BaseException) -> UserError:
    return UserError(
        f"Redis at {masked_url(url)} is unreachable ({exc}).",
        hint="Start Redis, set REDIS_URL to where it runs, or set USE_REDIS=false to use configs/*.json.",
    )


def read_configs(client: Any, prefix: str = REDIS_KEY_PREFIX) -> dict[str, RawConfig]:
    """Every ``agent|*`` key and its value."""
    names = sorted(client.scan_iter(match=f"{_glob_escape(prefix)}*", count=500))
    if not names:
        return {}
    values = client.mget(names)
    raw: dict[str, RawConfig] = {}
    for name, value in zip(names, values, strict=True):
        if value is None:  # deleted between SCAN and MGET
            continue
        key = _decode(name)[len(prefix) :]
        raw[key] = RawConfig(key, redis_source(key), value)
    return raw


def _glob_escape(text: str) -> str:
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


def _decode(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def enable_keyspace_events(client: Any) -> bool:
    """Make sure the server emits keyspace events for string writes and generic commands (K, $, g, x),
    keeping whatever flags are already set. False when CONFIG is not allowed (managed Redis)."""

    try:
        current = _decode(client.config_get("notify-keyspace-events").get("notify-keyspace-events", ""))
        wanted = set(current) | {"K"}
        if "A" not in wanted:
            wanted |= {"$", "g", "x"}
        if set(current) != wanted:
            client.config_set("notify-keyspace-events", "".join(sorted(wanted)))
        return True
    except redis.ResponseError:
        return False


class RedisStore(ReconcilingStore):
    def __init__(
        self,
        url: str,
        ctx: ValidationContext,
        *,
        channel: str = DEFAULT_CHANNEL,
        prefix: str = REDIS_KEY_PREFIX,
        backoff_initial: float = 0.05,
        backoff_max: float = 2.0,
    ) -> None:
        self.url = url
        self.backend = f"redis:{masked_url(url)}"
        super().__init__(ctx)
        self.channel = channel
        self.prefix = prefix
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self._client = connect(url)
        self.online = True
        self.keyspace_events = False  # whether the watcher gets keyspace notifications (else channel only)

    # -- backend hooks -------------------------------------------------------------------------------------
    def _read_all(self) -> dict[str, RawConfig]:
        try:
            return read_configs(self._client, self.prefix)
        except redis_errors() as exc:
            raise unreachable(self.url, exc) from exc

    def _source_for(self, key: str) -> str:
        return redis_source(key)

    def _write(self, key: str, text: str | bytes) -> RawConfig:
        try:
            self._client.set(self.prefix + key, text)
            self._client.publish(self.channel, key)
        except redis_errors() as exc:
            raise unreachable(self.url, exc) from exc
        return RawConfig(key, redis_source(key), text)

    def _remove(self, key: str) -> None:
        try:
            self._client.delete(self.prefix + key)
            self._client.publish(self.channel, key)
        except redis_errors() as exc:
            raise unreachable(self.url, exc) from exc

    # -- live reload ---------------------------------------------------------------------------------------
    def _start_watching(self) -> None:
        self._start_watcher("configs-redis-watcher")

    def wait_until_watching(self, timeout: float = 5.0) -> bool:
        """True once the watcher is subscribed (after a reconnect too)."""
        return self._ready.wait(timeout)

    def _keys_from(self, messages: Iterable[dict[str, Any]]) -> set[str]:
        keys: set[str] = set()
        for message in messages:
            channel = _decode(message.get("channel", b""))
            if message.get("type") == "pmessage":
                name = channel.split(":", 1)[1] if ":" in channel else ""
                if name.startswith(self.prefix):
                    keys.add(name[len(self.prefix) :])
            elif message.get("type") == "message":
                keys.add(_decode(message.get("data", b"")))
        return {key for key in keys if key}

    def _watch_loop(self) -> None:
        delay = self.backoff_initial
        was_down = False
        errors = redis_errors()
        while not self._stop.is_set():
            client = connect(self.url)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                self.keyspace_events = enable_keyspace_events(client)
                db = client.connection_pool.connection_kwargs.get("db", 0)
                pubsub.psubscribe(f"__keyspace@{db}__:{_glob_escape(self.prefix)}*")
                pubsub.subscribe(self.channel)
                # Subscribed first, then read: nothing written in between can be missed.
                self._apply(
                    read_configs(client, self.prefix), replace=True, reason="resync" if was_down else "change"
                )
                if was_down:
                    self.online = True
                    self._notify("reconnected", f"Redis at {masked_url(self.url)} is back; configs resynced")
                was_down = False
                delay = self.backoff_initial
                self._ready.set()
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=0.2)
                    if message is None:
                        continue
                    batch = [message]
                    while (more := pubsub.get_message(timeout=0)) is not None:
                        batch.append(more)
                    keys = sorted(self._keys_from(batch))
                    if not keys:
                        continue
                    values = client.mget([self.prefix + key for key in keys])
                    updates = {
                        key: None if value is None else RawConfig(key, redis_source(key), value)
                        for key, value in zip(keys, values, strict=True)
                    }
                    self._apply(updates, replace=False, reason="change")
            except errors as exc:
                self._ready.clear()
                if not was_down and not self._stop.is_set():
                    was_down = True
                    self.online = False
                    self._notify(
                        "disconnected",
                        f"Redis at {masked_url(self.url)} is unreachable ({exc}); serving the last good configs "
                        "and reconnecting",
                    )
                self._stop.wait(delay)
                delay = min(delay * 2, self.backoff_max)
            except Exception:  # a bug in one reload must not end live reload
                log.exception("redis config watcher failed; restarting it")
                self._stop.wait(delay)
            finally:
                for closeable in (pubsub, client):
                    with contextlib.suppress(Exception):
                        closeable.close()

    def close(self) -> None:
        super().close()
        with contextlib.suppress(Exception):
            self._client.close()
