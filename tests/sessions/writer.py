"""A console stand-in for the kill test: real agent turns (offline model) recorded by a SessionStore, then a turn
whose answer stops streaming (the publisher blocks on its second text delta) until the test SIGKILLs us.

Run: python -m tests.sessions.writer CONFIGS_DIR ACCOUNT TURNS. Prints one JSON line per completed turn
(``{"done": ...}``), then ``{"streaming": <text streamed so far>, "session": id}`` once the answer is mid-stream.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from pathlib import Path

from console.core.agents.runner import AgentRunner
from console.core.events import Event, EventBus, TextDelta
from console.core.sessions import SessionStore
from console.core.settings import Settings
from tests.agents.helpers import load_configs

QUESTIONS = ["what time is it?", "what is the date today?", "what time is it now?"]


def say(value: dict) -> None:
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()


async def main(configs_dir: Path, account: str, turns: int) -> None:
    settings = Settings(configs_dir=configs_dir)
    bus = EventBus()
    store = SessionStore(account)
    session_id = store.new_session("main")
    store.attach(bus, session_id)
    runner = AgentRunner(settings=settings, configs=load_configs(settings), bus=bus, account=account)
    for index in range(turns):
        result = await runner.run_turn(QUESTIONS[index % len(QUESTIONS)])
        assert result.error is None, result.error
        say({"done": result.output, "question": QUESTIONS[index % len(QUESTIONS)]})

    streamed: list[str] = []
    blocked = threading.Event()

    def stall(event: Event) -> None:
        # Subscribed after the store: by the time this runs, the store has seen the delta.
        if isinstance(event, TextDelta):
            streamed.append(event.delta)
            if len(streamed) == 2:
                say({"streaming": "".join(streamed), "session": session_id})
                blocked.wait()  # the "model" stops mid-answer; the test kills the process now

    bus.subscribe(stall)
    await runner.run_turn("what time is it? tell me precisely")


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])))
