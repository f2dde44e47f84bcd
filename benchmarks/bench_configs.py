"""Config change → updated config served by the store (its change notification), for the file store and the
Redis store, each against a raw baseline measured in the same run:

- files: raw watchfiles (RustNotify with the store's own step/debounce) seeing the write;
- Redis: a raw pub/sub round trip (PUBLISH → subscriber), and a raw keyspace notification (SET → subscriber).

Run: .venv/bin/python -m benchmarks.bench_configs [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import redis

from console.core.configs.catalog import ConfigChange
from console.core.configs.file_store import FileStore
from console.core.configs.open_store import validation_context
from console.core.configs.redis_store import RedisStore
from console.core.configs.schema import SHIPPED_CONFIGS_DIR
from console.core.settings import Settings
from tests.fixtures.redis import RedisServer


def stats(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[int(0.95 * (len(ordered) - 1))] * 1000


def weather_doc(i: int) -> str:
    document = json.loads((SHIPPED_CONFIGS_DIR / "weather.json").read_text())
    document["name"] = f"Weather Agent {i}"
    return json.dumps(document, indent=2)


def time_store(rounds: int, change: Callable[[int], None], store_watch: Callable[..., object]) -> list[float]:
    """Time from change(i) to the store notifying that weather is now version i."""
    arrived = threading.Event()
    expected = {"name": ""}

    def on_change(event: ConfigChange) -> None:
        config = event.configs.get("weather")
        if config is not None and config.name == expected["name"]:
            arrived.set()

    store_watch(on_change)
    samples = []
    for i in range(rounds):
        expected["name"] = f"Weather Agent {i}"
        arrived.clear()
        start = time.perf_counter()
        change(i)
        if not arrived.wait(10):
            raise RuntimeError(f"no change notification for round {i}")
        samples.append(time.perf_counter() - start)
        time.sleep(0.02)  # let the watcher settle so rounds do not merge
    return samples


def bench_files(rounds: int, ctx) -> tuple[list[float], list[float], int]:
    from watchfiles._rust_notify import RustNotify

    folder = Path(tempfile.mkdtemp(prefix="bench-configs-"))
    try:
        for path in SHIPPED_CONFIGS_DIR.glob("*.json"):
            shutil.copy(path, folder)
        target = folder / "weather.json"

        store = FileStore(folder, ctx)
        store.load_all()
        served = time_store(rounds, lambda i: target.write_text(weather_doc(i)), store.watch)
        store.close()

        # Baseline: the same watcher (RustNotify, same step/debounce) on its own thread, doing nothing with
        # the event but signalling it — the store minus reading, validating and notifying.
        raw: list[float] = []
        seen = threading.Event()
        stop = threading.Event()
        ready = threading.Event()

        def watch() -> None:
            with RustNotify([str(folder)], False, False, 300, False, False) as notify:
                ready.set()
                while not stop.is_set():
                    if isinstance(notify.watch(store.debounce_ms, store.step_ms, 200, stop), set):
                        seen.set()

        thread = threading.Thread(target=watch, daemon=True)
        thread.start()
        ready.wait(10)
        for i in range(rounds):
            seen.clear()
            start = time.perf_counter()
            target.write_text(weather_doc(1000 + i))
            if not seen.wait(10):
                raise RuntimeError("raw watcher saw nothing")
            raw.append(time.perf_counter() - start)
            time.sleep(0.02)
        stop.set()
        thread.join(5)
        return served, raw, store.step_ms
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def raw_redis_latency(url: str, rounds: int, *, keyspace: bool) -> list[float]:
    publisher = redis.Redis.from_url(url)
    subscriber = redis.Redis.from_url(url).pubsub(ignore_subscribe_messages=True)
    if keyspace:
        subscriber.psubscribe("__keyspace@0__:bench|*")
    else:
        subscriber.subscribe("bench-channel")
    while subscriber.get_message(timeout=0.1) is not None:
        pass
    samples = []
    for i in range(rounds):
        start = time.perf_counter()
        if keyspace:
            publisher.set("bench|key", weather_doc(i))
        else:
            publisher.publish("bench-channel", "weather")
        while subscriber.get_message(timeout=10) is None:
            pass
        samples.append(time.perf_counter() - start)
    subscriber.close()
    publisher.close()
    return samples


def bench_redis(rounds: int, ctx) -> tuple[list[float], list[float], list[float]]:
    directory = Path(tempfile.mkdtemp(prefix="bench-redis-"))
    server = RedisServer(directory)
    server.start()
    try:
        client = redis.Redis.from_url(server.url)
        for path in SHIPPED_CONFIGS_DIR.glob("*.json"):
            client.set(f"agent|{path.stem}", path.read_bytes())
        store = RedisStore(server.url, ctx)
        store.load_all()
        store.watch(lambda change: None)
        store.wait_until_watching(10)
        served = time_store(rounds, lambda i: client.set("agent|weather", weather_doc(i)), store.watch)
        store.close()
        pubsub = raw_redis_latency(server.url, rounds, keyspace=False)
        keyspace = raw_redis_latency(server.url, rounds, keyspace=True)
        client.close()
        return served, pubsub, keyspace
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    ctx = validation_context(Settings())

    served, raw, step = bench_files(args.rounds, ctx)
    s_med, s_p95 = stats(served)
    r_med, r_p95 = stats(raw)
    print(f"config change → served, {args.rounds} rounds each (median / p95, ms)")
    print(f"  file store (watch step {step} ms)      {s_med:7.2f} / {s_p95:7.2f}")
    print(
        f"  baseline: raw watchfiles event        {r_med:7.2f} / {r_p95:7.2f}   ratio {s_med / r_med:5.2f}x"
    )

    served, pubsub, keyspace = bench_redis(args.rounds, ctx)
    s_med, s_p95 = stats(served)
    p_med, p_p95 = stats(pubsub)
    k_med, k_p95 = stats(keyspace)
    print(f"  redis store (SET → served)            {s_med:7.2f} / {s_p95:7.2f}")
    print(
        f"  baseline: raw pub/sub round trip      {p_med:7.2f} / {p_p95:7.2f}   ratio {s_med / p_med:5.2f}x"
    )
    print(
        f"  baseline: raw keyspace notification   {k_med:7.2f} / {k_p95:7.2f}   ratio {s_med / k_med:5.2f}x"
    )


if __name__ == "__main__":
    main()
