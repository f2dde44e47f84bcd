"""The step-up in the console, end to end (Pilot, the real Workspace, the real local stack, real MSAL): carol (HR)
signs in with the "sign in as" shortcut (no MFA: nothing asks for it), asks for her documents, the MCP server
relays the Conditional Access claims challenge, the console signs her in again with the claims (the shortcut
completes the page's MFA step, visibly) and retries the turn once: her documents come back. The presenter view
shows the step-up as its own step; the claims pane shows amr before and after."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from console.core.events import Event, StepUp, StepUpStatus
from console.core.flow import StepState
from console.core.workspace import Workspace
from console.ui.app import OboConsoleApp
from console.ui.screens.presenter import PresenterScreen
from console.ui.screens.sign_in import SignInScreen
from console.ui.widgets.chat_pane import ChatPane
from console.ui.widgets.claims_pane import ClaimsPane
from console.ui.widgets.events_pane import EventsPane
from console.ui.widgets.flow_steps import StepCard
from console.ui.widgets.results_pane import ResultsPane
from mcp_server.stack import LocalStack
from tests.fixtures.workspace import workspace_on
from tests.server.helpers import expected_names
from tests.ui.helpers import retried_turn_end, until
from tests.ui.test_flow import FAST, SIZE, TURN

MFA_POLICY = "9ab03e19-ed42-4168-b6b7-7001fb3e933a"


@pytest.fixture
def workspace(use_local_stack: LocalStack, patient_local_stack: LocalStack) -> Iterator[Workspace]:
    with workspace_on(FAST) as ws:
        yield ws


async def test_carol_documents_challenge_mfa_step_up_documents(
    workspace: Workspace, local_stack: LocalStack
) -> None:
    app = OboConsoleApp(workspace=workspace)
    seen: list[Event] = []
    workspace.bus.subscribe(seen.append)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.main_screen
        await until(pilot, lambda: isinstance(app.screen, SignInScreen) and app.screen.flow is not None, 60)
        await pilot.press("3")  # carol, the third demo user
        await until(pilot, lambda: not isinstance(app.screen, SignInScreen), 60, "carol's sign-in")
        assert workspace.user_claims()["amr"] == ["pwd"]  # type: ignore[index]

        screen.query_one("#prompt").focus()
        await pilot.press(*"show my documents", "enter")

        await until(pilot, lambda: retried_turn_end(seen) is not None, 2 * TURN, "the retried turn's end")
        ended = retried_turn_end(seen)
        assert ended is not None and ended.error is None, ended
        steps = [e for e in seen if isinstance(e, StepUp)]
        assert [s.status for s in steps] == [
            StepUpStatus.REQUIRED,
            StepUpStatus.SIGNING_IN,
            StepUpStatus.DONE,
        ]

        # The results: carol's documents, from an OBO token obtained with MFA.
        results = screen.query_one(ResultsPane)
        await until(pilot, lambda: results.results is not None and not results.results.error, 10)
        assert set(results.document_names) == expected_names(local_stack, "carol")
        # The claims pane: amr before and after the step-up, and the new token's amr in the table.
        claims = screen.query_one(ClaimsPane)
        await until(pilot, lambda: claims.step_up is not None and bool(claims.step_up[1]), 10, "the step-up")
        assert claims.step_up == ("amr pwd", "amr pwd, mfa")
        summary = str(claims.query_one("#claims-summary").render())
        assert "step-up amr pwd → amr pwd, mfa" in summary
        assert claims.user["amr"] == ["pwd", "mfa"] and claims.obo["amr"] == ["pwd", "mfa"]
        # The chat: the question once, the step-up's reason, then the answer; the events pane names the step-up.
        chat = screen.query_one(ChatPane)
        await until(pilot, lambda: bool(chat.entries) and chat.entries[-1].role == "assistant", 10)
        assert [e.role for e in chat.entries] == ["user", "notice", "assistant"]
        assert "Conditional Access requires multi-factor authentication" in chat.entries[1].text
        events = screen.query_one(EventsPane)
        events.flush_rows()
        assert [r.status for r in events.rows if r.what == "step-up"] == ["required", "signing_in", "done"]

        # The presenter view: the step-up is its own (sixth) step, done, with amr before and after.
        await pilot.press("f7")
        await until(pilot, lambda: isinstance(app.screen, PresenterScreen), 10, "the presenter view")
        presenter = app.screen
        assert isinstance(presenter, PresenterScreen)
        await until(pilot, lambda: len(presenter.query(StepCard)) == 6, 10, "the step-up card")
        step = presenter.model.step("step_up")
        assert (step.number, step.title, step.state) == (6, "Step-up (Conditional Access)", StepState.DONE)
        assert step.fact("policy") == MFA_POLICY and step.fact("resource") == "https://search.azure.com"
        assert (step.fact("sign-in before"), step.fact("sign-in after")) == ("amr pwd", "amr pwd, mfa")
        assert presenter.model.complete and presenter.model.stopped_at is None
        card = presenter.query_one("#flow-step-6", StepCard)
        assert "Step-up (Conditional Access)" in str(card.render()) and "amr pwd, mfa" in str(card.render())
