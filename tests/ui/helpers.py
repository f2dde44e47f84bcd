"""Helpers for the UI tests: wait for a condition on screen instead of sleeping."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from textual.pilot import Pilot

from console.core.events import Event, TurnEnded, TurnStarted


async def until(pilot: Pilot, condition: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    """Let the app run until ``condition()`` holds (fails the test after ``timeout`` seconds)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await pilot.pause(0.02)


async def open_palette(pilot: Pilot) -> None:
    """ctrl+p, then wait until the command palette has the focus (keys typed before that go to the prompt)."""
    from textual.command import CommandInput, CommandPalette

    await pilot.press("ctrl+p")
    await until(
        pilot,
        lambda: isinstance(pilot.app.screen, CommandPalette) and isinstance(pilot.app.focused, CommandInput),
        what="the command palette",
    )


async def timers_fired(pilot: Pilot, delay: float) -> None:
    """Let the app run until a timer of ``delay`` seconds, set now, fires. Timers fire in deadline order, so every
    timer of the app set before with a shorter delay has fired by then: "nothing more comes" without a sleep."""
    fired: list[bool] = []
    pilot.app.set_timer(delay, lambda: fired.append(True), name="test-timers-fired")
    await until(pilot, lambda: bool(fired), 30 + delay, f"a {delay} s timer")


async def help_rows(pilot: Pilot) -> dict[str, list[object]]:
    """Open the help screen (F1) and return its rows by binding id (the cells: keys first, the id fourth)."""
    from textual.widgets import DataTable

    from console.ui.screens.help import HelpScreen

    await pilot.press("f1")
    await pilot.pause()
    assert isinstance(pilot.app.screen, HelpScreen)
    table = pilot.app.screen.query_one(DataTable)
    return {str(table.get_row_at(i)[3]): table.get_row_at(i) for i in range(table.row_count)}


def retried_turn_end(seen: list[Event]) -> TurnEnded | None:
    """The end of the turn retried after a step-up (None until it ended)."""
    retry = next((e for e in seen if isinstance(e, TurnStarted) and e.retry_of), None)
    return next((e for e in seen if isinstance(e, TurnEnded) and retry and e.turn_id == retry.turn_id), None)
