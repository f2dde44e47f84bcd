"""Export: the conversation, its events and the claims (masked) as Markdown, the trace as JSON lines — checked
line by line on a fixed session."""

from __future__ import annotations

import json
import os
import stat

from console.core.events import Notice, TurnStarted
from console.core.export import conversation_markdown, export_session, trace_jsonl
from console.core.sessions import SessionStore
from mcp_server.paths import data_dir
from tests.presenter import scenarios as sc

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXZhbHVl"
AUD_MEANING = "Audience: the API this token is for; that API must reject tokens meant for anyone else."
ISS_MEANING = "Issuer: the identity platform and tenant that issued and signed the token."
OID_MEANING = (
    "Object id: the user's immutable id in the tenant, the same in every application (used for access "
    "checks)."
)
TID_MEANING = "Tenant id: the directory the user signed in to."
SCP_MEANING = "Scopes: the delegated permissions the user granted to the client for this API."
EXP_MEANING = "Expires: the token is not valid after this time."
ISS = f"https://127.0.0.1:8443/{sc.TENANT}/v2.0"


def recorded() -> tuple[SessionStore, str]:
    store = SessionStore(sc.ALICE)
    session = store.new_session("conversation", now=sc.T0)
    for event in sc.success():
        store.record(event)
    return store, session


def test_markdown_export_line_by_line() -> None:
    store, session = recorded()
    text = conversation_markdown(
        store.load(session),
        store.events(session),
        account=sc.ALICE,
        user_claims=sc.USER_CLAIMS,
        obo_claims=sc.OBO_CLAIMS,
    )
    expected = [
        "# OBO Console conversation: show my documents",
        "",
        "- Account: alice@contoso.example",
        f"- Session: {session}",
        "- Started: 2026-01-15 09:30:00 UTC",
        "- Last activity: 2026-01-15 09:30:02 UTC",
        "- Main agent: conversation",
        "- Messages: 2",
        "",
        "## Conversation",
        "",
        "### 1. You · 2026-01-15 09:30:01 UTC",
        "",
        "show my documents",
        "",
        "### 2. Documents agent · 2026-01-15 09:30:02 UTC",
        "",
        sc.ANSWER,
        "",
        "## Claims",
        "",
        "Decoded claims only; tokens are never exported.",
        "",
        "### User token",
        "",
        "| Claim | Value | Meaning |",
        "|---|---|---|",
        f"| aud | {sc.API_CLIENT_ID} | {AUD_MEANING} |",
        f"| iss | {ISS} | {ISS_MEANING} |",
        "| name | Alice Adams | Display name of the user (for display only, not for access decisions). |",
        "| preferred_username | alice@contoso.example | The user's sign-in name (UPN or email); mutable, for display "
        "only. |",
        f"| oid | {sc.ALICE_OID} | {OID_MEANING} |",
        f"| tid | {sc.TENANT} | {TID_MEANING} |",
        f"| scp | access_as_user | {SCP_MEANING} |",
        f"| exp | 1768473000 (2026-01-15 10:30:00 UTC) | {EXP_MEANING} |",
        "",
        "### OBO token (for Azure AI Search)",
        "",
        "| Claim | Value | Meaning |",
        "|---|---|---|",
        f"| aud | https://search.azure.com | {AUD_MEANING} |",
        f"| iss | {ISS} | {ISS_MEANING} |",
        f"| oid | {sc.ALICE_OID} | {OID_MEANING} |",
        f"| tid | {sc.TENANT} | {TID_MEANING} |",
        f"| groups | {sc.ALICE_GROUP} | Object ids of the groups the user belongs to (used for access checks, e.g. "
        "search trimming). |",
        f"| scp | user_impersonation | {SCP_MEANING} |",
        f"| exp | 1768473000 (2026-01-15 10:30:00 UTC) | {EXP_MEANING} |",
        "",
        "## Events",
        "",
        "| Time | Agent | Event |",
        "|---|---|---|",
        "| 2026-01-15 09:30:01.000 UTC | Conversation agent | turn started: show my documents |",
        '| 2026-01-15 09:30:01.200 UTC | Documents agent | mcp tool get_documents started: {"query": "*"} |',
        f"| 2026-01-15 09:30:01.250 UTC | Documents agent | server validate ok in 1.8 ms: oid={sc.ALICE_OID}, "
        f"tid={sc.TENANT} |",
        "| 2026-01-15 09:30:01.300 UTC | Documents agent | server obo_exchange ok in 38.5 ms: cache=miss |",
        "| 2026-01-15 09:30:01.400 UTC | Documents agent | server search ok in 6.2 ms: hits=3 |",
        "| 2026-01-15 09:30:01.450 UTC | Documents agent | search done: 3 documents visible to Alice Adams: "
        "Quarterly finance report, Alice's onboarding notes, Company holiday calendar |",
        "| 2026-01-15 09:30:01.500 UTC | Documents agent | mcp tool get_documents done in 52 ms: {...} |",
        "| 2026-01-15 09:30:02.100 UTC | Documents agent | turn done in 1100 ms |",
        "",
    ]
    lines = text.split("\n")
    for number, (got, want) in enumerate(zip(lines, expected, strict=False), start=1):
        assert got == want, f"line {number}"
    assert len(lines) == len(expected)


