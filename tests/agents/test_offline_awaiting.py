"""What the offline model awaits — the tool whose values it asked for, the value it asked for, what it has so far —
is its own state, recovered from its own decisions, never by reading its words back: words it did not say start
nothing, a request the user called off lends nothing to a new one, a bare reply is kept, and a conversation resumed
from its saved messages alone continues the request it was asking for."""

from __future__ import annotations

import json
from pathlib import Path

from console.core.agents.offline_decider import Awaiting, OfflineDecider, candidates_from
from console.core.agents.runner import AgentRunner
from console.core.agents.tools import build_tool
from console.core.events import EventBus
from console.core.sessions import SessionStore
from console.core.settings import Settings
from tests.agents.helpers import Recorder, agent, load_configs, write_configs

ALICE = "alice@contoso.example"
ASK_ALL = "To run `run_simulation` I still need your name, address and income. What is your name?"


class Chat:
    """One conversation with a simulator agent (the offline model), every turn's tool calls recorded."""

    def __init__(self, settings: Settings, history: list[dict[str, str]] | None = None) -> None:
        self.bus = EventBus()
        self.recorder = Recorder(self.bus)
        self.runner = AgentRunner(
            settings=settings, configs=load_configs(settings), bus=self.bus, account=ALICE
        )
        if history is not None:
            self.runner.history = list(history)

    async def say(self, text: str) -> str:
        result = await self.runner.run_turn(text)
        assert result.error is None, result.error
        return result.output

    def calls(self) -> list[tuple[str, dict[str, object]]]:
        return [(e.tool, json.loads(e.arguments)) for e in self.recorder.of("tool_started")]


def simulator(tmp_path: Path) -> Settings:
    return Settings(
        configs_dir=write_configs(tmp_path / "configs", {"sim": agent("Sim", tools=["run_simulation"])})
    )


def test_an_ask_records_what_it_awaits_and_a_bare_reply_is_read_as_that_value() -> None:
    decider = OfflineDecider()
    cands = candidates_from([build_tool("run_simulation")], [])
    asked = decider.decide(None, [{"role": "user", "content": "run a simulation"}], cands)
    assert asked.text == ASK_ALL and asked.awaiting == Awaiting("run_simulation", "name", 0)
    # The same conversation as saved messages (text only), read by a model that never saw it: the same state.
    history = [
        {"role": "user", "content": "run a simulation"},
        {"role": "assistant", "content": ASK_ALL},
        {"role": "user", "content": "Bob Smith"},
    ]
    reply = OfflineDecider().decide(None, history, cands)
    assert reply.awaiting == Awaiting("run_simulation", "address", 0, (("name", "Bob Smith"),))


async def test_words_this_model_did_not_say_there_start_no_request(tmp_path: Path) -> None:
    """An ask in the history this model would not have made there (it answers "hello" with what it can do) is
    someone else's words: the next message is not taken for the value they asked for."""
    history = [
        {"role": "user", "content": "hello"},
        {
            "role": "assistant",
            "content": "To run `run_simulation` I still need your name. What is your name?",
        },
    ]
    chat = Chat(simulator(tmp_path), history)
    output = await chat.say("Bob Smith")
    assert output == (
        "I'm the offline demo model: no language model is configured, so I match your words to what "
        "I can do with fixed rules. I can:\n- Run the financial simulation for a person."
    )
    assert chat.calls() == []


async def test_a_request_called_off_lends_no_values_to_a_new_one(tmp_path: Path) -> None:
    chat = Chat(simulator(tmp_path))
    assert await chat.say("run a simulation, my income is 40k") == (
        "To run `run_simulation` I still need your name and address. So far I have income: 40000. What is your name?"
    )
    assert (await chat.say("I don't want to run a simulation")).startswith(
        "Understood: I will not call `run_simulation`."
    )
    assert await chat.say("run a simulation") == ASK_ALL
    # The income of the request called off is not carried into the new one.
    assert await chat.say("my name is Bob Smith") == (
        "To run `run_simulation` I still need your address and income. So far I have name: Bob Smith. "
        "What is your address?"
    )


async def test_bare_replies_are_kept_until_the_tool_runs(tmp_path: Path) -> None:
    chat = Chat(simulator(tmp_path))
    assert await chat.say("run a simulation") == ASK_ALL
    await chat.say("Bob Smith")  # only a name because the name was asked for
    assert await chat.say("5 Elm Road, Leeds") == (
        "To run `run_simulation` I still need your income. So far I have name: Bob Smith, address: 5 Elm Road, "
        "Leeds. What is your income?"
    )
    await chat.say("40k")
    assert chat.calls() == [
        ("run_simulation", {"name": "Bob Smith", "address": "5 Elm Road, Leeds", "income": 40000})
    ]


async def test_a_resumed_conversation_continues_the_request_it_was_asking_for(tmp_path: Path) -> None:
    settings = simulator(tmp_path)
    store = SessionStore(ALICE)
    session = store.new_session("sim")
    first = Chat(settings)
    store.attach(first.bus, session)
    assert await first.say("run a simulation") == ASK_ALL
    assert (await first.say("my name is Bob Smith")).endswith("What is your address?")
    store.close()
    first.runner.close()

    # "restart": a new store on the same file, a new runner and model that never saw the conversation
    loaded = SessionStore(ALICE).resume(session)
    assert all(set(item) == {"role", "content"} for item in loaded.input_list)  # the saved words only
    resumed = Chat(settings, loaded.input_list)
    assert await resumed.say("5 Elm Road, Leeds") == (
        "To run `run_simulation` I still need your income. So far I have name: Bob Smith, address: 5 Elm Road, "
        "Leeds. What is your income?"
    )
    await resumed.say("40k")
    assert resumed.calls() == [
        ("run_simulation", {"name": "Bob Smith", "address": "5 Elm Road, Leeds", "income": 40000})
    ]
    resumed.runner.close()
