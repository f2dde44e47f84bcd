"""Conditional Access in the demo tenant: MFA for Azure AI Search (HR: carol) on the OBO exchange, and the
device-code flow blocked for dave, each answered as Entra answers it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import jwt
import pytest
import requests

from mcp_server.localcloud.ca import trusting_session
from mcp_server.localcloud.identity.platform import IdentityPlatform
from mcp_server.localcloud.tenant import Tenant
from tests.identity.helpers import api_app, assert_entra_error, device_flow_sign_in, post_obo, public_app

SEARCH = "https://search.azure.com/.default"
MFA_POLICY = "9ab03e19-ed42-4168-b6b7-7001fb3e933a"
SEARCH_APP_ID = "880da380-985e-4198-81b9-e05b1cc53158"


def claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def obo(platform: IdentityPlatform, assertion: str, **extra: str) -> requests.Response:
    with trusting_session(platform.ca_cert_path) as session:
        return post_obo(session, platform, assertion, **extra)


def test_demo_tenant_file_has_the_two_policies(demo_tenant: Tenant) -> None:
    by_name = {p.name: p for p in demo_tenant.policies}
    assert set(by_name) == {"MFA for Azure AI Search", "Device-code flow blocked"}
    mfa, block = by_name["MFA for Azure AI Search"], by_name["Device-code flow blocked"]
    hr = next(g.id for g in demo_tenant.groups if g.name == "HR")
    dave = demo_tenant.user_by_login("dave")
    assert dave is not None
    assert (mfa.id, mfa.grant, mfa.group_ids, mfa.resources) == (
        MFA_POLICY,
        "mfa",
        frozenset({hr}),
        ("https://search.azure.com",),
    )
    assert (block.grant, block.user_ids, block.authentication_flows) == (
        "block",
        frozenset({dave.oid}),
        ("deviceCodeFlow",),
    )


def test_obo_for_search_without_mfa_is_interaction_required_with_a_claims_challenge(
    identity_platform: IdentityPlatform,
) -> None:
    answer = obo(identity_platform, identity_platform.issue_access_token("carol", mfa=False))
    assert answer.status_code == 400
    body = answer.json()
    assert_entra_error(body, "interaction_required", 50076)
    assert f"must use multi-factor authentication to access '{SEARCH_APP_ID}'" in body["error_description"]
    assert json.loads(body["claims"]) == {
        "access_token": {"capolids": {"essential": True, "values": [MFA_POLICY]}}
    }


def test_the_same_request_with_mfa_done_gets_a_search_token_that_says_so(
    identity_platform: IdentityPlatform,
) -> None:
    answer = obo(identity_platform, identity_platform.issue_access_token("carol", mfa=True))
    assert answer.status_code == 200, answer.text
    search_token = claims_of(answer.json()["access_token"])
    assert search_token["aud"] == "https://search.azure.com" and search_token["amr"] == ["pwd", "mfa"]


def test_the_policy_covers_hr_only_and_search_only(identity_platform: IdentityPlatform) -> None:
    for login in ("alice", "bob", "dave"):  # not in HR: no MFA needed
        assert (
            obo(identity_platform, identity_platform.issue_access_token(login, mfa=False)).status_code == 200
        )
    # carol's own API token without MFA is fine: the policy is about Azure AI Search.
    carol = claims_of(identity_platform.issue_access_token("carol", mfa=False))
    assert carol["amr"] == ["pwd"] and carol["aud"] == identity_platform.api_client_id


def test_msal_on_behalf_of_surfaces_the_claims_member(identity_platform: IdentityPlatform) -> None:
    with trusting_session(identity_platform.ca_cert_path) as session:
        result = api_app(identity_platform, session).acquire_token_on_behalf_of(
            identity_platform.issue_access_token("carol", mfa=False), [SEARCH]
        )
    assert result["error"] == "interaction_required" and result["error_codes"] == [50076]
    assert MFA_POLICY in json.loads(result["claims"])["access_token"]["capolids"]["values"]


def test_a_claims_request_on_obo_demands_mfa_even_without_a_policy(
    identity_platform: IdentityPlatform,
) -> None:
    claims = json.dumps({"access_token": {"acrs": {"essential": True, "values": ["c1"]}}})
    answer = obo(identity_platform, identity_platform.issue_access_token("alice", mfa=False), claims=claims)
    assert answer.status_code == 400
    assert json.loads(answer.json()["claims"]) == {
        "access_token": {"acrs": {"essential": True, "values": ["c1"]}}
    }
    done = obo(identity_platform, identity_platform.issue_access_token("alice", mfa=True), claims=claims)
    assert claims_of(done.json()["access_token"])["acrs"] == ["c1"]


def test_device_code_for_dave_is_blocked_by_conditional_access(identity_platform: IdentityPlatform) -> None:
    with trusting_session(identity_platform.ca_cert_path) as session:
        result = device_flow_sign_in(identity_platform, public_app(identity_platform, session), "dave")
    assert "access_token" not in result
    assert result["error"] == "invalid_grant" and result["error_codes"] == [53003]
    assert result["error_description"].startswith(
        "AADSTS53003: Access has been blocked by Conditional Access policies. The access policy does not allow "
        "token issuance."
    )


def test_device_code_for_others_is_not_blocked(identity_platform: IdentityPlatform) -> None:
    with trusting_session(identity_platform.ca_cert_path) as session:
        result = device_flow_sign_in(identity_platform, public_app(identity_platform, session), "bob")
    assert "access_token" in result and claims_of(result["access_token"])["amr"] == ["pwd"]


# -- the second step on the device-login page ----------------------------------------------------------------


@pytest.fixture(scope="module")
def mfa_for_api(identity_platform: IdentityPlatform) -> Iterator[IdentityPlatform]:
    """The demo tenant with the MFA policy aimed at the MCP API, so the console's own sign-in needs MFA."""
    tenant = identity_platform.tenant
    policy = replace(tenant.policies[0], resources=(tenant.api_app.identifier_uris[0],))
    with IdentityPlatform(replace(tenant, policies=(policy,)), home=identity_platform.home) as platform:
        yield platform


