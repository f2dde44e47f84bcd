"""Fixed event sequences of one `get_documents` call as the console's bus carries them (the shapes the MCP
event bridge publishes from the server's progress notifications and `_meta`), for the flow model and the
presenter view: success, cache hit, and each failure."""

from __future__ import annotations

from console.core.events import (
    AccountChanged,
    ErrorCode,
    Event,
    FailedStep,
    Notice,
    SearchResults,
    ServerStep,
    TextDelta,
    ToolEnded,
    ToolStarted,
    TurnEnded,
    TurnStarted,
)

T0 = 1768469400.0  # 2026-01-15 09:30:00 UTC (FixedClock's default)
ALICE = "alice@contoso.example"
TENANT = "7d3c1f1e-2b7a-4c55-9a51-3f0c6f1d2a10"
API_CLIENT_ID = "5b1e6f0a-7c4d-4e8b-9f21-0d6a3c2b1e90"
ALICE_OID = "1a1a1a1a-0000-4000-8000-000000000001"
ALICE_GROUP = "f1f1f1f1-0000-4000-8000-00000000000f"
CALL = "call_docs_1"
AGENT = "Documents agent"

USER_CLAIMS = {
    "aud": API_CLIENT_ID,
    "iss": f"https://127.0.0.1:8443/{TENANT}/v2.0",
    "name": "Alice Adams",
    "preferred_username": ALICE,
    "oid": ALICE_OID,
    "tid": TENANT,
    "scp": "access_as_user",
    "exp": int(T0) + 3600,
}
OBO_CLAIMS = {
    "aud": "https://search.azure.com",
    "iss": f"https://127.0.0.1:8443/{TENANT}/v2.0",
    "oid": ALICE_OID,
    "tid": TENANT,
    "groups": [ALICE_GROUP],
    "scp": "user_impersonation",
    "exp": int(T0) + 3600,
}
RAN_AS = {
    "name": "Alice Adams",
    "preferred_username": ALICE,
    "oid": ALICE_OID,
    "tid": TENANT,
    "groups": [ALICE_GROUP],
}
DOCUMENTS = [
    {"name": "Quarterly finance report", "oid": [], "group": [ALICE_GROUP], "@search.score": 2.7},
    {"name": "Alice's onboarding notes", "oid": [ALICE_OID], "group": [], "@search.score": 2.1},
    {"name": "Company holiday calendar", "oid": [], "group": ["all"], "@search.score": 1.5},
]
ANSWER = (
    "You can see 3 documents: Quarterly finance report, Alice's onboarding notes, Company holiday calendar."
)


def _e(cls: type[Event], offset: float, **fields: object) -> Event:
    fields.setdefault("account", ALICE)
    return cls(ts=T0 + offset, **fields)  # type: ignore[call-arg]


def sign_in() -> list[Event]:
    return [_e(AccountChanged, 0.0, previous=None)]


def call_start(turn: str = "t1") -> list[Event]:
    return [
        _e(TurnStarted, 1.0, turn_id=turn, agent="Conversation agent", text="show my documents"),
        _e(
            ToolStarted,
            1.2,
            turn_id=turn,
            agent=AGENT,
            tool="get_documents",
            call_id=CALL,
            arguments='{"query": "*"}',
            tool_type="mcp",
        ),
    ]


def validated(turn: str = "t1") -> list[Event]:
    return [
        _e(
            ServerStep,
            1.25,
            turn_id=turn,
            agent=AGENT,
            tool="get_documents",
            call_id=CALL,
            step="validate",
            status="ok",
            duration_ms=1.8,
            detail={"oid": ALICE_OID, "tid": TENANT},
        )
    ]


def answered(turn: str = "t1", offset: float = 2.0) -> list[Event]:
    return [
        _e(TextDelta, offset, turn_id=turn, agent=AGENT, delta="You can see 3 documents: "),
        _e(
            TurnEnded,
            offset + 0.1,
            turn_id=turn,
            agent=AGENT,
            output=ANSWER,
            duration_ms=1100.0,
            last_agent=AGENT,
        ),
    ]


def success(cache_hit: bool = False) -> list[Event]:
    obo_status = "cache_hit" if cache_hit else "ok"
    return [
        *sign_in(),
        *call_start(),
        *validated(),
        _e(
            ServerStep,
            1.3,
            turn_id="t1",
            agent=AGENT,
            tool="get_documents",
            call_id=CALL,
            step="obo_exchange",
            status=obo_status,
            duration_ms=0.4 if cache_hit else 38.5,
            detail={"cache": "hit" if cache_hit else "miss"},
        ),
        _e(
            ServerStep,
            1.4,
            turn_id="t1",
            agent=AGENT,
            tool="get_documents",
            call_id=CALL,
            step="search",
            status="ok",
            duration_ms=6.2,
            detail={"hits": 3},
        ),
        _e(
            SearchResults,
            1.45,
            turn_id="t1",
            agent=AGENT,
            call_id=CALL,
            query="*",
            ran_as=RAN_AS,
            documents=DOCUMENTS,
            obo_claims=OBO_CLAIMS,
            cache_hit=cache_hit,
        ),
        tool_ended("{...}", 52.0),
        *answered(),
    ]


