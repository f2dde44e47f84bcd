"""Hostile input against browser sign-in's ``response_mode=form_post`` answer: a ``state`` built to break out of the
page is escaped, the page's script is allowed by its hash alone, and response modes other than query/form_post are
refused. (A forged answer at MSAL's loopback listener: tests/auth/test_browser_signin.py, state mismatch.)"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from console.core.auth.login_page import read_form
from mcp_server.localcloud.ca import trusting_session
from mcp_server.localcloud.identity.authorize import SUBMIT_SCRIPT_HASH
from mcp_server.localcloud.identity.platform import IdentityPlatform

REDIRECT = "http://localhost:53124"
HOSTILE_STATE = "x'><script>alert(1)</script><form action='https://evil.example'>"


@pytest.fixture
def session(identity_platform: IdentityPlatform) -> Iterator[requests.Session]:
    with trusting_session(identity_platform.ca_cert_path) as s:
        yield s


def authorize(platform: IdentityPlatform, **extra: str) -> dict[str, str]:
    return {
        "client_id": platform.console_client_id,
        "response_type": "code",
        "redirect_uri": REDIRECT,
        "scope": f"{platform.api_scope} openid",
        "state": HOSTILE_STATE,
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256",
        **extra,
    }


def test_a_hostile_state_is_escaped_in_the_form_post_answer(
    identity_platform: IdentityPlatform, session: requests.Session
) -> None:
    url = f"{identity_platform.authority}/oauth2/v2.0/authorize"
    page = session.get(url, params=authorize(identity_platform, response_mode="form_post"), timeout=30)
    assert page.status_code == 200
    answer = session.post(url, data={**read_form(page.text).fields, "action": "decline"}, timeout=30)
    assert answer.status_code == 200
    assert HOSTILE_STATE not in answer.text and "<script>alert(1)" not in answer.text
    form = read_form(answer.text)
    assert form.action == REDIRECT  # the form posts only to the registered loopback redirect URI
    assert form.fields["state"] == HOSTILE_STATE  # given back intact, as data
    assert form.fields["error"] == "access_denied"
    csp = answer.headers["content-security-policy"]
    directives = dict(part.strip().split(" ", 1) for part in csp.split(";"))
    assert (
        directives["script-src"] == f"'sha256-{SUBMIT_SCRIPT_HASH}'"
    )  # this page's one script, nothing inline
    assert directives["form-action"] == "'self' http://localhost:53124"
    assert directives["default-src"] == "'none'"
    assert answer.headers["referrer-policy"] == "no-referrer"


def test_fragment_response_mode_is_refused(
    identity_platform: IdentityPlatform, session: requests.Session
) -> None:
    url = f"{identity_platform.authority}/oauth2/v2.0/authorize"
    answer = session.get(
        url, params=authorize(identity_platform, response_mode="fragment"), timeout=30, allow_redirects=False
    )
    assert answer.status_code == 302
    params = {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["location"]).query).items()}
    assert params["error"] == "invalid_request"
    assert params["error_description"] == (
        "AADSTS900144: The local identity platform answers with response_mode=query or form_post only."
    )
