"""The real console core in a process the kill test SIGKILLs: a Workspace on the running local stack signs in as
alice, completes turns, then blocks its own event loop on the first streamed fragment of the next answer.

Run: python -m tests.core.console_writer QUESTION... (the last question is the one left mid-answer). Prints one
JSON line per completed turn (``{"done": ...}``), then ``{"streaming": <fragment>, "session": id}``.
"""

from __future__ import annotations

import json
import sys
import threading

from console.core.events import Event, TextDelta
from console.core.settings import Settings
from console.core.workspace import Workspace


def say(value: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()


def main(questions: list[str]) -> None:
    ws = Workspace(Settings())
    ws.start()
    ws.sign_in_as("alice")
    for question in questions[:-1]:
        outcome = ws.send_sync(question, timeout=60)
        assert outcome.error is None, outcome.error
        say({"done": outcome.output})
    forever = threading.Event()

    def stall(event: Event) -> None:
        # The workspace bus hears an event after the session store has recorded it.
        if isinstance(event, TextDelta):
            say({"streaming": event.delta, "session": ws.current_session_id()})
            forever.wait()  # the answer stops streaming here, on the workspace loop, until we are killed

    ws.bus.subscribe(stall)
    ws.submit(questions[-1])
    forever.wait()


if __name__ == "__main__":
    main(sys.argv[1:])
