"""The presenter's flow model on event sequences: what lights up, what stops where, and which claims show."""

from __future__ import annotations

import pytest

from console.core.events import (
    AccountChanged,
    ErrorCode,
    FailedStep,
    Notice,
    SearchResults,
    ServerStep,
    ToolEnded,
    ToolStarted,
    TurnStarted,
)
from console.core.flow import FlowModel, StepState
from tests.presenter import scenarios as sc

DONE, HIT, FAILED, PENDING, ACTIVE = (
    StepState.DONE,
    StepState.CACHE_HIT,
    StepState.FAILED,
    StepState.PENDING,
    StepState.ACTIVE,
)


def run(events: list) -> FlowModel:
    model = FlowModel()
    model.signed_in(sc.ALICE, sc.USER_CLAIMS)
    return model.replay(events)


def states(model: FlowModel) -> list[StepState]:
    return [s.state for s in model.steps]


def test_steps_light_up_one_by_one_as_their_events_arrive() -> None:
    model = FlowModel()
    assert states(model) == [PENDING] * 5
    seen = []
    for event in sc.success():
        model.apply(event)
        seen.append(tuple(states(model)))
    # each step lit only once the event proving it had arrived
    assert seen[0] == (DONE, PENDING, PENDING, PENDING, PENDING)  # AccountChanged: signed in
    assert seen[2] == (DONE, DONE, ACTIVE, PENDING, PENDING)  # ToolStarted(mcp): token on its way
    assert seen[3] == (DONE, DONE, DONE, ACTIVE, PENDING)  # validate ok
    assert seen[4] == (DONE, DONE, DONE, DONE, ACTIVE)  # obo_exchange ok
    assert seen[5] == (DONE,) * 5  # search ok
    assert model.complete and model.stopped_at is None


def test_success_shows_the_claims_that_matter_at_each_step() -> None:
    model = run(sc.success())
    sign_in, token, validation, obo, search = model.steps
    assert sign_in.fact("user") == "Alice Adams" and sign_in.fact("audience") == sc.API_CLIENT_ID
    assert token.fact("audience") == sc.API_CLIENT_ID and token.fact("tool") == "get_documents"
    assert validation.fact("oid") == sc.ALICE_OID and validation.duration_ms == 1.8
    assert obo.fact("audience before") == sc.API_CLIENT_ID
    assert obo.fact("audience after") == "https://search.azure.com"
    assert obo.fact("exchange") == "exchanged" and obo.duration_ms == 38.5
    assert search.fact("ran as") == f"Alice Adams ({sc.ALICE_OID})"
    assert search.fact("documents") == "3 visible" and model.documents == 3
    assert search.fact("groups") == sc.ALICE_GROUP


@pytest.mark.parametrize(
    ("signature", "shown"),
    [
        ("verified", "verified on this request"),
        ("cached", "verified on an earlier request with this token"),
        (None, None),  # a server that does not say: no line rather than a guess
    ],
)
def test_validation_says_whether_the_signature_was_verified_on_this_request(
    signature: str | None, shown: str | None
) -> None:
    events = [
        *sc.sign_in(),
        *sc.call_start(),
        _progress("validate", "ok", oid=sc.ALICE_OID, signature=signature),
    ]
    validation = run(events).step("validation")
    fact = validation.fact("signature")
    assert fact == shown if shown is None else (fact or "").startswith(shown)
    # Checked on this request: the claims always; the signature unless an earlier request's check was reused.
    checked = "issuer, audience, expiry, scope"
    assert validation.fact("checked") == (checked if signature == "cached" else f"signature, {checked}")


def test_cache_hit_lights_the_obo_step_as_a_cache_hit() -> None:
    model = run(sc.SCENARIOS["cache_hit"]())
    assert states(model) == [DONE, DONE, DONE, HIT, DONE]
    assert model.step("obo").fact("exchange") == "cache hit (no call to the identity platform)"
    assert model.step("obo").lit and model.complete


def test_cache_hit_reported_only_in_the_results_still_shows() -> None:
    events = [
        e for e in sc.success(cache_hit=True) if not (isinstance(e, ServerStep) and e.step == "obo_exchange")
    ]
    assert states(run(events)) == [DONE, DONE, DONE, HIT, DONE]


def test_wrong_client_secret_stops_at_the_obo_step_with_aadsts7000215_and_search_never_lights() -> None:
    model = run(sc.wrong_client_secret())
    assert states(model) == [DONE, DONE, DONE, FAILED, PENDING]
    assert model.stopped_at is model.step("obo")
    assert model.step("obo").error == "AADSTS7000215: the MCP server's client secret is wrong"
    assert not model.step("search").lit and model.step("search").facts == ()


def test_consent_missing_stops_at_the_obo_step_with_aadsts65001() -> None:
    model = run(sc.consent_missing())
    assert states(model) == [DONE, DONE, DONE, FAILED, PENDING]
    assert model.step("obo").error == "AADSTS65001: consent is missing for the API to call Azure AI Search"


