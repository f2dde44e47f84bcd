"""Browser sign-in end to end: real MSAL's interactive flow (PKCE, its own loopback listener) against the real local
identity platform; the demo user completes the login page (MFA step included) through the ``webbrowser`` hand-off;
the real CLI in fresh processes; the blocked device code (dave, AADSTS53003) and its advice."""

from __future__ import annotations

import json
import threading
from urllib.parse import parse_qsl, urlsplit

import jwt
import pytest
import requests

from console.core.auth.browser_flow import BrowserFlow
from console.core.auth.errors import BrowserSignInError, DeviceFlowCancelled, DeviceFlowError, SignInError
from console.core.auth.login_page import read_form, redirect_uri_of
from console.core.auth.manager import AuthManager
from mcp_server.localcloud.ca import trusting_session
from tests.auth.conftest import AuthStack

BROWSER_ADVICE = "obo-console login --browser"


def test_cli_login_browser_as_alice_then_whoami_silent_from_the_cache(auth_stack: AuthStack, run_cli) -> None:
    login = run_cli("login", "--browser", "--as", "alice")
    assert login.code == 0, login.stderr
    assert "Signed in as Alice Example <alice@contoso.example>." in login.stdout
    assert "browser sign-in page" in login.stderr

    who = run_cli("whoami", "--json")
    assert who.code == 0, who.stderr
    doc = json.loads(who.stdout)
    assert doc["account"]["username"] == "alice@contoso.example"
    assert doc["token"]["source"] == "cache"  # the same keyring cache the device-code sign-in uses
    assert doc["token"]["claims"]["oid"] == auth_stack.oid("alice")
    assert doc["token"]["claims"]["amr"] == ["pwd"]


def test_dave_device_code_is_blocked_the_cli_advises_the_browser_and_that_works(
    auth_stack: AuthStack, run_cli
) -> None:
    blocked = run_cli("login", "--as", "dave")
    assert blocked.code == 1
    assert (
        "Sign-in failed: this tenant's Conditional Access blocks device-code sign-in for this account "
        "(AADSTS53003)." in blocked.stderr
    )
    assert f"Sign in in a browser instead: `{BROWSER_ADVICE}`." in blocked.stderr
    assert "Signed in" not in blocked.stdout

    browser = run_cli("login", "--browser", "--as", "dave")
    assert browser.code == 0, browser.stderr
    assert "Signed in as Dave Example <dave@contoso.example>." in browser.stdout
    doc = json.loads(run_cli("whoami", "--json").stdout)
    assert (doc["account"]["username"], doc["token"]["source"]) == ("dave@contoso.example", "cache")


def test_device_flow_error_knows_the_policy_block(auth_stack: AuthStack, make_manager) -> None:
    manager: AuthManager = make_manager()
    with pytest.raises(DeviceFlowError) as info:
        manager.sign_in_as("dave")
    assert info.value.blocked_by_policy and info.value.description.startswith("AADSTS53003:")
    assert info.value.hint == f"Sign in in a browser instead: `{BROWSER_ADVICE}`."
    assert not DeviceFlowError("authorization_declined", "AADSTS70000: declined").blocked_by_policy


def test_mfa_claims_challenge_makes_the_demo_person_confirm_the_number(
    auth_stack: AuthStack, make_manager
) -> None:
    """A claims challenge (what a step-up sends) makes the page ask for MFA; ``--as`` completes that step too."""
    manager: AuthManager = make_manager()
    challenge = '{"access_token":{"acrs":{"essential":true,"values":["c1"]}}}'
    account = manager.start_browser_flow(as_user="carol", claims_challenge=challenge).result(60)
    assert account.username == "carol@contoso.example"
    token = manager.acquire_token(account)
    claims = token.claims()
    assert (claims["amr"], claims["acrs"]) == (["pwd", "mfa"], ["c1"])


def test_unknown_user_on_the_page_ends_the_flow_with_the_pages_words(
    auth_stack: AuthStack, make_manager
) -> None:
    manager: AuthManager = make_manager()
    # A name the page does not know (--as refuses it before the flow starts).
    flow = manager.start_browser_flow(opener=manager._demo_person("mallory"))
    with pytest.raises(SignInError) as info:
        flow.result(60)
    assert "The sign-in page refused the sign-in as 'mallory' (HTTP 400)" in str(info.value)
    assert "There is no demo user 'mallory'" in str(info.value)
    assert manager.accounts() == []


