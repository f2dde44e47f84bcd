"""Conditional Access through the middle tier: carol (HR) has MFA required for Azure AI Search. With a token
lacking MFA the OBO exchange answers interaction_required + claims; the tool fails closed and relays the claims
challenge (docs/server.md, Claims challenge). The OBO cache never serves a stronger sign-in's token to a weaker
one, and never keeps a failure."""

from __future__ import annotations

import base64
import json

from mcp_server.server.steps import META_KEY
from mcp_server.stack import LocalStack
from tests.fixtures.stack import OwnServer, api_token, device_flow_token
from tests.server.helpers import call, expected_names

MFA_POLICY = "9ab03e19-ed42-4168-b6b7-7001fb3e933a"
CLAIMS = {"access_token": {"capolids": {"essential": True, "values": [MFA_POLICY]}}}


def decoded(value: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(value))


def assert_challenge(result: object) -> dict:
    assert result.is_error
    body = result.structured_content
    assert set(body) == {
        "error", "claims", "aadsts", "resource", "scope", "policy_ids", "reason", "www_authenticate",
    }  # fmt: skip
    assert body["error"] == "insufficient_claims"
    assert decoded(body["claims"]) == CLAIMS
    assert (body["aadsts"], body["resource"], body["scope"], body["policy_ids"]) == (
        50076,
        "https://search.azure.com",
        "https://search.azure.com/.default",
        [MFA_POLICY],
    )
    assert "must use multi-factor authentication" in body["reason"]
    assert body["www_authenticate"].startswith('Bearer error="insufficient_claims", error_description="')
    assert body["www_authenticate"].endswith(f'claims="{body["claims"]}"')
    assert "documents" not in body
    text = result.content[0].text
    assert text.startswith("On-behalf-of token exchange failed (AADSTS50076): ")
    assert text.endswith("The user must sign in again to satisfy the claims challenge.")
    meta = result.meta[META_KEY]
    assert meta["challenge"] == body and meta["aadsts"] == "AADSTS50076" and meta["hits"] == 0
    assert [(s["step"], s["status"]) for s in meta["steps"]] == [
        ("validate", "ok"),
        ("obo_exchange", "error"),
    ]
    return body


async def test_carol_without_mfa_gets_the_claims_challenge_and_no_documents(
    local_stack: LocalStack, own_mcp_server: OwnServer
) -> None:
    token = device_flow_token(local_stack, "carol", mfa=False)
    assert_challenge(await call(own_mcp_server.mcp_url, token))
    metrics = own_mcp_server.server.metrics
    assert metrics.value("mcp_tool_calls_total", tool="get_documents", outcome="claims_challenge") == 1
    assert metrics.value("mcp_tool_calls_total", tool="get_documents", outcome="ok") == 0
    assert len(own_mcp_server.server.cache) == 0  # the failure is not cached


async def test_after_the_challenge_mfa_gets_documents_and_the_weaker_token_is_still_challenged(
    local_stack: LocalStack, own_mcp_server: OwnServer
) -> None:
    weak = device_flow_token(local_stack, "carol", mfa=False)
    assert_challenge(await call(own_mcp_server.mcp_url, weak))
    strong = api_token(local_stack, "carol")  # signed in with MFA
    result = await call(own_mcp_server.mcp_url, strong)
    assert not result.is_error
    names = {d["name"] for d in result.structured_content["documents"]}
    assert names == expected_names(local_stack, "carol")
    assert result.meta[META_KEY]["obo_claims"]["amr"] == ["pwd", "mfa"]
    # The MFA sign-in's OBO token is cached, but never for a caller whose token lacks MFA.
    assert_challenge(await call(own_mcp_server.mcp_url, weak))
    again = await call(own_mcp_server.mcp_url, strong)
    assert not again.is_error and again.meta[META_KEY]["cache"] == "hit"
    assert len(own_mcp_server.server.cache) == 1


async def test_users_without_a_policy_are_not_challenged(
    local_stack: LocalStack, own_mcp_server: OwnServer
) -> None:
    result = await call(own_mcp_server.mcp_url, device_flow_token(local_stack, "bob", mfa=False))
    assert not result.is_error
    assert {d["name"] for d in result.structured_content["documents"]} == expected_names(local_stack, "bob")