def test_invalid_token_401_stops_at_validation() -> None:
    model = run(sc.invalid_token())
    assert states(model) == [DONE, DONE, FAILED, PENDING, PENDING]
    assert model.step("validation").error == "HTTP 401: the MCP server rejected the user's token"
    said = model.step("validation").fact("server said") or ""
    assert said.startswith(
        "The MCP server at http://127.0.0.1:8000/mcp refused the token: HTTP 401 invalid_token"
    )


def test_validation_error_reported_as_a_server_step_stops_at_validation() -> None:
    events = [
        *sc.sign_in(),
        *sc.call_start(),
        ServerStep(
            account=sc.ALICE,
            call_id=sc.CALL,
            step="validate",
            status="error",
            detail={"error": "token expired"},
        ),
    ]
    model = run(events)
    assert states(model) == [DONE, DONE, FAILED, PENDING, PENDING]
    assert model.step("validation").error == "token expired"


def test_search_outage_stops_at_the_search_step_after_a_good_exchange() -> None:
    model = run(sc.search_outage())
    assert states(model) == [DONE, DONE, DONE, DONE, FAILED]
    assert model.step("search").error == "the search service is unavailable (503)"
    assert model.step("obo").fact("audience after") == "https://search.azure.com"


def test_failure_known_only_from_the_results_meta_is_placed_at_the_right_step() -> None:
    """No progress notifications (only the final _meta): the results still say where it stopped."""
    only_results = [e for e in sc.wrong_client_secret() if not isinstance(e, ServerStep)]
    assert states(run(only_results)) == [DONE, DONE, DONE, FAILED, PENDING]
    outage = [e for e in sc.search_outage() if not isinstance(e, ServerStep)]
    assert states(run(outage)) == [DONE, DONE, DONE, DONE, FAILED]


def test_a_new_turn_starts_the_tool_steps_over_but_keeps_the_sign_in() -> None:
    model = run(sc.wrong_client_secret())
    model.apply(TurnStarted(account=sc.ALICE, turn_id="t2", text="again"))
    assert states(model) == [DONE, PENDING, PENDING, PENDING, PENDING]
    assert model.step("token").fact("audience") == sc.API_CLIENT_ID  # known from the sign-in
    model.replay(sc.success()[1:])
    assert model.complete


def test_switching_account_starts_everything_over_and_signing_out_clears_it() -> None:
    model = run(sc.success())
    model.apply(AccountChanged(account="bob@contoso.example", previous=sc.ALICE))
    assert model.account == "bob@contoso.example"
    assert states(model) == [DONE, PENDING, PENDING, PENDING, PENDING]
    assert model.step("sign_in").fact("user") == "bob@contoso.example"  # nothing of alice's
    assert all(sc.ALICE_OID not in value for step in model.steps for _, value in step.facts)
    model.apply(AccountChanged(account=None, previous="bob@contoso.example"))
    assert states(model) == [PENDING] * 5


def test_non_mcp_tools_do_not_touch_the_flow() -> None:
    model = run(sc.sign_in())
    changed = model.apply(ToolStarted(account=sc.ALICE, tool="get_time", call_id="c9", tool_type="function"))
    assert not changed and states(model) == [DONE, PENDING, PENDING, PENDING, PENDING]


# Where each scenario stops (None: it completes). A new scenario must say where it stops.
STOPS_AT: dict[str, str | None] = {
    "success": None,
    "cache_hit": None,
    "invalid_token": "validation",
    "wrong_client_secret": "obo",
    "consent_missing": "obo",
    "search_outage": "search",
}


def _progress(step: str, status: str, **detail: object) -> ServerStep:
    return ServerStep(account=sc.ALICE, call_id=sc.CALL, step=step, status=status, detail=dict(detail))


def validation_refused_after_later_steps_ran() -> list:
    """Progress out of order: the exchange (done) and the search (under way) before the validation's refusal."""
    return [
        *sc.sign_in(),
        *sc.call_start(),
        _progress("obo_exchange", "ok"),
        _progress("validate", "error", error="token expired"),
    ]


def exchange_refused_while_search_under_way() -> list:
    return [
        *sc.sign_in(),
        *sc.call_start(),
        *sc.validated(),
        _progress("obo_exchange", "ok"),
        _progress("obo_exchange", "error", aadsts="AADSTS65001"),
    ]


FAILURE_CASES = {
    **{name: (factory, STOPS_AT.get(name, "(not in STOPS_AT)")) for name, factory in sc.SCENARIOS.items()},
    "validation_refused_after_later_steps_ran": (validation_refused_after_later_steps_ran, "validation"),
    "exchange_refused_while_search_under_way": (exchange_refused_while_search_under_way, "obo"),
}


def test_every_scenario_says_where_it_stops() -> None:
    assert sorted(STOPS_AT) == sorted(sc.SCENARIOS)


