"""The step-up end to end in the core (real MSAL, real stack, offline model): carol (HR) signs in without MFA,
asks for her documents, the MCP server relays the Conditional Access claims challenge, the workspace signs her in
again with the claims (the demo shortcut completes the page's MFA step, visibly) and runs the turn once more."""

from __future__ import annotations

import json

from console.core.describe import describe
from console.core.events import Event, SearchResults, StepUp, StepUpStatus, TurnEnded, TurnStarted
from console.core.workspace import Workspace
from mcp_server.stack import LocalStack
from tests.server.helpers import expected_names

MFA_POLICY = "9ab03e19-ed42-4168-b6b7-7001fb3e933a"
CLAIMS = {"access_token": {"capolids": {"essential": True, "values": [MFA_POLICY]}}}


def test_carol_documents_challenge_mfa_step_up_documents(
    workspace: Workspace, local_stack: LocalStack
) -> None:
    ws = workspace
    ws.sign_in_as("carol")
    assert ws.user_claims()["amr"] == ["pwd"]  # the shortcut did no MFA: the page asked for none
    events: list[Event] = []
    ws.bus.subscribe(events.append)
    outcome = ws.send_sync("show my documents", timeout=120)
    assert outcome.error is None, outcome.error
    steps = [e for e in events if isinstance(e, StepUp)]
    assert [s.status for s in steps] == [StepUpStatus.REQUIRED, StepUpStatus.SIGNING_IN, StepUpStatus.DONE]
    done = steps[-1]
    assert (done.code, done.policy, done.resource, done.required, done.aadsts) == (
        "insufficient_claims",
        MFA_POLICY,
        "https://search.azure.com",
        "multi-factor authentication",
        50076,
    )
    assert json.loads(done.claims) == CLAIMS
    assert (done.amr_before, done.amr_after) == (["pwd"], ["pwd", "mfa"])
    assert done.how.startswith("the sign-in shortcut signed in as carol and confirmed number ")
    assert done.how.endswith(" on the page's multi-factor step")
    assert (
        describe(done)
        .line()
        .startswith(
            "step-up done: signed in again with multi-factor authentication; the turn runs again once "
            "(amr pwd → amr pwd, mfa)"
        )
    )
    assert ws.user_claims()["amr"] == ["pwd", "mfa"]
    # The challenged turn ended in the step-up's words; the retry ran once, as a retry, and found documents.
    started = [e for e in events if isinstance(e, TurnStarted)]
    ended = [e for e in events if isinstance(e, TurnEnded)]
    assert len(started) == 2 and started[1].retry_of == started[0].turn_id
    assert ended[0].error == (
        "Conditional Access requires multi-factor authentication for https://search.azure.com "
        f"(policy {MFA_POLICY}, AADSTS50076): no documents were returned."
    )
    assert ended[1].error is None
    results = [e for e in events if isinstance(e, SearchResults)]
    assert results[0].aadsts == "AADSTS50076" and results[0].documents == []
    assert {d["name"] for d in results[-1].documents} == expected_names(local_stack, "carol")
    assert results[-1].obo_claims["amr"] == ["pwd", "mfa"]
    # The question is in the conversation once; the step-up's notice and the answer follow it.
    roles = [entry.role for entry in ws.history()]
    assert roles == ["user", "notice", "assistant"]
    session = ws.session()
    assert session is not None and session.store is not None
    stored = [m.role for m in session.store.resume(session.store.current_id or "").messages]
    assert stored.count("user") == 1


def test_a_user_without_a_policy_never_steps_up(workspace: Workspace) -> None:
    workspace.sign_in_as("bob")
    events: list[Event] = []
    workspace.bus.subscribe(events.append)
    assert workspace.send_sync("show my documents", timeout=120).error is None
    assert not [e for e in events if isinstance(e, StepUp)]
    assert len([e for e in events if isinstance(e, TurnStarted)]) == 1
