"""The scenarios from the console: F9 lists them, enter applies, r resets; the command palette does the same
(Pilot, the real app against the scenario stack's admin endpoint)."""

from __future__ import annotations

from textual.widgets import DataTable, Static

from console.ui.app import OboConsoleApp
from console.ui.screens.scenarios import ScenariosScreen
from mcp_server.scenarios import SCENARIOS
from tests.doctor.conftest import ScenarioStack
from tests.ui.fake_workspace import FakeWorkspace
from tests.ui.helpers import help_rows, open_palette, until

SIZE = (160, 45)


async def test_f9_lists_applies_and_resets(scenario_stack: ScenarioStack) -> None:
    switch = scenario_stack.stack.scenarios
    app = OboConsoleApp(workspace=FakeWorkspace())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f9")
        await until(pilot, lambda: isinstance(app.screen, ScenariosScreen) and app.screen.status is not None)
        screen = app.screen
        assert isinstance(screen, ScenariosScreen)
        table = screen.query_one(DataTable)
        assert [str(k.value) for k in table.rows] == list(SCENARIOS)
        await pilot.press("down", "down")  # the third: expired-secret
        await pilot.press("enter")
        await until(pilot, lambda: switch.active == "expired-secret")
        detail = str(screen.query_one("#scenarios-detail", Static).render())
        assert "Active: expired-secret" in detail and "doctor` names 'obo'" in detail
        await pilot.press("r")
        await until(
            pilot,
            lambda: (
                switch.active is None
                and "No scenario is active" in str(screen.query_one("#scenarios-detail", Static).render())
            ),
        )
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, ScenariosScreen))


async def test_the_palette_applies_and_resets(scenario_stack: ScenarioStack) -> None:
    switch = scenario_stack.stack.scenarios
    app = OboConsoleApp(workspace=FakeWorkspace())
    async with app.run_test(size=SIZE) as pilot:
        await open_palette(pilot)
        await pilot.press(*"scenario: apply search-down")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await until(pilot, lambda: switch.active == "search-down")
        await open_palette(pilot)
        await pilot.press(*"scenario: reset")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await until(pilot, lambda: switch.active is None)


async def test_the_key_is_in_help_and_refused_clearly_without_a_stack() -> None:
    app = OboConsoleApp(workspace=FakeWorkspace())
    async with app.run_test(size=SIZE) as pilot:
        rows = await help_rows(pilot)
        assert "f9" in str(rows["scenario.show"]) and "Scenarios" in str(rows["scenario.show"])
        await pilot.press("escape")
        await pilot.press("f9")
        await until(
            pilot, lambda: any("No local stack is running" in str(n.message) for n in app._notifications)
        )
        assert not isinstance(app.screen, ScenariosScreen)
