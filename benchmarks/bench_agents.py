"""The agent runtime, each figure against a baseline measured in the same run.

1. One turn (a tool call, then the answer) with the offline demo model versus a bare ``Runner.run`` with the SDK's
   ``agents.testing.ScriptedModel`` scripted to take exactly the same steps: the cost of the offline model's
   decisions. Also the full console turn (``AgentRunner.run_turn``: streamed, hooks → events, bus) versus the same
   bare baseline: the cost of the console's plumbing.
2. Config change → the rebuilt agent answering a turn, for the file store and the Redis store (a real
   redis-server), versus the store's own change notification (what the configs area measures) in the same rounds:
   the runtime's share is the rebuild plus the next turn.

Run: .venv/bin/python -m benchmarks.bench_agents [--turns N] [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agents import Agent, RunConfig, Runner, set_trace_processors
from agents.testing import ScriptedModel, assistant_message, function_call

from console.core.agents.offline_model import OfflineModel
from console.core.agents.runner import AgentRunner
from console.core.agents.tools import build_tool
from console.core.configs.catalog import ConfigChange
from console.core.configs.live import LiveConfigs
from console.core.configs.open_store import open_store
from console.core.events import EventBus
from console.core.settings import Settings

QUESTION = "What's the weather in Paris?"
NO_TRACING = RunConfig(tracing_disabled=True)


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def p95_ms(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[int(0.95 * (len(ordered) - 1))] * 1000


async def bench_turns(turns: int) -> None:
    tools = [build_tool("get_current_weather")]
    offline = Agent(name="Weather", instructions="Weather.", model=OfflineModel(), tools=tools)
    answer = (await Runner.run(offline, QUESTION, run_config=NO_TRACING)).final_output

    def scripted_agent() -> Agent[Any]:
        model = ScriptedModel(
            [
                [function_call("get_current_weather", {"city": "Paris"}, call_id="c1")],
                [assistant_message(answer)],
            ]
        )
        return Agent(name="Weather", instructions="Weather.", model=model, tools=tools)

    settings = Settings(configs_dir=Path(tempfile.mkdtemp()))
    from console.core.configs.model import AgentConfig

    cfg = AgentConfig.from_document(
        {"name": "Weather", "instructions": "Weather.", "model": "m", "tools": ["get_current_weather"]},
        key="w",
        source="bench",
    )
    runner = AgentRunner(settings=settings, configs={"w": cfg}, bus=EventBus())
    set_trace_processors([])  # same (no) tracing for everyone
    events: list[object] = []
    runner.bus.subscribe(events.append)

    bare, ours, console = [], [], []
    for _ in range(5):  # warm-up
        await Runner.run(scripted_agent(), QUESTION, run_config=NO_TRACING)
        await Runner.run(offline, QUESTION, run_config=NO_TRACING)
        await runner.run_turn(QUESTION)
        runner.reset()
    for _ in range(turns):  # interleaved, so drift hits all three alike
        agent = scripted_agent()
        start = time.perf_counter()
        result = await Runner.run(agent, QUESTION, run_config=NO_TRACING)
        bare.append(time.perf_counter() - start)
        assert result.final_output == answer
        start = time.perf_counter()
        result = await Runner.run(offline, QUESTION, run_config=NO_TRACING)
        ours.append(time.perf_counter() - start)
        assert result.final_output == answer
        start = time.perf_counter()
        turn = await runner.run_turn(QUESTION)
        console.append(time.perf_counter() - start)
        assert turn.output == answer
        runner.reset()
    base = median_ms(bare)
    print(f"turn (tool call + answer), {turns} turns each, median / p95:")
    print(f"  bare Runner.run + ScriptedModel      {base:7.2f} / {p95_ms(bare):6.2f} ms   (baseline)")
    print(
        f"  Runner.run + offline demo model      {median_ms(ours):7.2f} / {p95_ms(ours):6.2f} ms   ratio {median_ms(ours) / base:.2f}x"
    )
    print(
        f"  AgentRunner.run_turn                 {median_ms(console):7.2f} / {p95_ms(console):6.2f} ms   ratio {median_ms(console) / base:.2f}x"
    )
    print(f"    (streamed, hooks → {len(events) // (turns + 5)} events per turn on the bus)")


def bench_reload(
    rounds: int,
    make_store: Callable[[Settings], Any],
    change: Callable[[int], None],
    label: str,
    settings: Settings,
) -> None:
    live = LiveConfigs(make_store(settings))
    live.start()
    bus = EventBus()
    runner = AgentRunner(settings=settings, configs=live, bus=bus, main_key="solo")
    notified = threading.Event()
    rebuilt = threading.Event()
    wanted = {"name": ""}

    def on_store(change_: ConfigChange) -> None:
        cfg = change_.configs.get("solo")
        if cfg is not None and cfg.name == wanted["name"]:
            notified.set()

    def on_notice(event: Any) -> None:
        if (
            getattr(event, "message", "").startswith("agents rebuilt")
            and runner.graph.agents["solo"].name == wanted["name"]
        ):
            rebuilt.set()

    live.subscribe(on_store)
    bus.subscribe(on_notice)
    store_s, used_s = [], []

    async def one(i: int) -> None:
        wanted["name"] = f"Solo Agent {i}"
        notified.clear()
        rebuilt.clear()
        start = time.perf_counter()
        change(i)
        if not await asyncio.to_thread(notified.wait, 15):
            raise TimeoutError(f"{label}: no change notification")
        store_s.append(time.perf_counter() - start)
        if not await asyncio.to_thread(rebuilt.wait, 15):
            raise TimeoutError(f"{label}: no rebuild")
        turn = await runner.run_turn("what is the date?")
        assert turn.agent_name == wanted["name"], turn.agent_name
        used_s.append(time.perf_counter() - start)

    async def all_rounds() -> None:
        for i in range(rounds):
            await one(i)

    try:
        asyncio.run(all_rounds())
    finally:
        runner.close()
        live.stop()
    base = median_ms(store_s)
    print(
        f"  {label:6} store notified {base:7.1f} ms (baseline) → rebuilt agent answered {median_ms(used_s):7.1f} ms "
        f"(p95 {p95_ms(used_s):.1f}); runtime share {median_ms(used_s) - base:5.1f} ms, ratio {median_ms(used_s) / base:.2f}x"
    )


def solo(i: int) -> str:
    return json.dumps(
        {
            "name": f"Solo Agent {i}",
            "instructions": "Dates.",
            "model": "gpt-4o-mini",
            "tools": ["get_current_date"],
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bench-agents-"))
    os.environ["OBO_CONSOLE_HOME"] = str(home)
    asyncio.run(bench_turns(args.turns))

    print(f"config change → rebuilt agent answering a turn, {args.rounds} rounds:")
    directory = home / "configs"
    directory.mkdir()
    (directory / "solo.json").write_text(solo(-1))
    files = Settings(configs_dir=directory)
    bench_reload(
        args.rounds, open_store, lambda i: (directory / "solo.json").write_text(solo(i)), "files", files
    )

    import redis

    from tests.fixtures.redis import RedisServer

    server = RedisServer(home / "redis")
    server.directory.mkdir()
    server.start()
    try:
        client = redis.Redis.from_url(server.url)
        client.set("agent|solo", solo(-1))
        settings = Settings(use_redis=True, redis_url=server.url)
        bench_reload(args.rounds, open_store, lambda i: client.set("agent|solo", solo(i)), "redis", settings)
        client.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
