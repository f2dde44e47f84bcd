"""Hostile input to the authorization-code flow: redirect URIs that only look like loopback, claims that are
not a claims request, codes replayed or redeemed by another client, and cross-site posts to the login page."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from mcp_server.localcloud.ca import trusting_session
from mcp_server.localcloud.identity.platform import IdentityPlatform
from tests.identity.helpers import assert_entra_error

CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"  # S256 of RFC 7636's example verifier
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"


@pytest.fixture
def session(identity_platform: IdentityPlatform) -> Iterator[requests.Session]:
    with trusting_session(identity_platform.ca_cert_path) as s:
        yield s


def authorize(platform: IdentityPlatform, session: requests.Session, **change: str) -> requests.Response:
    params = {
        "client_id": platform.console_client_id,
        "response_type": "code",
        "redirect_uri": "http://localhost",
        "scope": platform.api_scope,
        "state": "st",
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
    } | change
    return session.get(platform.authority + "/oauth2/v2.0/authorize", params=params, allow_redirects=False)


@pytest.mark.parametrize(
    "uri",
    [
        "http://localhost.evil.com",
        "http://localhost.evil.com:8080/",
        "https://127.0.0.1.nip.io",
        "https://localhost:8080",
        "http://evil.com@localhost:8080",
        "http://localhost:8080@evil.com",
        "http://127.0.0.2:8080",
        "http://[::1]:8080",
        "http://localhost:99999",
        "http://localhost:8080#frag",
        "http://localhost:8080/other",
        "http://LOCALHOST.:8080",
        "http://localhost\\@evil.com",
        "http://localhost:8080/?next=https://evil.com",
        "javascript:alert(1)",
        "http://localhost%2eevil.com",
        "http://localhost/" + "a" * 3000,
    ],
)
def test_look_alike_redirect_uris_are_50011_on_the_page(
    identity_platform: IdentityPlatform, session: requests.Session, uri: str
) -> None:
    page = authorize(identity_platform, session, redirect_uri=uri)
    assert page.status_code == 400 and "location" not in page.headers
    assert "AADSTS50011" in page.text


@pytest.mark.parametrize(
    "uri",
    [
        "http://localhost",
        "http://localhost:8080",
        "http://localhost:8080/",
        "http://127.0.0.1:51515",
        "http://127.0.0.1",
    ],
)
def test_loopback_redirect_uris_with_any_port_are_accepted(
    identity_platform: IdentityPlatform, session: requests.Session, uri: str
) -> None:
    page = authorize(identity_platform, session, redirect_uri=uri)
    assert page.status_code == 200 and "name=request" in page.text


@pytest.mark.parametrize(
    ("claims", "detail"),
    [
        ('{"access_token": ', "It is not JSON."),
        ('{"access_token": {"acrs": {"values": ["' + "c" * 3000 + '"]}}}', "at most 2048"),
    ],
)
def test_bad_claims_on_authorize_go_back_as_invalid_request(
    identity_platform: IdentityPlatform, session: requests.Session, claims: str, detail: str
) -> None:
    answer = authorize(identity_platform, session, claims=claims)
    assert answer.status_code == 302
    params = parse_qs(urlsplit(answer.headers["location"]).query)
    assert params["error"] == ["invalid_request"] and params["error_description"][0].startswith(
        "AADSTS90100: "
    )
    assert detail in params["error_description"][0]


def issue_code(platform: IdentityPlatform, session: requests.Session) -> str:
    page = authorize(platform, session)
    request_id = page.text.split('name=request value="', 1)[1].split('"', 1)[0]
    answer = session.post(
        platform.authority + "/oauth2/v2.0/authorize",
        data={"request": request_id, "login": "bob", "action": "approve"},
        allow_redirects=False,
    )
    return parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]


def redeem(
    platform: IdentityPlatform, session: requests.Session, code: str, **change: str
) -> requests.Response:
    form = {
        "grant_type": "authorization_code",
        "client_id": platform.console_client_id,
        "code": code,
        "redirect_uri": "http://localhost",
        "code_verifier": VERIFIER,
    } | change
    return session.post(platform.token_endpoint, data={k: v for k, v in form.items() if v})


def test_code_replay_after_success_is_54005(
    identity_platform: IdentityPlatform, session: requests.Session
) -> None:
    code = issue_code(identity_platform, session)
    assert redeem(identity_platform, session, code).status_code == 200
    for _ in range(3):
        assert_entra_error(redeem(identity_platform, session, code).json(), "invalid_grant", 54005)


def test_code_redeemed_by_another_client_or_forged_is_refused(
    identity_platform: IdentityPlatform, session: requests.Session
) -> None:
    code = issue_code(identity_platform, session)
    api = identity_platform.tenant.api_app
    other = redeem(
        identity_platform,
        session,
        code,
        client_id=api.client_id,
        client_secret=api.client_secret.get_secret_value(),
    )  # type: ignore[union-attr]
    assert_entra_error(other.json(), "invalid_grant", 9002313)
    assert_entra_error(redeem(identity_platform, session, code + "x").json(), "invalid_grant", 9002313)
    missing = redeem(identity_platform, session, code, code_verifier="")
    assert_entra_error(missing.json(), "invalid_request", 900144)
    assert redeem(identity_platform, session, code).status_code == 200  # none of that used the code up


def test_cross_site_post_to_the_login_page_is_refused(
    identity_platform: IdentityPlatform, session: requests.Session
) -> None:
    page = authorize(identity_platform, session)
    request_id = page.text.split('name=request value="', 1)[1].split('"', 1)[0]
    answer = session.post(
        identity_platform.authority + "/oauth2/v2.0/authorize",
        data={"request": request_id, "login": "bob", "action": "approve"},
        headers={"Origin": "https://evil.example"},
        allow_redirects=False,
    )
    assert answer.status_code == 403 and "location" not in answer.headers
    assert "This form was sent from another site (Origin: https://evil.example)" in answer.text
