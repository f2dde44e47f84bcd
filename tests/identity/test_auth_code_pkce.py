"""The authorization-code flow with PKCE: real MSAL starts it and redeems the code; the login page is driven
with the same form POSTs a browser sends; Entra's errors for a wrong verifier, a reused code, a redirect URI
the app does not have and a missing or plain PKCE challenge."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import msal
import pytest
import requests

from mcp_server.localcloud.ca import trusting_session
from mcp_server.localcloud.identity.platform import IdentityPlatform
from tests.identity.helpers import assert_entra_error, public_app

REDIRECT = "http://localhost:53123"


@pytest.fixture
def session(identity_platform: IdentityPlatform) -> Iterator[requests.Session]:
    with trusting_session(identity_platform.ca_cert_path) as s:
        yield s


def claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def sign_in(
    session: requests.Session, auth_uri: str, login: str, *, mfa: bool = False, action: str = "approve"
) -> requests.Response:
    """Open the login page and POST its form as a browser would; the answer (302, or a page)."""
    page = session.get(auth_uri, allow_redirects=False)
    assert page.status_code == 200, page.text
    request_id = page.text.split('name=request value="', 1)[1].split('"', 1)[0]
    action_path = urlsplit(auth_uri).path
    base = f"{urlsplit(auth_uri).scheme}://{urlsplit(auth_uri).netloc}"
    data = {"request": request_id, "login": login, "action": action} | ({"mfa": "approve"} if mfa else {})
    return session.post(base + action_path, data=data, allow_redirects=False)


def redirected_params(answer: requests.Response) -> dict[str, str]:
    assert answer.status_code == 302, answer.text
    location = answer.headers["location"]
    assert location.startswith(REDIRECT + "?") or location.startswith(REDIRECT + "/?"), location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def start(app: msal.PublicClientApplication, platform: IdentityPlatform, **kwargs: Any) -> dict[str, Any]:
    return app.initiate_auth_code_flow([platform.api_scope], redirect_uri=REDIRECT, **kwargs)


def test_msal_auth_code_flow_with_pkce_signs_alice_in(
    identity_platform: IdentityPlatform, session: requests.Session
) -> None:
    app = public_app(identity_platform, session)
    flow = start(app, identity_platform)
    query = parse_qs(urlsplit(flow["auth_uri"]).query)
    assert query["code_challenge_method"] == ["S256"]
    response = redirected_params(sign_in(session, flow["auth_uri"], "alice"))
    assert response["state"] == flow["state"]
    result = app.acquire_token_by_auth_code_flow(flow, response)
    assert "access_token" in result, result
    token = claims_of(result["access_token"])
    assert (token["oid"], token["aud"], token["amr"]) == (
        identity_platform.user("alice").oid,
        identity_platform.api_client_id,
        ["pwd"],
    )
    assert result["id_token_claims"]["nonce"] == query["nonce"][0]
    assert app.get_accounts()[0]["username"] == "alice@contoso.example"


def test_claims_challenge_makes_the_login_page_ask_for_mfa(
    identity_platform: IdentityPlatform, session: requests.Session
) -> None:
    app = public_app(identity_platform, session)
    claims = (
        '{"access_token":{"capolids":{"essential":true,"values":["9ab03e19-ed42-4168-b6b7-7001fb3e933a"]}}}'
    )
    flow = start(app, identity_platform, claims_challenge=claims)
    first = sign_in(session, flow["auth_uri"], "carol")
    assert first.status_code == 200 and "Verify your identity" in first.text and "id=mfa-number" in first.text
    request_id = first.text.split("name='request' value='", 1)[1].split("'", 1)[0]
    done = session.post(
        identity_platform.authority + "/oauth2/v2.0/authorize",
        data={"request": request_id, "login": "carol", "action": "approve", "mfa": "approve"},
        allow_redirects=False,
    )
    result = app.acquire_token_by_auth_code_flow(flow, redirected_params(done))
    assert claims_of(result["access_token"])["amr"] == ["pwd", "mfa"]


def test_dave_signs_in_with_the_browser_although_device_code_is_blocked(
    identity_platform: IdentityPlatform, session: requests.Session
) -> None:
    app = public_app(identity_platform, session)
    flow = start(app, identity_platform)
    result = app.acquire_token_by_auth_code_flow(
        flow, redirected_params(sign_in(session, flow["auth_uri"], "dave"))
    )
    assert claims_of(result["access_token"])["oid"] == identity_platform.user("dave").oid


def code_for(platform: IdentityPlatform, session: requests.Session) -> tuple[dict[str, Any], str]:
    flow = start(public_app(platform, session), platform)
    return flow, redirected_params(sign_in(session, flow["auth_uri"], "bob"))["code"]


def redeem(
    platform: IdentityPlatform,
    session: requests.Session,
    code: str,
    verifier: str,
    redirect_uri: str = REDIRECT,
) -> requests.Response:
    return session.post(
        platform.token_endpoint,
        data={
            "grant_type": "authorization_code",
            "client_id": platform.console_client_id,
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
            "scope": platform.api_scope,
        },
    )


def test_wrong_verifier_is_501481_and_uses_the_code_up(
    identity_platform: IdentityPlatform, session: requests.Session
) -> None:
    flow, code = code_for(identity_platform, session)
    wrong = redeem(identity_platform, session, code, "x" * 43)
    assert wrong.status_code == 400
    assert_entra_error(wrong.json(), "invalid_grant", 501481)
    assert_entra_error(
        redeem(identity_platform, session, code, flow["code_verifier"]).json(), "invalid_grant", 54005
    )


def test_a_code_redeems_once(identity_platform: IdentityPlatform, session: requests.Session) -> None:
    flow, code = code_for(identity_platform, session)
    assert redeem(identity_platform, session, code, flow["code_verifier"]).status_code == 200
    again = redeem(identity_platform, session, code, flow["code_verifier"])
    assert again.status_code == 400
    assert_entra_error(again.json(), "invalid_grant", 54005)


def test_redemption_with_another_redirect_uri_is_refused(
    identity_platform: IdentityPlatform, session: requests.Session
) -> None:
    flow, code = code_for(identity_platform, session)
    answer = redeem(identity_platform, session, code, flow["code_verifier"], "http://localhost:9")
    assert_entra_error(answer.json(), "invalid_grant", 500112)


def test_unregistered_redirect_uri_is_50011_on_the_page_not_redirected(
    identity_platform: IdentityPlatform, session: requests.Session
) -> None:
    app = public_app(identity_platform, session)
    flow = app.initiate_auth_code_flow([identity_platform.api_scope], redirect_uri="https://app.example/cb")
    page = session.get(flow["auth_uri"], allow_redirects=False)
    assert page.status_code == 400 and "location" not in page.headers
    assert (
        "AADSTS50011: The redirect URI &#x27;https://app.example/cb&#x27; specified in the request"
        in page.text
    )


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"code_challenge_method": "plain"}, 9002325),
        ({"code_challenge_method": None}, 9002325),
        ({"code_challenge": None}, 9002325),
        ({"code_challenge": "short"}, 501491),
        ({"response_type": "token"}, 700054),
    ],
)
def test_pkce_s256_only_errors_go_back_to_the_app(
    identity_platform: IdentityPlatform, session: requests.Session, change: dict[str, str | None], code: int
) -> None:
    params = {
        "client_id": identity_platform.console_client_id,
        "response_type": "code",
        "redirect_uri": REDIRECT,
        "scope": identity_platform.api_scope,
        "state": "s1",
        "code_challenge": "A" * 43,
        "code_challenge_method": "S256",
    } | change
    answer = session.get(
        identity_platform.authority + "/oauth2/v2.0/authorize",
        params={k: v for k, v in params.items() if v is not None},
        allow_redirects=False,
    )
    response = redirected_params(answer)
    assert response["state"] == "s1" and response["error_description"].startswith(f"AADSTS{code}: ")
    assert response["error"] == ("unsupported_response_type" if code == 700054 else "invalid_request")


def test_declining_returns_access_denied(
    identity_platform: IdentityPlatform, session: requests.Session
) -> None:
    flow = start(public_app(identity_platform, session), identity_platform)
    response = redirected_params(sign_in(session, flow["auth_uri"], "bob", action="decline"))
    assert (response["error"], response["state"]) == ("access_denied", flow["state"])
    assert response["error_description"].startswith("AADSTS65004: ")