@pytest.mark.parametrize("name", sorted(FAILURE_CASES))
def test_no_step_after_a_failure_is_lit_or_under_way(name: str) -> None:
    factory, stop = FAILURE_CASES[name]
    model = run(factory())
    stopped = model.stopped_at
    assert (stopped.key if stopped is not None else None) == stop
    # The steps before the stop (all of them when the flow completes) are lit; the stop failed with a reason;
    # every step after it is back to pending: neither lit nor under way.
    stop_number = stopped.number if stopped is not None else len(model.steps) + 1
    assert [s.lit for s in model.steps if s.number < stop_number] == [True] * (stop_number - 1)
    assert stopped is None or (stopped.state is FAILED and stopped.error)
    assert [s.state for s in model.steps if s.number > stop_number] == [PENDING] * (
        len(model.steps) - stop_number
    )
    assert model.complete is (stopped is None)


def test_an_mcp_server_that_cannot_be_reached_stops_at_the_token_step() -> None:
    model = run(
        [
            *sc.sign_in(),
            Notice(
                account=sc.ALICE,
                level="error",
                source="agents",
                message="The MCP server at http://127.0.0.1:9/mcp is not reachable "
                "(ConnectError: connection refused). Its tools are unavailable.",
                code=ErrorCode.MCP_UNREACHABLE,
                step=FailedStep.CONNECT,
            ),
        ]
    )
    assert states(model) == [DONE, FAILED, PENDING, PENDING, PENDING]
    assert model.step("token").error == "the MCP server did not take the call"
    assert "connection refused" in (model.step("token").fact("server said") or "")


# ---- the flow decides from the events' fields (code, HTTP status, step), never from their wording

NOT_AUTH_FAILURES = {
    "a config notice naming 401": Notice(
        account=sc.ALICE,
        level="error",
        source="configs",
        message="config budget-401.json is invalid: '401 Unauthorized' is not a model name",
    ),
    "a server-link notice quoting a 401 page": Notice(
        account=sc.ALICE,
        level="error",
        source="server",
        message="http://127.0.0.1:8401/mcp is not answering: /healthz said 401 unauthorized",
    ),
    "a search error about index docs-401": SearchResults(
        account=sc.ALICE,
        call_id=sc.CALL,
        ran_as=sc.RAN_AS,
        obo_claims=sc.OBO_CLAIMS,
        error="Search failed: index 'docs-401' refused the query (insufficient_scope on field 401)",
        step=FailedStep.SEARCH,
    ),
}


@pytest.mark.parametrize("name", sorted(NOT_AUTH_FAILURES))
def test_text_that_mentions_401_is_not_taken_for_an_auth_failure(name: str) -> None:
    model = run([*sc.call_start(), *sc.validated(), NOT_AUTH_FAILURES[name]])
    assert model.step("validation").state is DONE and model.step("validation").error is None
    if isinstance(NOT_AUTH_FAILURES[name], SearchResults):  # a real failure, placed where its step field says
        assert states(model) == [DONE, DONE, DONE, DONE, FAILED]
        assert (
            model.step("search").error == "Search failed: index 'docs-401' refused the query "
            "(insufficient_scope on field 401)"
        )
    else:  # notices that report no failed step leave the flow alone
        assert states(model) == [DONE, DONE, DONE, ACTIVE, PENDING] and model.stopped_at is None


def test_a_refusal_is_read_from_its_fields_whatever_its_words() -> None:
    refused = Notice(
        account=sc.ALICE,
        level="error",
        source="agents",
        message="the server said no",
        code=ErrorCode.TOKEN_REFUSED,
        http_status=403,
        step=FailedStep.VALIDATE,
    )
    model = run([TurnStarted(account=sc.ALICE, turn_id="t1", text="show my documents"), refused])
    assert states(model) == [DONE, DONE, FAILED, PENDING, PENDING]
    assert (
        model.step("validation").error == "HTTP 403: the user's token lacks the scope the MCP server requires"
    )
    assert model.step("validation").fact("server said") == "the server said no"


def test_a_tool_error_with_a_refusal_status_stops_at_validation_and_one_with_an_aadsts_code_at_the_obo_step() -> (
    None
):
    refused = ToolEnded(
        account=sc.ALICE,
        tool="get_documents",
        call_id=sc.CALL,
        tool_type="mcp",
        error="Tool error: no",
        code=ErrorCode.TOKEN_REFUSED,
        http_status=401,
        step=FailedStep.VALIDATE,
    )
    assert states(run([*sc.call_start(), refused])) == [DONE, DONE, FAILED, PENDING, PENDING]
    exchange = ToolEnded(
        account=sc.ALICE,
        tool="get_documents",
        call_id=sc.CALL,
        tool_type="mcp",
        error="Tool error: the exchange failed",
        code="AADSTS65001",
        step=FailedStep.OBO_EXCHANGE,
    )
    model = run([*sc.call_start(), exchange])
    assert states(model) == [DONE, DONE, DONE, FAILED, PENDING]
    assert model.step("obo").error == "AADSTS65001: consent is missing for the API to call Azure AI Search"