def test_device_page_asks_for_the_second_step_when_a_policy_covers_the_sign_in(
    mfa_for_api: IdentityPlatform,
) -> None:
    from mcp_server.localcloud.identity.device_page import complete_device_code

    identity_platform = mfa_for_api
    with trusting_session(identity_platform.ca_cert_path) as session:
        app = public_app(identity_platform, session)
        flow = app.initiate_device_flow(scopes=[identity_platform.api_scope])
        first = session.post(
            identity_platform.verification_uri,
            data={"user_code": flow["user_code"], "login": "carol", "action": "approve"},
        )
        assert (
            first.status_code == 200
            and "Verify your identity" in first.text
            and "id=mfa-number" in first.text
        )
        assert "name=mfa value=approve" in first.text
        flow["expires_at"] = (
            0  # MSAL: poll once; the code is still pending (no token without the second step)
        )
        pending = app.acquire_token_by_device_flow(flow)
        assert pending["error"] == "authorization_pending"
        complete_device_code(flow["verification_uri"], flow["user_code"], "carol", session=session, mfa=True)
        flow["expires_at"] = 2**40
        # A fresh MSAL app: MSAL replays a 400 answer for 60 s within one app.
        result = public_app(identity_platform, session).acquire_token_by_device_flow(flow)
    assert claims_of(result["access_token"])["amr"] == ["pwd", "mfa"], result


def test_a_claims_request_on_devicecode_makes_the_page_ask_and_the_token_carry_acrs(
    identity_platform: IdentityPlatform,
) -> None:
    from mcp_server.localcloud.identity.device_page import complete_device_code

    claims = json.dumps({"access_token": {"acrs": {"essential": True, "values": ["c1"]}}})
    with trusting_session(identity_platform.ca_cert_path) as session:
        app = public_app(identity_platform, session)
        flow = app.initiate_device_flow(scopes=[identity_platform.api_scope], claims_challenge=claims)
        page = session.post(
            identity_platform.verification_uri,
            data={"user_code": flow["user_code"], "login": "alice", "action": "approve"},
        )
        assert "Verify your identity" in page.text
        complete_device_code(flow["verification_uri"], flow["user_code"], "alice", session=session, mfa=True)
        result = app.acquire_token_by_device_flow(flow)
    token = claims_of(result["access_token"])
    assert (token["amr"], token["acrs"]) == (["pwd", "mfa"], ["c1"])
