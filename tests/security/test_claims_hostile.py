"""Hostile ``claims`` parameters at the local identity platform's endpoints: each refused with Entra's envelope,
and none of them lets a session without MFA get a token a policy protects."""

from __future__ import annotations

import json

import pytest

from mcp_server.localcloud.ca import trusting_session
from mcp_server.localcloud.identity.platform import IdentityPlatform
from tests.identity.helpers import assert_entra_error, post_obo

SEARCH = "https://search.azure.com/.default"


def obo(platform: IdentityPlatform, assertion: str, claims: str) -> dict[str, object]:
    with trusting_session(platform.ca_cert_path) as session:
        answer = post_obo(session, platform, assertion, claims=claims)
    assert answer.status_code == 400
    return answer.json()


@pytest.mark.parametrize(
    ("claims", "detail"),
    [
        ("{not json", "It is not JSON."),
        ('["access_token"]', "It must be a JSON object"),
        ('{"access_token": "mfa"}', "'access_token' must be a JSON object."),
        ('{"access_token": {"amr": ["mfa"]}}', "'amr' must be an object with 'values' or 'value'."),
        ('{"access_token": {"acrs": {"values": [1, 2]}}}', "'acrs' values must be a list of short strings."),
        (
            '{"access_token": {"acrs": {"values": ["' + "x" * 65 + '"]}}}',
            "values must be a list of short strings",
        ),
        (
            json.dumps({"access_token": {"acrs": {"values": ["c" + str(i) for i in range(600)]}}}),
            "at most 2048",
        ),
    ],
)
def test_malformed_or_huge_claims_are_invalid_request(
    identity_platform: IdentityPlatform, claims: str, detail: str
) -> None:
    body = obo(identity_platform, identity_platform.issue_access_token("carol", mfa=False), claims)
    assert_entra_error(body, "invalid_request", 90100)
    assert detail in str(body["error_description"])


def test_a_forged_claims_request_cannot_waive_the_policy(identity_platform: IdentityPlatform) -> None:
    """Claims only ever ask for more: naming another policy, an empty list or amr=pwd still needs MFA."""
    for forged in (
        {"access_token": {"capolids": {"essential": False, "values": []}}},
        {"access_token": {"amr": {"values": ["pwd"]}}},
        {
            "access_token": {
                "capolids": {"essential": True, "values": ["00000000-0000-0000-0000-000000000000"]}
            }
        },
    ):
        body = obo(
            identity_platform, identity_platform.issue_access_token("carol", mfa=False), json.dumps(forged)
        )
        assert_entra_error(body, "interaction_required", 50076)
        assert (
            "9ab03e19-ed42-4168-b6b7-7001fb3e933a"
            in json.loads(str(body["claims"]))["access_token"]["capolids"]["values"]
        )
