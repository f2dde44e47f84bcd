"""The Redis store against a real redis-server: push, live reload (keyspace notifications, and the pub/sub
fallback where CONFIG is disabled), invalid changes keeping the last good agent, Redis going away and back."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from console.core.configs.live import LiveConfigs
from console.core.configs.redis_store import RedisStore, masked_url
from console.core.configs.schema import SHIPPED_CONFIGS_DIR
from console.core.configs.store import ConfigRejected
from console.core.configs.validation import ValidationContext
from console.core.events import EventBus, Notice
from mcp_server.errors import UserError
from tests.configs.conftest import agent
from tests.fixtures.redis import RedisServer

TIMEOUT = 10.0


def shipped() -> dict[str, bytes]:
    return {p.stem: p.read_bytes() for p in sorted(SHIPPED_CONFIGS_DIR.glob("*.json"))}


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_url)
    yield c
    c.close()


@pytest.fixture
def live(redis_url: str, ctx: ValidationContext, client: redis.Redis) -> Iterator[LiveConfigs]:
    store = RedisStore(redis_url, ctx)
    written, refused = store.put_many(shipped())
    assert refused == {} and len(written) == 5
    configs = LiveConfigs(store)
    configs.start()
    assert store.wait_until_watching(TIMEOUT)
    try:
        yield configs
    finally:
        configs.stop()


def test_push_writes_keys_and_publishes(redis_url: str, ctx: ValidationContext, client: redis.Redis) -> None:
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe("obo-console:configs")
    store = RedisStore(redis_url, ctx)
    try:
        written, refused = store.put_many(shipped())
    finally:
        store.close()
    assert refused == {}
    assert sorted(e.key for e in written) == ["conversation", "documents", "news", "simulator", "weather"]
    assert sorted(client.keys("agent|*")) == [f"agent|{k}".encode() for k in sorted(shipped())]
    assert json.loads(client.get("agent|weather"))["name"] == "Weather Agent"
    published: set[str] = set()
    deadline = time.monotonic() + TIMEOUT
    while published != set(shipped()) and time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.5)  # None also for the (ignored) subscribe confirmation
        if message is not None:
            published.add(message["data"].decode())
    assert published == set(shipped())
    pubsub.close()


def test_push_refuses_bad_config_without_touching_the_key(
    live: LiveConfigs, client: redis.Redis, ctx: ValidationContext, redis_url: str
) -> None:
    before = client.get("agent|weather")
    store = RedisStore(redis_url, ctx)
    try:
        store.load_all()
        with pytest.raises(ConfigRejected, match=r"\$\.tools\[0\]"):
            store.put(agent("Weather", ["get_wether"]), "weather")
        # Several at once: the good one is written, the bad one (and what depends on it) refused.
        written, refused = store.put_many(
            {
                "helper": json.dumps(agent("Helper", ["get_current_time"])),
                "broken": "{not json",
                "user": json.dumps(agent("User", handoffs=["broken"])),
            }
        )
    finally:
        store.close()
    assert client.get("agent|weather") == before
    assert [e.key for e in written] == ["helper"]
    assert sorted(refused) == ["broken", "user"]
    assert "invalid JSON at line 1, column 2" in str(refused["broken"][0])
    assert "refers to agent 'broken', which is invalid" in str(refused["user"][0])
    assert client.get("agent|broken") is None and client.get("agent|user") is None


def test_live_reload_via_keyspace_notifications(live: LiveConfigs, client: redis.Redis) -> None:
    store = live.store
    assert isinstance(store, RedisStore) and store.keyspace_events
    document = json.loads(client.get("agent|weather"))
    document["name"] = "Weather from Redis"
    client.set("agent|weather", json.dumps(document))  # a plain SET by someone else, no publish
    assert live.wait_for(lambda s: s.get("weather").name == "Weather from Redis", TIMEOUT)
    assert live.last_change.updated == {"weather"}
    assert live.get("weather").source == "redis:agent|weather"

    client.set("agent|extra", json.dumps(agent("Extra", ["get_current_date"])))
    assert live.wait_for(lambda s: s.get("extra") is not None, TIMEOUT)
    client.delete("agent|extra")
    assert live.wait_for(lambda s: "extra" not in s.entries, TIMEOUT)


def test_invalid_change_keeps_last_good_agent(live: LiveConfigs, client: redis.Redis) -> None:
    good = live.get("weather")
    client.set("agent|weather", json.dumps(agent("Weather", ["get_wether"])))
    assert live.wait_for(lambda s: s.entries["weather"].status == "invalid", TIMEOUT)
    entry = live.current.entries["weather"]
    assert entry.serving == good
    assert str(entry.issues[0]) == (
        "redis agent|weather: $.tools[0]: 'get_wether' is not a known tool (did you mean 'get_current_weather'?)"
    )
    # The conversation agent, which uses weather, is untouched.
    assert live.current.entries["conversation"].status == "valid"
    client.set("agent|weather", good.to_json())
    assert live.wait_for(lambda s: s.entries["weather"].status == "valid", TIMEOUT)


def test_pubsub_fallback_when_config_is_disabled(
    redis_server_factory: Callable[..., RedisServer], ctx: ValidationContext
) -> None:
    server = redis_server_factory(["--rename-command", "CONFIG", ""])  # like managed Redis
    watcher = LiveConfigs(RedisStore(server.url, ctx))
    watcher.start()
    writer = RedisStore(server.url, ctx)
    try:
        assert watcher.store.wait_until_watching(TIMEOUT)
        assert watcher.store.keyspace_events is False
        writer.load_all()
        writer.put(agent("Pushed", ["get_current_time"]), "pushed")  # `configs push` path: SET + PUBLISH
        assert watcher.wait_for(lambda s: s.get("pushed") is not None, TIMEOUT)
        assert watcher.get("pushed").name == "Pushed"
    finally:
        writer.close()
        watcher.stop()


def test_redis_going_away_and_coming_back(
    redis_server_factory: Callable[..., RedisServer], ctx: ValidationContext
) -> None:
    server = redis_server_factory()
    seed = redis.Redis.from_url(server.url)
    for key, data in shipped().items():
        seed.set(f"agent|{key}", data)
    seed.close()
    bus = EventBus()
    notices: list[Notice] = []
    bus.subscribe(lambda e: notices.append(e) if isinstance(e, Notice) else None)
    store = RedisStore(server.url, ctx, backoff_initial=0.05, backoff_max=0.3)
    live = LiveConfigs(store, bus=bus)
    live.start()
    try:
        assert store.wait_until_watching(TIMEOUT)
        version = live.version
        server.stop()
        assert live.wait_for_change(version, TIMEOUT)
        assert live.online is False and live.last_change.reason == "disconnected"
        assert any(n.level == "error" and "unreachable" in n.message for n in notices)
        # The last good configs keep serving while Redis is away.
        assert sorted(live.current.configs) == ["conversation", "documents", "news", "simulator", "weather"]
        assert live.get("weather").name == "Weather Agent"

        server.start()  # same port, same data (saved at shutdown)
        again = redis.Redis.from_url(server.url)
        document: dict[str, Any] = json.loads(again.get("agent|weather"))
        document["name"] = "Weather after the outage"
        again.set("agent|weather", json.dumps(document))
        again.close()
        assert live.wait_for(lambda s: s.get("weather").name == "Weather after the outage", TIMEOUT)
        assert live.wait_for(lambda s: live.online, TIMEOUT)
        assert any(n.level == "info" and "is back" in n.message for n in notices)
        assert sorted(live.current.configs) == ["conversation", "documents", "news", "simulator", "weather"]
    finally:
        live.stop()


def test_unreachable_redis_is_a_clear_error(ctx: ValidationContext, tmp_path: Path) -> None:
    server = RedisServer(tmp_path)  # never started: nothing listens on its port
    with pytest.raises(UserError, match="unreachable") as error:
        RedisStore(server.url, ctx).load_all()
    assert "USE_REDIS=false" in str(error.value)


def test_password_is_masked() -> None:
    assert masked_url("redis://user:s3cret@host:6380/1") == "redis://user:***@host:6380/1"
    assert (
        "s3cret"
        not in RedisStore(
            "redis://:s3cret@127.0.0.1:1/0", ValidationContext(frozenset(), frozenset())
        ).backend
    )
