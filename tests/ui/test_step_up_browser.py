"""The step-up without the demo shortcut, in the console (Pilot, the real Workspace in Azure mode pointed at the
local stack, real MSAL's interactive flow, the real MCP server): carol signs in in the browser from F2, asks for
her documents, and the step-up opens the sign-in page in the system browser. While it waits, the chat and the
presenter view say to complete the sign-in in the browser and show the page; once the person at the browser
completes it (the multi-factor number step included) the turn runs again once and her documents come back."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from console.core.events import Event, StepUp
from console.core.flow import StepState
from console.core.step_up_flow import IN_BROWSER
from console.core.workspace import Workspace
from console.ui.app import OboConsoleApp
from console.ui.screens.presenter import PresenterScreen
from console.ui.screens.sign_in import SignInScreen
from console.ui.widgets.chat_pane import ChatPane
from console.ui.widgets.claims_pane import ClaimsPane
from console.ui.widgets.flow_steps import StepCard
from console.ui.widgets.results_pane import ResultsPane
from mcp_server.stack import LocalStack
from tests.core.test_step_up_browser import azure_env
from tests.fixtures.browser_person import BrowserPerson
from tests.fixtures.stack import PATIENT_HEALTH, OwnServer
from tests.fixtures.workspace import workspace_on
from tests.server.helpers import expected_names
from tests.ui.helpers import retried_turn_end, until
from tests.ui.test_flow import FAST, SIZE, TURN


@pytest.fixture
def workspace(
    local_stack: LocalStack, own_mcp_server: OwnServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Workspace]:
    azure_env(local_stack, own_mcp_server.mcp_url, monkeypatch)
    own_mcp_server.server.health_probe.timeout = PATIENT_HEALTH  # a loaded machine: see patient_health
    with workspace_on(FAST) as ws:
        yield ws


async def test_the_step_up_waits_for_the_browser_then_carol_gets_her_documents(
    workspace: Workspace, person: BrowserPerson, local_stack: LocalStack
) -> None:
    app = OboConsoleApp(workspace=workspace)
    seen: list[Event] = []
    workspace.bus.subscribe(seen.append)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.main_screen
        await until(pilot, lambda: isinstance(app.screen, SignInScreen) and app.screen.flow is not None, 60)
        person.login = "carol"
        await pilot.press("b")  # browser sign-in: the person signs carol in (no MFA asked)
        await until(pilot, lambda: not isinstance(app.screen, SignInScreen), 60, "carol's sign-in")
        claims_before = workspace.user_claims()
        assert claims_before is not None and claims_before["amr"] == ["pwd"]

        person.login = ""  # the step-up's page opens in the browser; nobody completes it yet
        screen.query_one("#prompt").focus()
        await pilot.press(*"show my documents", "enter")

        def page() -> str:
            return next((e.url for e in seen if isinstance(e, StepUp) and e.url), "")

        await until(pilot, lambda: bool(page()), TURN, "the step-up's sign-in page")
        assert page() == person.opened[-1]
        chat = screen.query_one(ChatPane)
        waiting = f"Step-up (multi-factor authentication): {IN_BROWSER}: {page()}"
        await until(pilot, lambda: any(e.text == waiting for e in chat.entries), 10, "the chat's notice")

        await pilot.press("f7")
        await until(pilot, lambda: isinstance(app.screen, PresenterScreen), 10, "the presenter view")
        presenter = app.screen
        assert isinstance(presenter, PresenterScreen)
        await until(pilot, lambda: len(presenter.query(StepCard)) == 6, 10, "the step-up card")
        step = presenter.model.step("step_up")
        assert (step.state, step.fact("how"), step.fact("sign-in page")) == (
            StepState.ACTIVE,
            IN_BROWSER,
            page(),
        )
        await until(pilot, lambda: IN_BROWSER in str(presenter.query_one("#flow-step-6", StepCard).render()))

        person.complete("carol")  # the person completes the page, number matching included

        await until(pilot, lambda: retried_turn_end(seen) is not None, 2 * TURN, "the retried turn's end")
        ended = retried_turn_end(seen)
        assert ended is not None and ended.error is None and person.errors == [], (ended, person.errors)
        await until(pilot, lambda: presenter.model.step("step_up").state is StepState.DONE, 10)
        step = presenter.model.step("step_up")
        assert step.fact("how") == "signed in again in the browser"
        assert (step.fact("sign-in before"), step.fact("sign-in after")) == ("amr pwd", "amr pwd, mfa")

        results = screen.query_one(ResultsPane)
        await until(pilot, lambda: results.results is not None and not results.results.error, 10)
        assert set(results.document_names) == expected_names(local_stack, "carol")
        claims = screen.query_one(ClaimsPane)
        await until(pilot, lambda: claims.step_up == ("amr pwd", "amr pwd, mfa"), 10, "amr before/after")
        await until(pilot, lambda: bool(chat.entries) and chat.entries[-1].role == "assistant", 10)
        assert [e.role for e in chat.entries] == ["user", "notice", "notice", "assistant"]
