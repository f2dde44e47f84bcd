"""The remote agent: the calculator agent served over real HTTP, and the registry tool that calls it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from console.core.agents.providers import calculator_model
from console.core.agents.runner import AgentRunner
from console.core.events import EventBus
from console.core.settings import Settings
from mcp_server.calculator import evaluate, serve_calculator
from mcp_server.localcloud.serve import ThreadedServer
from tests.agents.helpers import Recorder, agent, load_configs, write_configs


@pytest.fixture(scope="module")
def calculator() -> Iterator[ThreadedServer]:
    server = serve_calculator(calculator_model(Settings()))
    try:
        yield server
    finally:
        server.stop()


def test_evaluate_is_arithmetic_only() -> None:
    assert evaluate("12 * (3 + 4)") == 84
    assert evaluate("2^10") == 1024
    assert evaluate("7 / 2") == 3.5
    for bad in ("__import__('os')", "1/0", "2 ** 1000", "a + 1"):
        with pytest.raises(ValueError):
            evaluate(bad)


def test_run_endpoint(calculator: ThreadedServer) -> None:
    with httpx2.Client(trust_env=False) as client:
        ok = client.post(f"{calculator.base_url}/run", json={"input": "how much is 6 * 7?"})
        assert ok.status_code == 200 and ok.json()["output"] == "6 * 7 = 42"
        bad = client.post(f"{calculator.base_url}/run", json={"input": ""})
        assert bad.status_code == 400 and "non-empty string" in bad.json()["error"]
        not_json = client.post(f"{calculator.base_url}/run", content=b"12*7")
        assert not_json.status_code == 400


async def test_agent_calls_the_remote_calculator(tmp_path: Path, calculator: ThreadedServer) -> None:
    settings = Settings(
        configs_dir=write_configs(
            tmp_path / "c", {"c": agent("Helper", tools=["ask_calculator", "get_current_date"])}
        )
    )
    bus = EventBus()
    rec = Recorder(bus)
    runner = AgentRunner(
        settings=settings, configs=load_configs(settings), bus=bus, calculator=calculator.base_url
    )
    result = await runner.run_turn("what is 12 * (3 + 4)?")
    started, ended = rec.of("tool_started")[0], rec.of("tool_ended")[0]
    assert (started.tool, started.tool_type, json.loads(started.arguments)) == (
        "ask_calculator",
        "remote_agent",
        {"expression": "12 * (3 + 4)"},
    )
    assert ended.result == "12 * (3 + 4) = 84" and ended.error is None and ended.duration_ms > 0
    assert result.output == "12 * (3 + 4) = 84"


async def test_calculator_down_is_a_clear_tool_error(tmp_path: Path) -> None:
    server = serve_calculator(calculator_model(Settings()))
    url = server.base_url
    server.stop()  # nothing listens there now
    settings = Settings(
        configs_dir=write_configs(tmp_path / "c", {"c": agent("Helper", tools=["ask_calculator"])})
    )
    bus = EventBus()
    rec = Recorder(bus)
    runner = AgentRunner(settings=settings, configs=load_configs(settings), bus=bus, calculator=url)
    result = await runner.run_turn("what is 2 + 2?")
    ended = rec.of("tool_ended")[0]
    assert ended.error is not None and f"calculator service at {url} is not reachable" in ended.error
    assert result.error is None and "not reachable" in result.output
