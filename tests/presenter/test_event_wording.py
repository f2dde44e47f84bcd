"""One wording per event type (``console.core.describe``), said the same way by the headless printer, the export
and the events pane — which differ only in presentation (labels, columns, clipping). Stored events come back as
the same typed events, so an export words them as the live views did."""

from __future__ import annotations

import io

import pytest

from console.core.describe import EventDescription, describe, flat
from console.core.events import (
    AccountChanged,
    AgentEnded,
    AgentStarted,
    ErrorCode,
    Event,
    FailedStep,
    HandoffOccurred,
    ModelCalled,
    Notice,
    ServerStatusChanged,
    TextDelta,
    ToolEnded,
    event_from_dict,
)
from console.core.export import event_summary
from console.core.printer import EventPrinter, step_line
from console.ui.widgets.events_pane import EventsPane
from mcp_server import aadsts
from tests.presenter import scenarios as sc

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXZhbHVl"

OTHERS: list[Event] = [
    AgentStarted(account=sc.ALICE, agent="Calc", parent="Conversation agent"),
    AgentEnded(account=sc.ALICE, agent="Calc", output="42"),
    HandoffOccurred(
        account=sc.ALICE,
        agent="Conversation agent",
        from_agent="Conversation agent",
        to_agent="Simulator Agent",
    ),
    ModelCalled(
        account=sc.ALICE,
        agent="Calc",
        model="offline-demo",
        provider="offline",
        duration_ms=3.25,
        input_tokens=120,
        output_tokens=30,
    ),
    Notice(level="warning", source="configs", message="config simulator is invalid"),
    ServerStatusChanged(state="down", url="http://127.0.0.1:8000/mcp", detail="connection refused"),
    AccountChanged(account=None, previous=sc.ALICE),
    ToolEnded(
        account=sc.ALICE,
        agent=sc.AGENT,
        tool="get_documents",
        call_id="c2",
        tool_type="mcp",
        error="Tool error: the MCP server refused the token: HTTP 403 insufficient_scope",
        duration_ms=9.0,
        code=ErrorCode.TOKEN_REFUSED,
        http_status=403,
        step=FailedStep.VALIDATE,
    ),
]
EVERY = [*sc.success(), *sc.wrong_client_secret(), *sc.invalid_token(), *OTHERS]


def test_every_event_type_is_covered_and_comes_back_from_its_stored_form() -> None:
    kinds = {e.kind for e in EVERY}
    assert kinds >= {
        "turn_started",
        "turn_ended",
        "agent_started",
        "agent_ended",
        "handoff",
        "tool_started",
        "tool_ended",
        "model_called",
        "text_delta",
        "server_step",
        "search_results",
        "notice",
        "server_status",
        "account_changed",
    }
    for event in EVERY:
        assert event_from_dict(event.to_dict()) == event
    assert event_from_dict({"kind": "from_a_newer_version", "ts": 1.0}) is None
    # a stored event with a field this version does not know still comes back
    assert event_from_dict({**EVERY[1].to_dict(), "added_later": 1}) == EVERY[1]


@pytest.mark.parametrize("event", [e for e in EVERY if not isinstance(e, TextDelta)], ids=lambda e: e.kind)
def test_printer_export_and_events_pane_say_the_same_words(event: Event) -> None:
    described = describe(event)
    # the headless printer: the line, labelled with who it is about
    label = f"[{described.agent}] " if described.agent else ""
    assert (step_line(event) or "").removeprefix(label).strip() == described.line(120)
    # the export: the same line from the stored (dict) form
    assert event_summary(event.to_dict()) == (described.agent or "", described.line(240))
    # the events pane: the same words in its columns
    if isinstance(event, AccountChanged):
        return  # the pane rebuilds on an account change rather than listing it
    row = EventsPane()._row_for(event)
    assert row is not None
    width = 80 if isinstance(event, Notice) else 48
    assert (row.agent, row.what, row.status, row.summary, row.duration_ms) == (
        described.agent or "",
        described.what,
        described.status,
        flat(described.summary, width),
        described.duration_ms,
    )
    assert row.details == dict(described.details)


def test_the_wording_of_a_documents_call() -> None:
    err = io.StringIO()
    printer = EventPrinter(out=io.StringIO(), err=err)
    for event in [*sc.wrong_client_secret(), *OTHERS]:
        printer.handle(event)
    assert err.getvalue().splitlines() == [
        f"current account: {sc.ALICE}",
        "[Conversation agent] turn started: show my documents",
        '[Documents agent] mcp tool get_documents started: {"query": "*"}',
        f"[Documents agent]   server validate ok in 1.8 ms: oid={sc.ALICE_OID}, tid={sc.TENANT}",
        "[Documents agent]   server obo_exchange error in 41 ms: aadsts=AADSTS7000215, error=the MCP server's "
        "client secret is not valid (wrong or expired)",
        # the AADSTS table's meaning and fix, once per turn, under the first event that carries the code
        f"  AADSTS7000215: {aadsts.AADSTS[7000215].meaning}.",
        f"  Fix: {aadsts.AADSTS[7000215].fix}",
        "[Documents agent]   search failed: On-behalf-of token exchange failed (AADSTS7000215): the MCP server's "
        "client secret is not valid (wrong or expired)",
        "[Documents agent] mcp tool get_documents failed in 60 ms: Tool error: On-behalf-of token exchange failed "
        "(AADSTS7000215): the MCP server's client secret is not valid (wrong or e…",
        "[Documents agent] turn done in 1100 ms, but without the result of get_documents (it failed)",
        "[Calc] agent started: called by Conversation agent",
        "[Calc] agent done",
        "[Conversation agent] handoff: Conversation agent → Simulator Agent",
        "[Calc] model offline-demo answered in 3.2 ms: offline, 120→30 tokens",
        "[configs] notice warning: config simulator is invalid",
        "[console] MCP server down: http://127.0.0.1:8000/mcp connection refused",
        "current account: none (signed out)",
        "[Documents agent] mcp tool get_documents failed in 9 ms: Tool error: the MCP server refused the token: "
        "HTTP 403 insufficient_scope",
    ]


def test_a_failure_keeps_its_facts_for_the_expanded_view() -> None:
    described = describe(OTHERS[-1])
    assert dict(described.details) == {
        "result": "Tool error: the MCP server refused the token: HTTP 403 insufficient_scope",
        "code": "token_refused",
        "HTTP status": "403",
        "step": "validate",
    }


def test_descriptions_are_masked_whatever_the_event_held() -> None:
    leaky = [
        Notice(level="error", source="agents", message=f"refused: Authorization: Bearer {JWT}"),
        ToolEnded(account=sc.ALICE, tool="t", call_id="c", result=f'{{"token": "{JWT}"}}'),
        ServerStatusChanged(
            state="down", url="http://127.0.0.1:8000/mcp", detail=f"client_secret=s3cr3t-value {JWT}"
        ),
    ]
    for event in leaky:
        described = describe(event)
        texts = [described.line(), *(value for _, value in described.details)]
        assert all(JWT not in text and "s3cr3t-value" not in text for text in texts), described
        assert "***" in described.line()


def test_a_description_on_one_line() -> None:
    described = EventDescription("tool x", "done", "a\n  b   c", 1100.0)
    assert described.line() == "tool x done in 1100 ms: a b c"
    assert described.line(4) == "tool x done in 1100 ms: a b…"
    assert EventDescription("handoff", summary="A → B").line() == "handoff: A → B"
