"""The console settles its heap (console.core.heap) as obo-console runs it: frozen once the core has started, then
collected and frozen after the first turn, and collected between later turns, never while a turn runs.

The settling runs on a timer; instead of sleeping, the tests wait for a later timer of their own (``timers_fired``):
once it fires, every settling timer set before it has fired too."""

from __future__ import annotations

import gc

import pytest

from console.ui.app import HEAP_SETTLE_DELAY, OboConsoleApp
from tests.ui.fake_workspace import FakeWorkspace
from tests.ui.helpers import timers_fired, until

pytestmark = pytest.mark.usefixtures("unfrozen_heap")


async def test_the_heap_is_frozen_once_started_and_after_the_first_turn_never_mid_turn() -> None:
    app = OboConsoleApp(workspace=FakeWorkspace(), settle_heap=True)
    async with app.run_test(size=(160, 45)) as pilot:
        await until(pilot, lambda: app.heap.frozen_at == ["core started"], what="the freeze once started")
        assert gc.get_freeze_count() > 1000
        settled: list[bool] = []
        real = app.heap.between_turns
        app.heap.between_turns = lambda: (settled.append(True), real())  # type: ignore[method-assign]
        screen = app.main_screen
        screen.turn_running = True  # a turn runs: the settling waits for it
        app.turn_finished()
        await timers_fired(pilot, HEAP_SETTLE_DELAY * 2.5)  # the settling came and found the turn running
        assert app.heap.frozen_at == ["core started"] and settled == []
        screen.turn_running = False
        await until(pilot, lambda: app.heap.frozen_at == ["core started", "first turn"], what="the settling")
        assert settled == [True]
        frozen = gc.get_freeze_count()
        await pilot.press(*"show my documents", "enter")  # a real turn ends with a collection, no new freeze
        await until(pilot, lambda: settled == [True, True], 30, "the settling after a real turn")
        # (frozen objects freed by their reference count leave the frozen set: it can only shrink here)
        assert app.heap.frozen_at == ["core started", "first turn"] and gc.get_freeze_count() <= frozen
        for _ in range(3):  # turns in quick succession share one collection
            app.turn_finished()
        await timers_fired(pilot, HEAP_SETTLE_DELAY * 1.5)
        assert settled == [True, True, True]


async def test_apps_do_not_freeze_unless_asked() -> None:
    app = OboConsoleApp(workspace=FakeWorkspace())
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.press(*"show my documents", "enter")
        await app.workers.wait_for_complete()
        await timers_fired(pilot, HEAP_SETTLE_DELAY * 1.5)
        assert app.heap.frozen_at == [] and gc.get_freeze_count() == 0
