"""Pilot tests of the presenter view: steps light up live as events arrive, failures show where and why the flow
stopped, the last answer is there, both terminal sizes show everything, and it works inside the real app."""

from __future__ import annotations

import asyncio

import pytest

from console.core.events import AccountChanged
from console.ui.app import OboConsoleApp
from console.ui.screens.main import MainScreen
from console.ui.screens.presenter import PresenterScreen
from console.ui.widgets.flow_steps import StepCard
from tests.presenter import scenarios as sc
from tests.presenter.host import PresenterHost, ScenarioWorkspace
from tests.presenter.screen_text import screen_text
from tests.ui.fake_workspace import FakeWorkspace
from tests.ui.helpers import until

SIZES = [(160, 45), (100, 30)]


def card_classes(app: PresenterHost | OboConsoleApp) -> list[str]:
    cards = list(app.screen.query(StepCard))
    assert len(cards) == 5
    return [next(c for c in card.classes if c.startswith("-")) for card in cards]


async def test_steps_light_up_live_one_by_one() -> None:
    workspace = ScenarioWorkspace()
    app = PresenterHost(workspace)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.pause()
        assert card_classes(app) == ["-done", "-pending", "-pending", "-pending", "-pending"]  # signed in
        text = screen_text(app)
        assert "Alice Adams" in text and sc.API_CLIENT_ID in text and "1 of 5 steps" in text
        events = sc.success()[1:]
        expected_after = {
            1: ["-done", "-done", "-active", "-pending", "-pending"],  # ToolStarted: token on its way
            2: ["-done", "-done", "-done", "-active", "-pending"],  # validated
            3: ["-done", "-done", "-done", "-done", "-active"],  # exchanged
            4: ["-done"] * 5,  # searched
        }
        for index, event in enumerate(events):
            workspace.bus.publish(event)
            await pilot.pause()
            if index in expected_after:
                assert card_classes(app) == expected_after[index], f"after {event.kind}"
        text = screen_text(app)
        assert "every step done" in text
        assert f"{sc.API_CLIENT_ID} → https://search.azure.com" in text  # audience before → after
        assert f"Alice Adams ({sc.ALICE_OID})" in text and "3 visible" in text
        assert (
            "You asked: show my documents" in text and "Quarterly finance report, Alice's onboarding" in text
        )


@pytest.mark.parametrize(
    ("name", "stopped", "why"),
    [
        ("wrong_client_secret", 4, "AADSTS7000215: the MCP server's client secret is wrong"),
        ("consent_missing", 4, "AADSTS65001: consent is missing for the API to call Azure AI Search"),
        ("invalid_token", 3, "HTTP 401: the MCP server rejected the user's token"),
        ("search_outage", 5, "the search service is unavailable (503)"),
    ],
)
@pytest.mark.parametrize("size", SIZES)
async def test_failures_show_where_the_flow_stopped_and_why(
    name: str, stopped: int, why: str, size: tuple[int, int]
) -> None:
    app = PresenterHost(ScenarioWorkspace(), sc.SCENARIOS[name]())
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        classes = card_classes(app)
        assert classes[stopped - 1] == "-failed"
        assert all(c == "-done" for c in classes[: stopped - 1])
        assert all(c == "-pending" for c in classes[stopped:])  # nothing after the failure lights
        text = screen_text(app)
        assert f"stopped at step {stopped}" in text and f"why: {why}" in text
        assert "✖ stopped here" in text and "You asked: show my documents" in text
        assert app.screen.has_class("-failed")


@pytest.mark.parametrize("size", SIZES)
async def test_every_step_and_the_answer_fit_on_screen(size: tuple[int, int]) -> None:
    app = PresenterHost(ScenarioWorkspace(), sc.success())
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        text = screen_text(app)
        for title in ("Sign-in", "Token to the MCP server", "Validation", "OBO exchange", "Trimmed search"):
            assert title in text
        assert "Last answer" in text and "Documents agent" in text and "esc" in text
        region = app.screen.query_one("#presenter-answer").region
        assert (
            region.bottom <= size[1] - 1 and region.height >= 4
        )  # the answer box is on screen, above the footer
        assert app.screen.has_class("-compact") == (size[1] < 40)


async def test_switching_account_starts_the_flow_over_with_nothing_of_the_previous_account() -> None:
    workspace = ScenarioWorkspace()
    app = PresenterHost(workspace, sc.success())
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.pause()
        assert card_classes(app) == ["-done"] * 5
        workspace.current_account = type(workspace.current_account)("bob@contoso.example", "Bob Baker")
        workspace._events.clear()  # bob's own events: none yet
        workspace._history.clear()
        workspace.bus.publish(AccountChanged(account="bob@contoso.example", previous=sc.ALICE))
        await pilot.pause()
        await pilot.pause()
        assert card_classes(app) == ["-done", "-pending", "-pending", "-pending", "-pending"]
        text = screen_text(app)
        assert "Bob Baker" in text and sc.ALICE_OID not in text and "Quarterly finance" not in text
        # alice's late events are not shown on bob's flow
        workspace.bus.publish(sc.success()[2])
        await pilot.pause()
        assert card_classes(app)[1] == "-pending"


async def test_in_the_console_app_over_its_workspace_and_back() -> None:
    app = OboConsoleApp(workspace=FakeWorkspace())
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.pause()
        await app.push_screen(PresenterScreen(lambda: app.workspace))
        await pilot.pause()
        assert isinstance(app.screen, PresenterScreen)
        assert card_classes(app) == ["-done", "-pending", "-pending", "-pending", "-pending"]
        assert app.workspace is not None
        await asyncio.wrap_future(app.workspace.submit("show my documents"))
        await until(pilot, lambda: card_classes(app) == ["-done"] * 5, what="every step lit")
        await until(pilot, lambda: "3 documents" in screen_text(app), what="the answer on screen")
        text = screen_text(app)
        assert "https://search.azure.com" in text and "Alice Adams" in text and "3 documents" in text
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)
        # opened again later, it rebuilds from the workspace's events
        await app.push_screen(PresenterScreen(lambda: app.workspace))
        await pilot.pause()
        assert card_classes(app) == ["-done"] * 5


async def test_opened_while_the_console_is_starting_it_follows_the_workspace_once_there() -> None:
    app = PresenterHost(None)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert "nobody signed in" in screen_text(app)
        assert card_classes(app) == ["-pending"] * 5
        workspace = ScenarioWorkspace()
        app.workspace = workspace  # the core finished loading
        await until(pilot, lambda: card_classes(app)[0] == "-done", what="the sign-in step")
        workspace.play(sc.success()[1:])
        await until(pilot, lambda: card_classes(app) == ["-done"] * 5, what="every step lit")
