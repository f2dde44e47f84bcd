"""The device-code flow with the real MSAL over real HTTPS, completed through the device-login page."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator

import jwt
import pytest
import requests

from mcp_server.localcloud.identity.device_page import DevicePageError, complete_device_code
from mcp_server.localcloud.identity.platform import IdentityPlatform
from mcp_server.localcloud.tenant import Tenant
from tests.identity.helpers import assert_entra_error, device_flow_sign_in, public_app

SessionFactory = Callable[[], requests.Session]


def test_device_flow_end_to_end_gives_alice_an_api_token_msal_can_reuse_silently(
    identity_platform: IdentityPlatform, make_identity_session: SessionFactory, demo_tenant: Tenant
) -> None:
    app = public_app(identity_platform, make_identity_session())
    result = device_flow_sign_in(identity_platform, app, "alice")

    assert result["token_source"] == "identity_provider"
    assert result["scope"] == f"api://{demo_tenant.api_app.client_id}/execute"
    assert result["token_type"] == "Bearer"
    assert 3600 - 5 <= result["expires_in"] <= 5400
    alice = demo_tenant.user_by_login("alice")
    assert alice is not None
    claims = jwt.decode(result["access_token"], options={"verify_signature": False})
    assert claims["oid"] == alice.oid and claims["preferred_username"] == alice.username
    assert result["id_token_claims"]["aud"] == demo_tenant.console_app.client_id
    client_info = json.loads(base64.urlsafe_b64decode(result["client_info"] + "=="))
    assert client_info == {"uid": alice.oid, "utid": demo_tenant.tenant_id}

    # MSAL keeps the account and serves the same token from its cache (the `scope` echo makes the key match).
    accounts = app.get_accounts()
    assert [a["username"] for a in accounts] == [alice.username]
    assert accounts[0]["home_account_id"] == f"{alice.oid}.{demo_tenant.tenant_id}"
    silent = app.acquire_token_silent([identity_platform.api_scope], account=accounts[0])
    assert silent is not None and silent["token_source"] == "cache"
    assert silent["access_token"] == result["access_token"]

    # The refresh-token grant issues a new token for the same user.
    refreshed = app.acquire_token_silent(
        [identity_platform.api_scope], account=accounts[0], force_refresh=True
    )
    assert refreshed is not None and refreshed["token_source"] == "identity_provider", refreshed
    assert refreshed["access_token"] != result["access_token"]
    new_claims = jwt.decode(refreshed["access_token"], options={"verify_signature": False})
    assert new_claims["oid"] == alice.oid and new_claims["uti"] != claims["uti"]


def test_each_demo_user_gets_their_own_identity(
    identity_platform: IdentityPlatform, make_identity_session: SessionFactory, demo_tenant: Tenant
) -> None:
    result = device_flow_sign_in(
        identity_platform, public_app(identity_platform, make_identity_session()), "carol@contoso.example"
    )
    claims = jwt.decode(result["access_token"], options={"verify_signature": False})
    carol = demo_tenant.user_by_login("carol")
    assert carol is not None
    assert (claims["oid"], claims["name"], claims["groups"]) == (carol.oid, carol.name, list(carol.groups))


def test_polling_before_approval_is_authorization_pending_then_slow_down_when_too_fast(
    identity_platform: IdentityPlatform, make_identity_session: SessionFactory
) -> None:
    app = public_app(identity_platform, make_identity_session())
    flow = app.initiate_device_flow(scopes=[identity_platform.api_scope])
    assert flow["interval"] == 1 and flow["expires_in"] == 900
    assert flow["verification_uri"] == identity_platform.verification_uri
    assert flow["user_code"] in flow["message"] and flow["verification_uri"] in flow["message"]

    pending = app.acquire_token_by_device_flow(flow, exit_condition=lambda f: True)
    assert_entra_error(pending, "authorization_pending", 70016, correlation_id=flow["_correlation_id"])

    too_fast = app.acquire_token_by_device_flow(flow, exit_condition=lambda f: True)
    assert_entra_error(too_fast, "slow_down", 70016)


def test_declined_on_the_page_ends_the_flow_with_authorization_declined(
    identity_platform: IdentityPlatform, make_identity_session: SessionFactory
) -> None:
    app = public_app(identity_platform, make_identity_session())
    flow = app.initiate_device_flow(scopes=[identity_platform.api_scope])
    page = complete_device_code(
        flow["verification_uri"], flow["user_code"], "bob", "decline", ca_cert=identity_platform.ca_cert_path
    )
    assert "declined" in page.message
    result = app.acquire_token_by_device_flow(flow)  # terminal: MSAL stops polling at once
    assert_entra_error(result, "authorization_declined", 70000)


def test_unknown_device_code_is_bad_verification_code(
    identity_platform: IdentityPlatform, make_identity_session: SessionFactory
) -> None:
    app = public_app(identity_platform, make_identity_session())
    flow = app.initiate_device_flow(scopes=[identity_platform.api_scope])
    flow["device_code"] = "DAQABIQEAAAD--not-a-code-this-platform-issued"
    result = app.acquire_token_by_device_flow(flow)
    assert_entra_error(result, "bad_verification_code", 70000)


def test_a_redeemed_device_code_cannot_be_redeemed_again(
    identity_platform: IdentityPlatform, identity_http: requests.Session
) -> None:
    app = public_app(identity_platform, identity_http)
    flow = app.initiate_device_flow(scopes=[identity_platform.api_scope])
    complete_device_code(
        flow["verification_uri"], flow["user_code"], "alice", ca_cert=identity_platform.ca_cert_path
    )
    form = {
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
        "client_id": identity_platform.console_client_id,
        "device_code": flow["device_code"],
    }
    first = identity_http.post(identity_platform.token_endpoint, data=form)
    assert first.status_code == 200 and "access_token" in first.json()
    second = identity_http.post(identity_platform.token_endpoint, data=form)
    assert second.status_code == 400
    assert_entra_error(second.json(), "invalid_grant", 54005)


@pytest.fixture(scope="module")
def short_lived_platform(
    tmp_path_factory: pytest.TempPathFactory, demo_tenant: Tenant
) -> Iterator[IdentityPlatform]:
    """Device codes that expire after 1 s (its own platform: the shared one uses Entra's 900 s)."""
    with IdentityPlatform(
        demo_tenant, home=tmp_path_factory.mktemp("idp-short"), device_code_lifetime=1
    ) as idp:
        yield idp


def test_expired_device_code_is_expired_token_70020_and_the_page_refuses_it(
    short_lived_platform: IdentityPlatform,
) -> None:
    idp = short_lived_platform
    from mcp_server.localcloud.ca import trusting_session

    with trusting_session(idp.ca_cert_path) as session:
        app = public_app(idp, session)
        flow = app.initiate_device_flow(scopes=[idp.api_scope])
        assert flow["expires_in"] == 1
        time.sleep(max(0.0, flow["expires_at"] - time.time()) + 0.05)
        result = app.acquire_token_by_device_flow(flow, exit_condition=lambda f: True)
        assert_entra_error(result, "expired_token", 70020)
        assert "This device code has expired." in result["error_description"]
        with pytest.raises(DevicePageError) as page:
            complete_device_code(flow["verification_uri"], flow["user_code"], "alice", session=session)
        assert (
            page.value.status == 400
            and "expired" in page.value.message
            and "AADSTS70020" in page.value.message
        )


def test_devicecode_endpoint_rejects_the_api_app_and_unknown_scopes(
    identity_platform: IdentityPlatform, identity_http: requests.Session
) -> None:
    api = identity_http.post(
        identity_platform.device_endpoint,
        data={"client_id": identity_platform.api_client_id, "scope": identity_platform.api_scope},
    )
    assert api.status_code == 401
    assert_entra_error(api.json(), "invalid_client", 7000218)
    bad_scope = identity_http.post(
        identity_platform.device_endpoint,
        data={
            "client_id": identity_platform.console_client_id,
            "scope": f"api://{identity_platform.api_client_id}/delete_everything",
        },
    )
    assert bad_scope.status_code == 400
    assert_entra_error(bad_scope.json(), "invalid_scope", 70011)
    unknown_client = identity_http.post(
        identity_platform.device_endpoint,
        data={"client_id": "00000000-0000-0000-0000-000000000001", "scope": identity_platform.api_scope},
    )
    assert_entra_error(unknown_client.json(), "unauthorized_client", 700016)


# -- the device-login page, as a person sees it --------------------------------------------------------------


def test_the_page_shows_a_sign_in_form_with_the_demo_users(
    identity_platform: IdentityPlatform, identity_http: requests.Session
) -> None:
    page = identity_http.get(identity_platform.verification_uri, params={"code": "ABC<script>"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    for needle in ("name=user_code", "name=login", "value=approve", "value=decline", "alice", "bob", "carol"):
        assert needle in html
    assert "<script>" not in html and "ABC&lt;script&gt;" in html
    assert (
        page.headers["x-frame-options"] == "DENY"
        and "frame-ancestors 'none'" in page.headers["content-security-policy"]
    )


def test_the_page_explains_unknown_codes_and_users(
    identity_platform: IdentityPlatform, make_identity_session: SessionFactory
) -> None:
    session = make_identity_session()
    with pytest.raises(DevicePageError) as unknown_code:
        complete_device_code(identity_platform.verification_uri, "NOSUCHCOD", "alice", session=session)
    assert unknown_code.value.status == 400
    assert "wasn't recognized" in unknown_code.value.message and "AADSTS70018" in unknown_code.value.message

    flow = public_app(identity_platform, session).initiate_device_flow(scopes=[identity_platform.api_scope])
    with pytest.raises(DevicePageError) as unknown_user:
        complete_device_code(
            identity_platform.verification_uri, flow["user_code"], "mallory", session=session
        )
    assert "no demo user 'mallory'" in unknown_user.value.message
    assert all(name in unknown_user.value.message for name in ("alice", "bob", "carol"))

    # Nothing was lost: the same code still works, typed the way people type it (lower case, with a dash).
    typed = flow["user_code"][:4].lower() + "-" + flow["user_code"][4:].lower()
    done = complete_device_code(identity_platform.verification_uri, typed, "BOB", session=session)
    assert "Bob Example" in done.message
    with pytest.raises(DevicePageError) as reused:
        complete_device_code(identity_platform.verification_uri, flow["user_code"], "bob", session=session)
    assert "already used" in reused.value.message
