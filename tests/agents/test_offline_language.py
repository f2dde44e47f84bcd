"""The offline demo model on what new users type, through the real agent runner with the shipped configs against
the real local stack (identity platform, search service, MCP server, remote calculator): arithmetic in words,
counts that agree with their nouns, a named document answered from its description, negation, and word
boundaries. It stays a deterministic stand-in and says so."""

from __future__ import annotations

import json

import pytest

from console.core.agents.offline_answers import SUMMARY_NOTE
from console.core.agents.offline_arithmetic import arithmetic_in_words
from console.core.agents.offline_words import read_message, stem, words
from console.core.agents.runner import AgentRunner
from console.core.configs.schema import SHIPPED_CONFIGS_DIR
from console.core.events import EventBus
from console.core.plural import counted, plural
from console.core.settings import Settings
from mcp_server.stack import LocalStack
from tests.agents.helpers import Recorder, load_configs
from tests.fixtures.stack import api_token


class Session:
    """One conversation with the shipped agents as a signed-in user; every turn's tool calls recorded."""

    def __init__(self, stack: LocalStack, login: str = "alice") -> None:
        settings = Settings(configs_dir=SHIPPED_CONFIGS_DIR)
        token = api_token(stack, login)
        self.bus = EventBus()
        self.recorder = Recorder(self.bus)
        self.runner = AgentRunner(settings=settings, configs=load_configs(settings), bus=self.bus, account=login,
                                  token_provider=lambda: token, require_mcp=True)  # fmt: skip

    async def ask(self, question: str) -> tuple[str, list[tuple[str | None, str, dict[str, object]]]]:
        self.recorder.clear()
        result = await self.runner.run_turn(question)
        assert result.error is None, result.error
        calls = [(e.agent, e.tool, json.loads(e.arguments or "{}")) for e in self.recorder.of("tool_started")]
        return result.output, calls


@pytest.fixture
def session(use_local_stack: LocalStack) -> Session:
    return Session(use_local_stack)


@pytest.mark.parametrize(
    ("question", "expression", "answer"),
    [
        ("what is 12 times 7?", "12 * 7", "12 * 7 = 84"),
        ("what is 15 percent of 80", "15 * 80 / 100", "15 * 80 / 100 = 12"),
        ("7 squared", "7 ^ 2", "7 ^ 2 = 49"),
        ("what's 100 divided by 8?", "100 / 8", "100 / 8 = 12.5"),
        ("3 plus 4 minus 2", "3 + 4 - 2", "3 + 4 - 2 = 5"),
        ("what is seven times eight", "7 * 8", "7 * 8 = 56"),
        ("2 to the power of 10", "2 ^ 10", "2 ^ 10 = 1024"),
        ("calculate 12 * (3 + 4)", "12 * (3 + 4)", "12 * (3 + 4) = 84"),
    ],
)
async def test_arithmetic_in_words_goes_to_the_calculator(
    session: Session, question: str, expression: str, answer: str
) -> None:
    output, calls = await session.ask(question)
    assert calls == [("Conversation Agent", "ask_calculator", {"expression": expression})]
    assert output == answer


async def test_number_words_outside_arithmetic_stay_words(session: Session) -> None:
    _, calls = await session.ask("give me the seven day forecast for Oslo")
    assert [(a, t) for a, t, _ in calls] == [
        ("Conversation Agent", "weather"),
        ("Weather Agent", "get_seven_day_forecast"),
    ]
    assert calls[1][2] == {"city": "Oslo"}


async def test_counts_agree_with_their_nouns(session: Session) -> None:
    one, _ = await session.ask("show my documents about architecture")
    assert one == "Found 1 document:\n- Architecture overview"
    several, _ = await session.ask("show my documents about hiring")
    assert several.startswith("Found 2 documents:\n- ")


async def test_a_named_document_is_answered_from_its_description(session: Session) -> None:
    output, calls = await session.ask("summarise the Q3 budget forecast")
    assert calls == [
        ("Conversation Agent", "documents", {"input": "summarise the Q3 budget forecast"}),
        ("Documents Agent", "get_documents", {"query": "Q3 budget forecast"}),
    ]  # the documents agent, not the weather agent's "forecast"
    assert (
        output
        == f"Q3 budget forecast: Finance's forecast of revenue and spending for the third quarter.\n{SUMMARY_NOTE}"
    )
    assert "offline demo model" in SUMMARY_NOTE


