"""Snapshot tests (pytest-textual-snapshot) of the main screen and the sign-in screen with fixed data and a
FixedClock. Update the baselines with `pytest tests/ui --snapshot-update` after a deliberate change."""

from __future__ import annotations

from console.ui.app import OboConsoleApp
from console.ui.widgets.events_pane import EventsPane
from tests.ui.fake_workspace import FakeWorkspace


def _no_blink(app: OboConsoleApp) -> None:
    for area in app.screen.query("TextArea"):
        area.cursor_blink = False


def test_main_screen_after_asking_for_documents(snap_compare) -> None:
    async def run_before(pilot) -> None:  # Pilot
        await pilot.pause()
        _no_blink(pilot.app)
        await pilot.press(*"show my documents", "enter")
        await pilot.app.workers.wait_for_complete()
        pilot.app.main_screen.query_one(EventsPane).flush_rows()  # not left to the table's next timed update
        await pilot.pause()
        await pilot.pause()

    assert snap_compare(
        OboConsoleApp(workspace=FakeWorkspace()), terminal_size=(160, 45), run_before=run_before
    )


def test_main_screen_on_a_small_terminal(snap_compare) -> None:
    async def run_before(pilot) -> None:
        await pilot.pause()
        _no_blink(pilot.app)
        await pilot.press(*"show my documents", "enter")
        await pilot.app.workers.wait_for_complete()
        pilot.app.main_screen.query_one(EventsPane).flush_rows()  # not left to the table's next timed update
        await pilot.pause()
        await pilot.press("f6", "f6", "f6", "f6")  # to the results pane
        await pilot.pause()

    assert snap_compare(
        OboConsoleApp(workspace=FakeWorkspace()), terminal_size=(100, 30), run_before=run_before
    )


def test_sign_in_screen(snap_compare) -> None:
    async def run_before(pilot) -> None:
        await pilot.pause()
        screen = pilot.app.screen
        while getattr(screen, "flow", None) is None:
            await pilot.pause(0.02)
        screen.query_one("#sign-in-as").focus()
        await pilot.pause()

    assert snap_compare(
        OboConsoleApp(workspace=FakeWorkspace(signed_in=None)), terminal_size=(160, 45), run_before=run_before
    )