def test_as_user_is_refused_for_an_unknown_demo_user(auth_stack: AuthStack, make_manager) -> None:
    manager: AuthManager = make_manager()
    with pytest.raises(Exception) as info:
        manager.start_browser_flow(as_user="mallory")
    assert "mallory" in str(info.value)


def _opened(flow: BrowserFlow) -> threading.Event:
    """Set once MSAL hands the page to the flow; nobody opens it (the test plays the browser)."""
    seen = threading.Event()
    flow._announce = lambda url: seen.set()
    flow._opener = lambda url: None
    return seen


def test_state_mismatch_is_refused_by_msals_listener_and_the_real_answer_still_counts(
    auth_stack: AuthStack, make_manager
) -> None:
    """A forged answer with another state (a login CSRF) is refused at the loopback listener; the sign-in goes on."""
    manager: AuthManager = make_manager()
    pages: list[str] = []
    flow = manager.start_browser_flow(as_user="bob")
    person = flow._opener
    assert person is not None
    flow._opener = lambda url: None  # nobody opens the page yet: this test plays the browser first
    seen = threading.Event()

    def announced(url: str) -> None:
        pages.append(url)
        seen.set()

    flow._announce = announced
    flow.start()
    assert seen.wait(30)
    auth_uri = pages[0]
    query = dict(parse_qsl(urlsplit(auth_uri).query))
    assert query["code_challenge_method"] == "S256" and query["response_mode"] == "form_post"
    assert query["redirect_uri"].startswith("http://localhost:")
    with requests.Session() as attacker:
        attacker.trust_env = False
        forged = attacker.post(
            query["redirect_uri"], data={"code": "forged", "state": "not-the-state"}, timeout=10
        )
    assert forged.status_code == 400
    assert forged.text == "State mismatch. Waiting for next response... or you may abort."
    person(auth_uri)
    account = flow.result(60)
    assert account.username == "bob@contoso.example"


def test_declined_on_the_page_and_cancelled_in_the_console(auth_stack: AuthStack, make_manager) -> None:
    manager: AuthManager = make_manager()
    flow = manager.start_browser_flow()
    seen = _opened(flow)
    flow.start()
    assert seen.wait(30)
    assert flow.auth_uri is not None
    with trusting_session(auth_stack.platform.ca_cert_path) as browser:
        page = read_form(browser.get(flow.auth_uri, timeout=30).text)
        answer = browser.post(
            flow.auth_uri.split("?")[0], data={**page.fields, "action": "decline"}, timeout=30
        )
        assert answer.status_code == 200  # the form_post answer: a form for the app's listener
        form = read_form(answer.text)
        assert form.action == redirect_uri_of(flow.auth_uri)
        assert form.fields["error"] == "access_denied" and "code" not in form.fields
        browser.post(form.action, data=form.fields, timeout=30)
    with pytest.raises(BrowserSignInError) as info:
        flow.result(60)
    assert info.value.error == "access_denied"
    assert "AADSTS65004: User declined to consent to access the app." in str(info.value)

    waiting = manager.start_browser_flow()
    seen = _opened(waiting)
    waiting.start()
    assert seen.wait(30)
    waiting.cancel()
    with pytest.raises(DeviceFlowCancelled):
        waiting.result(60)
    assert manager.accounts() == []


def test_the_token_from_the_browser_flow_is_bound_to_the_console_app(
    auth_stack: AuthStack, make_manager
) -> None:
    manager: AuthManager = make_manager()
    account = manager.start_browser_flow(as_user="alice").result(60)
    token = manager.acquire_token(account)
    claims = jwt.decode(token.token.get_secret_value(), options={"verify_signature": False})
    assert (claims["azp"], claims["aud"]) == (
        auth_stack.platform.console_client_id,
        auth_stack.platform.api_client_id,
    )
    assert token.source == "cache"


def test_nobody_completing_the_page_ends_in_a_clear_timeout(auth_stack: AuthStack, make_manager) -> None:
    manager: AuthManager = make_manager()
    flow = manager.start_browser_flow(opener=lambda url: None, timeout=1)  # the page is opened, nobody acts
    with pytest.raises(BrowserSignInError) as info:
        flow.result(60)
    assert info.value.error == "timed_out"
    assert str(info.value) == (
        "Browser sign-in failed: timed_out (No sign-in arrived within 1 s.)\n"
        "  → Run the sign-in again and complete the page in the browser sooner."
    )
    assert flow.auth_uri is not None and manager.accounts() == []
