"""Turns with the offline model through the real SDK runner: tools, agents-as-tools (with their inner events),
handoff to a simulator-like agent that asks its questions across turns and comes back, events in order with
durations and agent labels, cancel, reset, and live reload of configs."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from console.core.agents.factory import back_tool_name
from console.core.agents.runner import AgentRunner
from console.core.configs.live import LiveConfigs
from console.core.configs.open_store import open_store
from console.core.events import EventBus
from console.core.settings import Settings
from tests.agents.helpers import Recorder, agent, load_configs, write_configs

DOCS = {
    "main": agent(
        "Front Agent",
        tools=["get_current_time"],
        agents_as_tools=[
            {
                "agent": "meteo",
                "description": "Answers questions about the weather, temperature and forecasts.",
            }
        ],
        handoffs=[
            {"agent": "planner", "description": "Hand over to run a simulation of someone's finances."}
        ],
    ),
    "meteo": agent(
        "Meteo Agent", tools=["get_current_weather", "get_current_temperature", "get_seven_day_forecast"]
    ),
    "planner": agent("Planner Agent", tools=["run_simulation"]),
}


def _runner(tmp_path: Path, bus: EventBus) -> AgentRunner:
    settings = Settings(configs_dir=write_configs(tmp_path / "configs", DOCS))
    return AgentRunner(settings=settings, configs=load_configs(settings), bus=bus, account="tester")


async def test_tool_call_events_in_order_with_durations(tmp_path: Path) -> None:
    bus = EventBus()
    rec = Recorder(bus)
    runner = _runner(tmp_path, bus)
    result = await runner.run_turn("what time is it?")
    assert rec.kinds(result.turn_id) == [
        "turn_started",
        "agent_started",
        "model_called",
        "tool_started",
        "tool_ended",
        "model_called",
        "agent_ended",
        "turn_ended",
    ]
    assert all(e.agent == "Front Agent" for e in rec.events if e.turn_id == result.turn_id)
    ended = rec.of("tool_ended")[0]
    assert ended.tool == "get_current_time" and ended.duration_ms > 0 and ended.error is None
    assert ended.call_id == rec.of("tool_started")[0].call_id
    assert all(
        m.duration_ms > 0 and m.model == "offline-demo" and m.provider == "offline" and m.input_tokens > 0
        for m in rec.of("model_called")
    )
    assert rec.of("turn_ended")[0].duration_ms >= ended.duration_ms
    assert result.output.startswith("The current time is")
    # The answer streamed as text deltas that add up to it.
    assert "".join(e.delta for e in rec.of("text_delta", result.turn_id)) == result.output


async def test_agent_as_tool_with_inner_events_labelled(tmp_path: Path) -> None:
    bus = EventBus()
    rec = Recorder(bus)
    runner = _runner(tmp_path, bus)
    result = await runner.run_turn("What's the weather in Lisbon?")
    labelled = [
        (e.kind, e.agent) for e in rec.events if e.turn_id == result.turn_id and e.kind != "text_delta"
    ]
    assert labelled == [
        ("turn_started", "Front Agent"),
        ("agent_started", "Front Agent"),
        ("model_called", "Front Agent"),
        ("tool_started", "Front Agent"),  # the agent-as-tool
        ("agent_started", "Meteo Agent"),
        ("model_called", "Meteo Agent"),
        ("tool_started", "Meteo Agent"),
        ("tool_ended", "Meteo Agent"),
        ("model_called", "Meteo Agent"),
        ("agent_ended", "Meteo Agent"),
        ("tool_ended", "Front Agent"),
        ("model_called", "Front Agent"),
        ("agent_ended", "Front Agent"),
        ("turn_ended", "Front Agent"),
    ]
    outer, inner = rec.of("tool_started")
    assert (outer.tool, outer.tool_type) == ("meteo", "agent")
    assert json.loads(outer.arguments) == {"input": "What's the weather in Lisbon?"}
    assert (inner.tool, json.loads(inner.arguments)) == ("get_current_weather", {"city": "Lisbon"})
    assert rec.of("agent_started")[1].parent == "Front Agent"
    assert "Lisbon" in result.output and "Demo data" in result.output
    assert runner.active_key == "main"  # agent-as-tool keeps the main agent in charge


async def test_handoff_questions_tool_and_the_way_back(tmp_path: Path) -> None:
    bus = EventBus()
    rec = Recorder(bus)
    runner = _runner(tmp_path, bus)

    first = await runner.run_turn("I want to run a simulation")
    assert (
        rec.of("handoff")[0].from_agent == "Front Agent" and rec.of("handoff")[0].to_agent == "Planner Agent"
    )
    assert runner.active_key == "planner" and first.agent == "planner"
    assert "name" in first.output and "address" in first.output and "income" in first.output
    assert not rec.of("tool_started", first.turn_id)  # nothing run without the required values

    second = await runner.run_turn("My name is Ada Lovelace")
    assert (
        rec.kinds(second.turn_id)[1] == "agent_started"
        and rec.of("agent_started", second.turn_id)[0].agent == "Planner Agent"
    )
    assert "address" in second.output and "Ada Lovelace" in second.output
    third = await runner.run_turn("I live at 12 St James's Square, London")
    assert "income" in third.output and not rec.of("tool_started", third.turn_id)
    fourth = await runner.run_turn("52000")
    calls = rec.of("tool_started", fourth.turn_id)
    assert [(c.agent, c.tool) for c in calls] == [("Planner Agent", "run_simulation")]
    assert json.loads(calls[0].arguments) == {
        "name": "Ada Lovelace",
        "address": "12 St James's Square, London",
        "income": 52000,
    }
    assert "Demo simulation" in fourth.output

    # The way back: the handed-to agent has an explicit handoff back to the main agent.
    back = await runner.run_turn("take me back to the main agent")
    handoff = rec.of("handoff", back.turn_id)[0]
    assert (handoff.from_agent, handoff.to_agent) == ("Planner Agent", "Front Agent")
    assert runner.active_key == "main" and back.agent == "main"
    assert back_tool_name("main") in [h.tool_name for h in runner.graph.agents["planner"].handoffs]  # type: ignore[union-attr]
    # And the UI action does the same without a model turn.
    await runner.run_turn("let's simulate again")
    assert runner.active_key == "planner"
    runner.back_to_main()
    assert runner.active_key == "main"
    assert rec.of("notice")[-1].message.startswith("back to Front Agent")


async def test_cancel_keeps_history_and_reset_forgets(tmp_path: Path) -> None:
    bus = EventBus()
    rec = Recorder(bus)
    runner = _runner(tmp_path, bus)
    await runner.run_turn("what time is it?")
    history = list(runner.history)
    assert history

    gate = asyncio.Event()

    def hold(event: object) -> None:
        if getattr(event, "kind", "") == "tool_started":
            runner.cancel()
            gate.set()

    unsubscribe = bus.subscribe(hold)
    result = await runner.run_turn("What's the weather in Rome?")
    unsubscribe()
    assert gate.is_set() and result.cancelled and result.error == "cancelled"
    assert runner.history == history  # the cancelled turn left nothing behind
    assert rec.of("turn_ended")[-1].error == "cancelled"
    assert not runner.running
    runner.reset()
    assert runner.history == [] and runner.active_key == "main"


async def test_live_reload_rebuilds_the_agent_used_next_turn(tmp_path: Path) -> None:
    directory = write_configs(tmp_path / "live", {"solo": agent("First Name", tools=["get_current_date"])})
    settings = Settings(configs_dir=directory)
    live = LiveConfigs(open_store(settings))
    live.start()
    try:
        bus = EventBus()
        rec = Recorder(bus)
        runner = AgentRunner(settings=settings, configs=live, bus=bus)
        first = await runner.run_turn("what is the date?")
        assert first.agent_name == "First Name"
        version = live.version
        write_configs(directory, {"solo": agent("Second Name", tools=["get_current_time"])})
        assert live.wait_for_change(version, timeout=15)
        deadline = time.monotonic() + 5
        while runner.rebuilds == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        second = await runner.run_turn("what time is it?")
        assert second.agent_name == "Second Name"
        assert [t for _, t in rec.tools_called(second.turn_id)] == ["get_current_time"]
        assert any(n.message.startswith("agents rebuilt (changed: solo)") for n in rec.of("notice"))
        runner.close()
    finally:
        live.stop()