def tool_ended(result: str, duration_ms: float, error: str | None = None) -> Event:
    """The get_documents call ending, with ``result`` (and ``error`` when it failed)."""
    return _e(
        ToolEnded,
        1.5,
        turn_id="t1",
        agent=AGENT,
        tool="get_documents",
        call_id=CALL,
        result=result,
        error=error,
        duration_ms=duration_ms,
        tool_type="mcp",
    )


def tool_failed(error: str, duration_ms: float, output: str) -> list[Event]:
    """The end of a turn whose get_documents call failed with ``error``: the tool ends, the agent says ``output``."""
    return [
        tool_ended(error, duration_ms, f"Tool error: {error}"),
        _e(
            TurnEnded,
            2.1,
            turn_id="t1",
            agent=AGENT,
            output=output,
            duration_ms=1100.0,
            last_agent=AGENT,
        ),
    ]


def obo_failure(code: str, cause: str) -> list[Event]:
    message = f"On-behalf-of token exchange failed ({code}): {cause}"
    return [
        *sign_in(),
        *call_start(),
        *validated(),
        _e(
            ServerStep,
            1.3,
            turn_id="t1",
            agent=AGENT,
            tool="get_documents",
            call_id=CALL,
            step="obo_exchange",
            status="error",
            duration_ms=41.0,
            detail={"aadsts": code, "error": cause},
        ),
        _e(
            SearchResults,
            1.45,
            turn_id="t1",
            agent=AGENT,
            call_id=CALL,
            query="*",
            ran_as=RAN_AS,
            error=message,
            aadsts=code,
        ),
        *tool_failed(message, 60.0, "I could not search your documents: the token exchange failed."),
    ]


def wrong_client_secret() -> list[Event]:
    return obo_failure("AADSTS7000215", "the MCP server's client secret is not valid (wrong or expired)")


def consent_missing() -> list[Event]:
    return obo_failure(
        "AADSTS65001",
        "consent is missing: the user or an administrator has not allowed the API to call Azure AI Search",
    )


def invalid_token() -> list[Event]:
    """The server answers 401 on connect: no tool runs, the runner says the server refused."""
    return [
        *sign_in(),
        _e(TurnStarted, 1.0, turn_id="t1", agent="Conversation agent", text="show my documents"),
        _e(
            Notice,
            1.1,
            level="error",
            source="agents",
            message="The MCP server at http://127.0.0.1:8000/mcp refused the token: HTTP 401 invalid_token "
            "(Authentication required). Its tools are unavailable this turn.",
            code=ErrorCode.TOKEN_REFUSED,
            http_status=401,
            step=FailedStep.VALIDATE,
        ),
        _e(
            TurnEnded,
            2.1,
            turn_id="t1",
            agent="Conversation agent",
            output="I cannot reach your documents now.",
            duration_ms=900.0,
            last_agent="Conversation agent",
        ),
    ]


def search_outage() -> list[Event]:
    error = "Search failed: the search service is unavailable (503)"
    return [
        *sign_in(),
        *call_start(),
        *validated(),
        _e(
            ServerStep,
            1.3,
            turn_id="t1",
            agent=AGENT,
            tool="get_documents",
            call_id=CALL,
            step="obo_exchange",
            status="ok",
            duration_ms=35.0,
            detail={"cache": "miss"},
        ),
        _e(
            ServerStep,
            1.4,
            turn_id="t1",
            agent=AGENT,
            tool="get_documents",
            call_id=CALL,
            step="search",
            status="error",
            duration_ms=3.0,
            detail={"error": "the search service is unavailable (503)"},
        ),
        _e(
            SearchResults,
            1.45,
            turn_id="t1",
            agent=AGENT,
            call_id=CALL,
            query="*",
            ran_as=RAN_AS,
            obo_claims=OBO_CLAIMS,
            cache_hit=False,
            error=error,
        ),
        *tool_failed(error, 50.0, "The search service is down right now."),
    ]


SCENARIOS = {
    "success": success,
    "cache_hit": lambda: success(cache_hit=True),
    "invalid_token": invalid_token,
    "wrong_client_secret": wrong_client_secret,
    "consent_missing": consent_missing,
    "search_outage": search_outage,
}
