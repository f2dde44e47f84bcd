"""The offline demo model's choices follow from the names and descriptions the configs give — configs this test
writes itself. Renaming or re-describing them changes the choice accordingly."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.core.agents.runner import AgentRunner
from console.core.events import EventBus
from console.core.settings import Settings
from tests.agents.helpers import Recorder, agent, load_configs, write_configs

ASTRO = "Answers questions about planets, stars and galaxies."
CHEF = "Answers questions about recipes, cooking and baking bread."


def _hub(tmp_path: Path, astro_desc: str, chef_desc: str, astro_tool: str | None = None) -> Settings:
    directory = write_configs(
        tmp_path / "configs",
        {
            "hub": agent(
                "Hub",
                agents_as_tools=[
                    {
                        "agent": "astro",
                        "description": astro_desc,
                        **({"tool_name": astro_tool} if astro_tool else {}),
                    },
                    {"agent": "chef", "description": chef_desc},
                ],
            ),
            "astro": agent("Astronomer", tools=["get_current_date"]),
            "chef": agent("Cook", tools=["get_current_time"]),
        },
    )
    return Settings(configs_dir=directory)


async def _tool_for(settings: Settings, question: str) -> list[tuple[str | None, str]]:
    bus = EventBus()
    recorder = Recorder(bus)
    runner = AgentRunner(settings=settings, configs=load_configs(settings), bus=bus, main_key="hub")
    result = await runner.run_turn(question)
    assert result.error is None
    return [call for call in recorder.tools_called(result.turn_id) if call[0] == "Hub"]


async def test_agent_tool_choice_follows_descriptions(tmp_path: Path) -> None:
    settings = _hub(tmp_path, ASTRO, CHEF)
    assert await _tool_for(settings, "How do I bake bread at home?") == [("Hub", "chef")]
    assert await _tool_for(settings, "How far away is the nearest star?") == [("Hub", "astro")]
    # Swap the descriptions: the same questions now go to the other agent.
    settings = _hub(tmp_path, CHEF, ASTRO)
    assert await _tool_for(settings, "How do I bake bread at home?") == [("Hub", "astro")]
    assert await _tool_for(settings, "How far away is the nearest star?") == [("Hub", "chef")]


async def test_agent_tool_choice_follows_names(tmp_path: Path) -> None:
    # Neutral descriptions: only the tool name says what it is for.
    settings = _hub(tmp_path, "Another agent.", "Yet another agent.", astro_tool="planetarium")
    assert await _tool_for(settings, "Is the planetarium open?") == [("Hub", "planetarium")]
    settings = _hub(tmp_path, "Another agent.", "Yet another agent.", astro_tool="bakery")
    assert await _tool_for(settings, "Is the bakery open?") == [("Hub", "bakery")]


async def test_handoff_choice_follows_target_description(tmp_path: Path) -> None:
    def make(desc_a: str, desc_b: str) -> Settings:
        directory = write_configs(
            tmp_path / "handoffs",
            {
                "desk": agent(
                    "Front Desk",
                    handoffs=[
                        {"agent": "alpha", "description": desc_a},
                        {"agent": "beta", "description": desc_b},
                    ],
                ),
                "alpha": agent("Alpha Agent"),
                "beta": agent("Beta Agent"),
            },
        )
        return Settings(configs_dir=directory)

    for descs, expected in (
        (("Handles invoices and payments.", "Handles holidays and leave requests."), "alpha"),
        (("Handles holidays and leave requests.", "Handles invoices and payments."), "beta"),
    ):
        settings = make(*descs)
        runner = AgentRunner(settings=settings, configs=load_configs(settings), main_key="desk")
        result = await runner.run_turn("I have a question about an unpaid invoice")
        assert result.agent == expected
        assert runner.active_key == expected


@pytest.mark.parametrize(
    ("question", "tool", "arguments"),
    [
        (
            "What's the temperature in Buenos Aires right now?",
            "get_current_temperature",
            {"city": "Buenos Aires"},
        ),
        ("Give me the seven day forecast for Oslo", "get_seven_day_forecast", {"city": "Oslo"}),
        ("is it raining? what's the weather like in Paris", "get_current_weather", {"city": "Paris"}),
    ],
)
async def test_registry_tool_and_arguments_from_the_message(
    tmp_path: Path, question: str, tool: str, arguments: dict[str, str]
) -> None:
    directory = write_configs(
        tmp_path / "w",
        {
            "w": agent(
                "Weather", tools=["get_current_weather", "get_current_temperature", "get_seven_day_forecast"]
            )
        },
    )
    settings = Settings(configs_dir=directory)
    bus = EventBus()
    recorder = Recorder(bus)
    runner = AgentRunner(settings=settings, configs=load_configs(settings), bus=bus)
    result = await runner.run_turn(question)
    started = recorder.of("tool_started")
    assert [(e.tool, e.arguments) for e in started] == [(tool, __import__("json").dumps(arguments))]
    # The answer is composed from the tool's output, which says it is demo data.
    assert arguments["city"] in result.output and "Demo data" in result.output


async def test_two_tools_when_the_request_names_both(tmp_path: Path) -> None:
    directory = write_configs(
        tmp_path / "t", {"t": agent("Clock", tools=["get_current_time", "get_current_date"])}
    )
    settings = Settings(configs_dir=directory)
    bus = EventBus()
    recorder = Recorder(bus)
    runner = AgentRunner(settings=settings, configs=load_configs(settings), bus=bus)
    result = await runner.run_turn("what are the date and the time?")
    assert sorted(tool for _, tool in recorder.tools_called()) == ["get_current_date", "get_current_time"]
    assert "Today is" in result.output and "The current time is" in result.output


async def test_no_match_says_what_it_can_do_and_names_itself(tmp_path: Path) -> None:
    directory = write_configs(tmp_path / "t", {"t": agent("Clock", tools=["get_current_time"])})
    settings = Settings(configs_dir=directory)
    runner = AgentRunner(settings=settings, configs=load_configs(settings))
    result = await runner.run_turn("hello there")
    assert "offline demo model" in result.output and "current local time" in result.output
    assert runner.model_label == "offline-demo (offline)"


async def test_all_required_values_in_one_message(tmp_path: Path) -> None:
    directory = write_configs(tmp_path / "s", {"s": agent("Sim", tools=["run_simulation"])})
    settings = Settings(configs_dir=directory)
    bus = EventBus()
    recorder = Recorder(bus)
    runner = AgentRunner(settings=settings, configs=load_configs(settings), bus=bus)
    await runner.run_turn("Run a simulation. Name: Bob Smith, address: 5 Elm Road, Leeds, income: 40k")
    (started,) = recorder.of("tool_started")
    assert __import__("json").loads(started.arguments) == {
        "name": "Bob Smith",
        "address": "5 Elm Road, Leeds",
        "income": 40000,
    }


def test_query_keeps_only_the_words_that_narrow_the_search() -> None:
    from console.core.agents.offline_model import extract, words

    vocabulary = set(words("get_documents Get the documents the user may read. query"))
    schema = {"type": "string", "default": "*"}
    assert (
        extract("query", schema, "show my documents again", [], vocabulary) is None
    )  # → the tool's default "*"
    assert extract("query", schema, "list everything I can read", [], vocabulary) is None
    assert extract("query", schema, "show my documents about holidays", [], vocabulary) == "holidays"
