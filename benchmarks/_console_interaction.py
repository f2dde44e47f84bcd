"""In-process console timings for bench_console: the real OboConsoleApp (Textual's headless driver) over the real
Workspace, the real local stack on free ports in a temporary home (launched by the console in its own process),
and the offline model, signed in as alice.

* Enter on "show my documents" → the document rows in the results pane, beside the moment the core published the
  search results on its bus in the same turn (so the UI's share is visible);
* keystroke → the character in the prompt, while an answer streams into the chat, against the same keystrokes with
  nothing streaming.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.ui.terminal import console_env

# Characters typed per keystroke sample (distinct, so each arrival is unambiguous).
KEYS = "abcdefghijklmnopqrstuvwxyz"
DELTA_INTERVAL = 0.004  # seconds between streamed fragments (~250 per second: a fast model)


@dataclass
class InteractionFigures:
    enter_to_rows_ui: list[float] = field(default_factory=list)
    enter_to_results_event: list[float] = field(default_factory=list)
    key_idle: list[float] = field(default_factory=list)
    key_streaming: list[float] = field(default_factory=list)
    fragments_streamed: int = 0


@contextmanager
def local_environment(home: Path) -> Iterator[None]:
    """A clean settings environment in ``home`` on free ports: the console launches the local stack itself, in its
    own process, as ``obo-console`` does."""
    saved = dict(os.environ)
    drop = ("OPENAI_API_KEY", "USE_REDIS", "REDIS_URL", "PYTHON_KEYRING_BACKEND")
    env = console_env(home, drop=drop, OBO_CONSOLE_KEYRING_BACKEND="file")
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


async def _until(pilot, condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await pilot.pause(0.01)


async def _poll(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Seconds until ``condition()`` holds, checked every millisecond (the UI's loop runs in between)."""
    start = time.perf_counter()
    while not condition():
        if time.perf_counter() - start > timeout:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.001)
    return time.perf_counter() - start


def press(app: object, key: str) -> None:
    """What ``pilot.press`` does first: a Key event into the app's queue, as the terminal driver sends it.

    ``pilot.press`` then also waits until the *process* looks idle (CPU time, up to 1 s, twice); with the core and
    the local stack working in this process that wait, not the console, would be measured.
    """
    from textual import events

    event = events.Key(key, key if len(key) == 1 else None)
    event.set_sender(app)  # type: ignore[arg-type]
    app._driver.send_message(event)  # type: ignore[attr-defined]


async def _drive(runs: int, keys: int) -> InteractionFigures:
    from textual.widgets import DataTable

    from console.core.clock import FixedClock
    from console.core.events import Event, SearchResults, TextDelta, TurnStarted
    from console.core.link_state import LinkTimings
    from console.core.settings import Settings
    from console.core.workspace import Workspace
    from console.ui.app import OboConsoleApp
    from console.ui.screens.sign_in import SignInScreen
    from console.ui.widgets.chat_pane import ChatPane
    from console.ui.widgets.prompt_input import PromptInput
    from console.ui.widgets.results_pane import ResultsPane

    figures = InteractionFigures()
    timings = LinkTimings(
        startup_timeout=60, poll_interval=0.2, probe_timeout=2, backoff_base=0.1, backoff_max=0.8
    )
    workspace = Workspace(Settings(), clock=FixedClock(), link_timings=timings)
    app = OboConsoleApp(workspace=workspace, settle_heap=True)  # as obo-console runs it
    try:
        async with app.run_test(size=(160, 45)) as pilot:
            screen = app.main_screen
            await _until(
                pilot,
                lambda: isinstance(app.screen, SignInScreen) and app.screen.flow is not None,
                60,
                "the sign-in screen",
            )
            await pilot.press("1")  # sign in as alice (local mode completes the device-code page)
            await _until(pilot, lambda: not isinstance(app.screen, SignInScreen), 60, "alice's sign-in")
            table = screen.query_one(ResultsPane).query_one(DataTable)
            prompt = screen.query_one(PromptInput)
            chat = screen.query_one(ChatPane)
            published: list[float] = []

            def on_event(event: Event) -> None:  # in the publisher's thread: the moment the core has the rows
                if isinstance(event, SearchResults):
                    published.append(time.perf_counter())

            workspace.bus.subscribe(on_event)

            async def one_turn() -> tuple[float, float]:
                await pilot.press("ctrl+n")  # a new conversation: the results pane is empty again
                await _until(pilot, lambda: table.row_count == 0 and not screen.turn_running, 10, "the reset")
                prompt.focus()
                await pilot.press(*"show my documents")
                published.clear()
                start = time.perf_counter()
                press(app, "enter")
                await _poll(lambda: table.row_count > 0, 60, "the document rows")
                took = time.perf_counter() - start
                await _until(pilot, lambda: not screen.turn_running, 60, "the end of the turn")
                return took, published[0] - start

            await one_turn()  # warm: the MCP session, the OBO token cache, the first Markdown import
            for _ in range(runs):
                on_screen, in_core = await one_turn()
                figures.enter_to_rows_ui.append(on_screen)
                figures.enter_to_results_event.append(in_core)

            await pilot.press("ctrl+n")
            await _until(pilot, lambda: not chat.entries, 10, "the reset")
            prompt.focus()

            async def keystroke(char: str) -> float:
                before = prompt.text
                press(app, char)
                return await _poll(lambda: prompt.text == before + char, 10, f"{char!r} in the prompt")

            for i in range(keys):
                figures.key_idle.append(await keystroke(KEYS[i % len(KEYS)]))
            await pilot.press("ctrl+n")  # clears the history; the prompt keeps its text, cleared below
            prompt.clear()

            # A long answer streams into the chat through the real bus, from another thread, as the core does.
            stop = threading.Event()
            user = workspace.current_account.username  # type: ignore[union-attr]
            agent = workspace.main_agent

            def stream() -> None:
                workspace.bus.publish(
                    TurnStarted(account=user, agent=agent, text="tell me a long story", ts=0.0)
                )
                n = 0
                while not stop.is_set():
                    words = f"Sentence {n} of a long **streamed** answer, with some `code` and more words. "
                    workspace.bus.publish(TextDelta(account=user, agent=agent, delta=words, ts=0.0))
                    n += 1
                    if n % 40 == 0:
                        workspace.bus.publish(TextDelta(account=user, agent=agent, delta="\n\n", ts=0.0))
                    time.sleep(DELTA_INTERVAL)
                figures.fragments_streamed = n

            streamer = threading.Thread(target=stream, name="bench-stream", daemon=True)
            streamer.start()
            await _until(pilot, lambda: chat._streaming is not None, 10, "the streaming answer")
            await pilot.pause(0.5)  # a good part of the answer is on screen already
            try:
                for i in range(keys):
                    figures.key_streaming.append(await keystroke(KEYS[i % len(KEYS)]))
                    await asyncio.sleep(0.02)  # a fast typist: ~50 keys per second at most
            finally:
                stop.set()
                streamer.join(5)
            await chat.finish_streaming()
            await pilot.press("ctrl+q")
    finally:
        workspace.close()
    return figures


def measure(home: Path, *, runs: int, keys: int) -> InteractionFigures:
    with local_environment(home):
        return asyncio.run(_drive(runs, keys))


def p50_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000
