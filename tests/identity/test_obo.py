"""The on-behalf-of grant: a raw POST written by hand, MSAL's confidential client, and every failure as Entra
answers it."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests

from mcp_server.localcloud.identity.platform import IdentityPlatform
from mcp_server.localcloud.tenant import Tenant
from tests.identity.helpers import (
    api_app,
    assert_entra_error,
    device_flow_sign_in,
    obo_form,
    post_obo,
    public_app,
)

SEARCH = "https://search.azure.com/.default"
SessionFactory = Callable[[], requests.Session]


@pytest.fixture(scope="module")
def alice_sign_in(identity_platform: IdentityPlatform) -> dict[str, Any]:
    """A real device-code sign-in through MSAL and the device-login form."""
    from mcp_server.localcloud.ca import trusting_session

    with trusting_session(identity_platform.ca_cert_path) as session:
        result = device_flow_sign_in(identity_platform, public_app(identity_platform, session), "alice")
    assert "access_token" in result, result
    return result


@pytest.fixture(scope="module")
def alice_token(alice_sign_in: dict[str, Any]) -> str:
    """A real user token for the MCP API."""
    return alice_sign_in["access_token"]


# -- an exchange_token written by hand for Entra's token endpoint; here only the host and the CA differ ------


def make_hand_written_exchange_token(host: str, tenant_id: str, client_id: str, client_secret: str, ca: Path):
    TENANT_ID, CLIENT_ID, CLIENT_SECRET = (
        tenant_id,
        client_id,
        client_secret,
    )  # the names the hand-written code uses

    async def exchange_token(
        original_token: str, scope: str = "https://graph.microsoft.com/.default"
    ) -> dict:
        obo_url = f"https://{host}/{TENANT_ID}/oauth2/v2.0/token"

        data = {
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "assertion": original_token,
            "scope": scope,
            "requested_token_use": "on_behalf_of",
        }

        try:
            response = requests.post(obo_url, data=data, verify=str(ca))

            if response.status_code == 200:
                token_data = response.json()
                return {
                    "success": True,
                    "access_token": token_data["access_token"],
                    "expires_in": token_data.get("expires_in"),
                    "token_type": token_data.get("token_type"),
                    "scope_used": scope,
                    "method": "OBO",
                }
            else:
                return {
                    "success": False,
                    "error": response.text,
                    "status_code": response.status_code,
                    "scope_attempted": scope,
                    "method": "OBO",
                }
        except Exception as e:
            return {"success": False, "error": str(e), "method": "OBO"}

    return exchange_token


def test_a_hand_written_exchange_token_gets_a_search_token_for_the_same_user(
    identity_platform: IdentityPlatform, alice_token: str, demo_tenant: Tenant
) -> None:
    host = identity_platform.base_url.removeprefix("https://")
    secret = demo_tenant.api_app.client_secret.get_secret_value()  # type: ignore[union-attr]
    exchange_token = make_hand_written_exchange_token(
        host, demo_tenant.tenant_id, demo_tenant.api_app.client_id, secret, identity_platform.ca_cert_path
    )
    result = asyncio.run(exchange_token(alice_token, scope="https://search.azure.com/.default"))
    assert result["success"] is True, result
    assert result["token_type"] == "Bearer" and 3600 - 5 <= result["expires_in"] <= 5400

    user = jwt.decode(alice_token, options={"verify_signature": False})
    search = jwt.decode(result["access_token"], options={"verify_signature": False})
    assert search["aud"] == "https://search.azure.com"
    assert (search["oid"], search["tid"]) == (user["oid"], user["tid"])
    assert search["scp"] == "user_impersonation" and "roles" not in search
    assert search["appid"] == demo_tenant.api_app.client_id and search["appidacr"] == "1"
    assert search["iss"] == identity_platform.v1_issuer == f"https://sts.windows.net/{demo_tenant.tenant_id}/"
    assert search["ver"] == "1.0"
    assert search["sub"] != user["sub"]  # pairwise per application

    # Its failure path: the error text is Entra's JSON envelope.
    failed = asyncio.run(exchange_token("not-a-jwt", scope="https://search.azure.com/.default"))
    assert failed["success"] is False and failed["status_code"] == 400
    assert "AADSTS50027: JWT token is invalid or malformed." in failed["error"]


def test_msal_on_behalf_of_gets_the_search_token_with_the_scope_echoed(
    identity_platform: IdentityPlatform, alice_token: str, make_identity_session: SessionFactory
) -> None:
    cca = api_app(identity_platform, make_identity_session())
    result = cca.acquire_token_on_behalf_of(alice_token, [SEARCH])
    assert "access_token" in result, result
    assert result["scope"].split() == ["https://search.azure.com/user_impersonation", SEARCH]
    # MSAL cached it under the echoed scope: its silent path finds it for the same user.
    account = cca.get_accounts()[0]
    silent = cca.acquire_token_silent([SEARCH], account=account)
    assert silent is not None and silent["token_source"] == "cache"
    assert silent["access_token"] == result["access_token"]


def test_the_search_token_verifies_against_the_jwks_with_its_v1_issuer(
    identity_platform: IdentityPlatform, alice_token: str, identity_http: requests.Session
) -> None:
    response = post_obo(identity_http, identity_platform, alice_token)
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    jwks = jwt.PyJWKSet.from_dict(identity_http.get(identity_platform.jwks_uri).json())
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256" and header["x5t"] == header["kid"]
    key = next(k for k in jwks.keys if k.key_id == header["kid"])
    claims = jwt.decode(
        token,
        key.key,
        algorithms=["RS256"],
        audience="https://search.azure.com",
        issuer=identity_platform.v1_issuer,
    )
    assert claims["scp"] == "user_impersonation"


# -- failures, each with Entra's code, HTTP status and envelope ----------------------------------------------


def _expect(response: requests.Response, status: int, error: str, code: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert_entra_error(body, error, code)
    assert "access_token" not in body
    return body


def test_malformed_assertion_is_50027(
    identity_platform: IdentityPlatform, identity_http: requests.Session
) -> None:
    for bad in ("not-a-jwt", "eyJhbGciOiJSUzI1NiJ9.bm90LWpzb24.c2ln"):
        _expect(post_obo(identity_http, identity_platform, bad), 400, "invalid_request", 50027)


def test_forged_signature_is_50013(
    identity_platform: IdentityPlatform, identity_http: requests.Session
) -> None:
    forged = identity_platform.issue_access_token("alice", sign_with=identity_platform.forge_key())
    body = _expect(post_obo(identity_http, identity_platform, forged), 400, "invalid_grant", 50013)
    assert "signature" in body["error_description"]
    unknown_kid = identity_platform.issue_access_token(
        "alice", sign_with=identity_platform.forge_key(kid="nope")
    )
    _expect(post_obo(identity_http, identity_platform, unknown_kid), 400, "invalid_grant", 50013)


def test_token_from_another_tenant_is_50013(
    identity_platform: IdentityPlatform, identity_http: requests.Session
) -> None:
    other = identity_platform.issue_access_token("alice", tenant_id="11111111-2222-3333-4444-555555555555")
    _expect(post_obo(identity_http, identity_platform, other), 400, "invalid_grant", 50013)


def test_assertion_for_another_audience_is_500131(
    identity_platform: IdentityPlatform, identity_http: requests.Session, demo_tenant: Tenant
) -> None:
    for_console = identity_platform.issue_access_token(
        "alice", audience="00000003-0000-0000-c000-000000000000"
    )
    body = _expect(post_obo(identity_http, identity_platform, for_console), 400, "invalid_grant", 500131)
    assert demo_tenant.api_app.client_id in body["error_description"]


def test_expired_assertion_is_500133(
    identity_platform: IdentityPlatform, identity_http: requests.Session
) -> None:
    expired = identity_platform.issue_access_token("alice", lifetime=-60)
    body = _expect(post_obo(identity_http, identity_platform, expired), 400, "invalid_grant", 500133)
    assert "expiry time of assertion" in body["error_description"]


def test_id_token_as_assertion_is_240002(
    identity_platform: IdentityPlatform, identity_http: requests.Session
) -> None:
    id_token = identity_platform.issue_id_token("alice")
    _expect(post_obo(identity_http, identity_platform, id_token), 400, "invalid_grant", 240002)


def test_app_only_token_cannot_be_a_user_assertion(
    identity_platform: IdentityPlatform, identity_http: requests.Session
) -> None:
    app_token = identity_platform.issue_app_token()
    _expect(post_obo(identity_http, identity_platform, app_token), 400, "invalid_grant", 50013)


def test_missing_consent_is_65001_with_suberror(
    identity_platform: IdentityPlatform,
    alice_token: str,
    identity_http: requests.Session,
    demo_tenant: Tenant,
) -> None:
    with identity_platform.consent_revoked("alice"):
        body = _expect(post_obo(identity_http, identity_platform, alice_token), 400, "invalid_grant", 65001)
        assert body["suberror"] == "consent_required"
        assert demo_tenant.api_app.client_id in body["error_description"]
        bob = identity_platform.issue_access_token("bob")  # other users are unaffected
        assert post_obo(identity_http, identity_platform, bob).status_code == 200
    assert post_obo(identity_http, identity_platform, alice_token).status_code == 200


def test_consent_comes_from_the_tenant_file(demo_tenant: Tenant, identity_platform: IdentityPlatform) -> None:
    alice = demo_tenant.user_by_login("alice")
    assert alice is not None
    without_alice = demo_tenant.with_consent(
        "api", "https://search.azure.com", [u.oid for u in demo_tenant.users if u.oid != alice.oid]
    )
    idp = IdentityPlatform(without_alice, home=identity_platform.home)
    from mcp_server.localcloud.ca import trusting_session

    with idp, trusting_session(idp.ca_cert_path) as session:
        _expect(post_obo(session, idp, idp.issue_access_token("alice")), 400, "invalid_grant", 65001)
        assert post_obo(session, idp, idp.issue_access_token("carol")).status_code == 200


def test_wrong_or_missing_client_secret_is_401_invalid_client(
    identity_platform: IdentityPlatform,
    alice_token: str,
    identity_http: requests.Session,
    make_identity_session: SessionFactory,
) -> None:
    body = _expect(
        post_obo(identity_http, identity_platform, alice_token, client_secret="wrong"),
        401,
        "invalid_client",
        7000215,
    )
    assert "wrong" not in body["error_description"]
    _expect(
        post_obo(identity_http, identity_platform, alice_token, client_secret=None),
        401,
        "invalid_client",
        7000218,
    )
    # MSAL surfaces the same error.
    result = api_app(identity_platform, make_identity_session(), secret="wrong").acquire_token_on_behalf_of(
        alice_token, [SEARCH]
    )
    assert_entra_error(result, "invalid_client", 7000215)


def test_client_secret_via_http_basic_works(
    identity_platform: IdentityPlatform, alice_token: str, identity_http: requests.Session
) -> None:
    form = obo_form(identity_platform, alice_token, client_secret=None, client_id=None)
    secret = identity_platform.tenant.api_app.client_secret.get_secret_value()  # type: ignore[union-attr]
    basic = base64.b64encode(f"{identity_platform.api_client_id}:{secret}".encode()).decode()
    response = identity_http.post(
        identity_platform.token_endpoint, data=form, headers={"Authorization": f"Basic {basic}"}
    )
    assert response.status_code == 200, response.text


def test_resource_parameter_is_901002_and_missing_parameters_900144(
    identity_platform: IdentityPlatform, alice_token: str, identity_http: requests.Session
) -> None:
    body = _expect(
        post_obo(identity_http, identity_platform, alice_token, resource="https://search.azure.com"),
        400,
        "invalid_request",
        901002,
    )
    assert "'resource'" in body["error_description"]
    for name in ("assertion", "scope", "requested_token_use"):
        body = _expect(
            post_obo(identity_http, identity_platform, alice_token, **{name: None}),
            400,
            "invalid_request",
            900144,
        )
        assert f"'{name}'" in body["error_description"]


def test_scope_errors(
    identity_platform: IdentityPlatform, alice_token: str, identity_http: requests.Session
) -> None:
    _expect(
        post_obo(identity_http, identity_platform, alice_token, scope="https://unknown.example/.default"),
        400,
        "invalid_resource",
        500011,
    )
    _expect(
        post_obo(
            identity_http,
            identity_platform,
            alice_token,
            scope="https://search.azure.com/.default api://x/.default",
        ),
        400,
        "invalid_scope",
        700022,
    )


# -- client credentials: app-only tokens (for the MCP server's "app-only tokens rejected" tests) -------------


def test_client_credentials_issues_an_app_only_token(
    identity_platform: IdentityPlatform, make_identity_session: SessionFactory, demo_tenant: Tenant
) -> None:
    cca = api_app(identity_platform, make_identity_session())
    result = cca.acquire_token_for_client([f"api://{demo_tenant.api_app.client_id}/.default"])
    assert "access_token" in result, result
    claims = jwt.decode(result["access_token"], options={"verify_signature": False})
    assert claims["idtyp"] == "app" and "scp" not in claims
    assert claims["roles"] == list(demo_tenant.api_app.granted_app_roles)
    assert claims["aud"] == demo_tenant.api_app.client_id and claims["azp"] == demo_tenant.api_app.client_id
    assert claims["oid"] == demo_tenant.api_app.service_principal_id


def test_client_credentials_needs_dot_default_and_a_confidential_client(
    identity_platform: IdentityPlatform, identity_http: requests.Session
) -> None:
    secret = identity_platform.tenant.api_app.client_secret.get_secret_value()  # type: ignore[union-attr]
    form = {
        "grant_type": "client_credentials",
        "client_id": identity_platform.api_client_id,
        "client_secret": secret,
        "scope": identity_platform.api_scope,
    }
    _expect(identity_http.post(identity_platform.token_endpoint, data=form), 400, "invalid_scope", 1002012)
    public = {
        "grant_type": "client_credentials",
        "client_id": identity_platform.console_client_id,
        "scope": f"api://{identity_platform.api_client_id}/.default",
    }
    _expect(identity_http.post(identity_platform.token_endpoint, data=public), 401, "invalid_client", 7000218)


def test_unknown_grant_and_bad_refresh_token(
    identity_platform: IdentityPlatform, identity_http: requests.Session
) -> None:
    _expect(
        identity_http.post(
            identity_platform.token_endpoint,
            data={"grant_type": "password", "client_id": identity_platform.console_client_id},
        ),
        400,
        "unsupported_grant_type",
        70003,
    )
    _expect(
        identity_http.post(
            identity_platform.token_endpoint,
            data={
                "grant_type": "refresh_token",
                "client_id": identity_platform.console_client_id,
                "refresh_token": "1.AQ-made-up",
                "scope": identity_platform.api_scope,
            },
        ),
        400,
        "invalid_grant",
        9002313,
    )


def test_refresh_tokens_are_bound_to_their_client_and_its_consent(
    identity_platform: IdentityPlatform, alice_sign_in: dict[str, Any], identity_http: requests.Session
) -> None:
    refresh_token = alice_sign_in["refresh_token"]
    secret = identity_platform.tenant.api_app.client_secret.get_secret_value()  # type: ignore[union-attr]
    as_api = {
        "grant_type": "refresh_token",
        "client_id": identity_platform.api_client_id,
        "client_secret": secret,
        "refresh_token": refresh_token,
        "scope": SEARCH,
    }
    _expect(identity_http.post(identity_platform.token_endpoint, data=as_api), 400, "invalid_grant", 70000)
    # The console may not get a search token itself: only the API was granted that permission.
    as_console = {
        "grant_type": "refresh_token",
        "client_id": identity_platform.console_client_id,
        "refresh_token": refresh_token,
        "scope": SEARCH,
    }
    body = _expect(
        identity_http.post(identity_platform.token_endpoint, data=as_console), 400, "invalid_grant", 65001
    )
    assert body["suberror"] == "consent_required"
    ok = identity_http.post(
        identity_platform.token_endpoint, data=as_console | {"scope": identity_platform.api_scope}
    )
    assert ok.status_code == 200 and ok.json()["scope"] == identity_platform.api_scope