def test_trace_jsonl_line_by_line() -> None:
    store, session = recorded()
    lines = trace_jsonl(store.events(session)).splitlines()
    assert len(lines) == 8
    assert lines[0] == (
        '{"account":"alice@contoso.example","agent":"Conversation agent","kind":"turn_started",'
        '"retry_of":null,"text":"show my documents","ts":1768469401.0,"turn_id":"t1"}'
    )
    assert lines[3] == (
        '{"account":"alice@contoso.example","agent":"Documents agent","call_id":"call_docs_1",'
        '"detail":{"cache":"miss"},"duration_ms":38.5,"kind":"server_step","status":"ok",'
        '"step":"obo_exchange","tool":"get_documents","ts":1768469401.3,"turn_id":"t1"}'
    )
    records = [json.loads(line) for line in lines]
    assert [r["kind"] for r in records] == [
        "turn_started",
        "tool_started",
        "server_step",
        "server_step",
        "server_step",
        "search_results",
        "tool_ended",
        "turn_ended",
    ]
    results = records[5]
    assert results["obo_claims"]["aud"] == "https://search.azure.com" and len(results["documents"]) == 3
    assert [json.dumps(r, sort_keys=True, separators=(",", ":")) for r in records] == lines  # canonical form


def test_exports_mask_tokens_and_secrets_and_are_private() -> None:
    store, session = recorded()
    store.record(TurnStarted(account=sc.ALICE, turn_id="t9", text=f"decode {JWT} please", ts=sc.T0 + 9))
    store.record(
        Notice(
            account=sc.ALICE,
            turn_id="t9",
            level="error",
            ts=sc.T0 + 9.5,
            message=f"refused: Authorization: Bearer {JWT}; client_secret=s3cr3t-value",
        )
    )
    claims = dict(sc.USER_CLAIMS, access_token=JWT, note=f"copied {JWT}")
    paths = export_session(store, session, user_claims=claims, obo_claims=sc.OBO_CLAIMS)
    assert paths.markdown.parent == data_dir() / "exports"
    for path in (paths.markdown, paths.trace):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        text = path.read_text()
        assert "eyJ" not in text and "s3cr3t-value" not in text, path.name
    markdown = paths.markdown.read_text()
    assert "| access_token | *** |" in markdown and "| note | copied *** |" in markdown
    assert "decode *** please" in markdown and "client_secret=***" in markdown
    # exporting twice gives the same bytes (deterministic)
    again = export_session(store, session, user_claims=claims, obo_claims=sc.OBO_CLAIMS)
    assert again == paths and again.markdown.read_text() == markdown


def test_an_interrupted_answer_is_marked_in_the_export() -> None:
    store = SessionStore(sc.ALICE)
    session = store.new_session(now=sc.T0)
    store.append_message("user", "tell me everything", ts=sc.T0 + 1)
    store.append_message(
        "assistant", "Everything starts wi", agent="Front Agent", ts=sc.T0 + 2, complete=False
    )
    lines = conversation_markdown(store.load(session), [], account=sc.ALICE).split("\n")
    assert "### 2. Front Agent · 2026-01-15 09:30:02 UTC (interrupted: the answer stopped here)" in lines
    assert lines[lines.index("## Events") + 2] == "(none)"
    assert lines[lines.index("### User token") + 2] == "(none)"