async def test_a_document_picked_from_an_earlier_list_is_answered_from_its_description(
    session: Session,
) -> None:
    listing, _ = await session.ask("show my documents")
    assert "- Travel expense policy" in listing
    output, calls = await session.ask("what does the travel expense policy say?")
    assert [(a, t) for a, t, _ in calls] == [
        ("Conversation Agent", "documents"),
        ("Documents Agent", "get_documents"),
    ]
    assert (
        output
        == f"Travel expense policy: What employees may expense when travelling, and how to claim it.\n{SUMMARY_NOTE}"
    )


async def test_a_document_the_user_cannot_see_is_not_summarised(use_local_stack: LocalStack) -> None:
    bob = Session(use_local_stack, "bob")
    output, calls = await bob.ask("summarise Alice's performance review")
    assert [t for _, t, _ in calls] == ["documents", "get_documents"]
    assert "Annual review notes for Alice" not in output and "Alice's performance review" not in output
    assert SUMMARY_NOTE not in output


async def test_negation_does_not_hand_off_to_the_simulator(session: Session) -> None:
    output, calls = await session.ask("I do NOT want to run a simulation")
    assert calls == [] and session.runner.active_key == "conversation"
    assert output.startswith(
        "Understood: I will not hand you over to Simulator Agent. I'm the offline demo model"
    )
    assert "Hand over to the simulator" not in output  # what it will not do is not offered again
    # The same words without the negation do hand off.
    await session.ask("I want to run a simulation")
    assert session.runner.active_key == "simulator"


async def test_negation_while_the_simulator_asks_for_values(session: Session) -> None:
    asked, _ = await session.ask("run a simulation")
    assert asked.endswith("What is your name?")
    output, calls = await session.ask("I don't want to run a simulation")
    assert calls == []
    assert output.startswith("Understood: I will not call `run_simulation`.")  # not taken as the user's name
    # "no" negates only the word after it: a correction still gives the value asked for.
    await session.ask("run a simulation")
    output, calls = await session.ask("no my name is Bob Smith")
    assert calls == [] and output.startswith("To run `run_simulation` I still need your address and income.")
    assert "So far I have name: Bob Smith." in output


async def test_new_york_is_weather_not_news(session: Session) -> None:
    output, calls = await session.ask("rain tomorrow in new york")
    assert calls == [
        ("Conversation Agent", "weather", {"input": "rain tomorrow in new york"}),
        ("Weather Agent", "get_seven_day_forecast", {"city": "New York"}),
    ]
    assert output.startswith("Demo data (no weather service connected), 7-day forecast for New York: ")


async def test_deterministic_and_says_what_it_is(use_local_stack: LocalStack) -> None:
    answers = [(await Session(use_local_stack).ask("hello there"))[0] for _ in range(2)]
    assert answers[0] == answers[1]
    assert answers[0].startswith("I'm the offline demo model: no language model is configured, so I match your words "
                                 "to what I can do with fixed rules. I can:\n")  # fmt: skip


def test_words_rules() -> None:
    assert stem("news") == "news" and stem("status") == "status" and stem("documents") == "document"
    assert "news" not in words("rain tomorrow in new york")
    said = read_message("I do NOT want to run a simulation, but show my documents")
    assert said.words == ("document",) and said.negated == ("simulation",)
    assert read_message("rain tomorrow").concepts == ("weather", "forecast")
    assert arithmetic_in_words("what is twenty-one times three?") == "what is 21 * 3?"
    assert arithmetic_in_words("how many times did it rain") == "how many times did it rain"


def test_plural_agreement() -> None:
    assert [plural(n, "document") for n in (0, 1, 2)] == ["0 documents", "1 document", "2 documents"]
    assert counted(1, "documents") == "1 document" and counted(1, "entries") == "1 entry"
    assert plural(3, "policy") == "3 policies" and plural(1, "account") == "1 account"
