"""The browser sign-in page in a real headless Chromium: carol signs in with the authorization-code flow (PKCE)
that MSAL starts with a claims challenge, confirms the MFA number, and the app's loopback listener gets the code.

Chromium trusts the local CA through its own NSS database (certutil), not by ignoring certificate errors.
Screenshots of each step are kept in ``test-artifacts/signin-browser/`` at the repository root.
"""

from __future__ import annotations

import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest

from mcp_server.localcloud.ca import trusting_session
from mcp_server.localcloud.identity.platform import IdentityPlatform
from tests.fixtures.chromium import CHROMEDRIVER, CHROMIUM, start_chromium
from tests.identity.helpers import public_app

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is in the test extras")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "signin-browser"
MFA_CLAIMS = (
    '{"access_token":{"capolids":{"essential":true,"values":["9ab03e19-ed42-4168-b6b7-7001fb3e933a"]}}}'
)

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists() and shutil.which("certutil")),
    reason="needs Debian's chromium, chromium-driver and libnss3-tools (.ci/run installs them)",
)


class _Receiver(http.server.BaseHTTPRequestHandler):
    """The app's loopback redirect listener, as MSAL's interactive flow runs one."""

    received: list[str] = []

    def do_GET(self) -> None:
        self.received.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.end_headers()
        self.wfile.write(b"<!doctype html><title>Signed in</title><h1>Authentication complete.</h1>")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def loopback() -> Iterator[tuple[str, list[str]]]:
    received: list[str] = []
    handler = type("Receiver", (_Receiver,), {"received": received})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def browser(identity_platform: IdentityPlatform, tmp_path: Path) -> Iterator[Any]:
    """Headless Chromium whose NSS database trusts the local CA (and nothing is ignored)."""
    driver = start_chromium(tmp_path, trust_ca=identity_platform.ca_cert_path)
    try:
        yield driver
    finally:
        driver.quit()


def test_carol_signs_in_through_the_mfa_step_in_headless_chromium(
    identity_platform: IdentityPlatform, browser: Any, loopback: tuple[str, list[str]]
) -> None:
    redirect_uri, received = loopback
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    wait = WebDriverWait(browser, 20)
    with trusting_session(identity_platform.ca_cert_path) as session:
        app = public_app(identity_platform, session)
        flow = app.initiate_auth_code_flow(
            [identity_platform.api_scope], redirect_uri=redirect_uri, claims_challenge=MFA_CLAIMS
        )
        browser.get(flow["auth_uri"])
        login = wait.until(expected_conditions.presence_of_element_located((By.ID, "login")))
        assert browser.title == "Sign in - local identity platform"
        browser.save_screenshot(str(ARTIFACTS / "1-login.png"))
        login.send_keys("carol")
        browser.find_element(By.ID, "approve").click()

        try:
            number = wait.until(expected_conditions.presence_of_element_located((By.ID, "mfa-number"))).text
        except Exception:
            print("DEBUG", browser.current_url, browser.page_source[:3000])
            raise
        assert len(number) == 2 and number.isdigit()
        confirm = browser.find_element(By.ID, "mfa-approve")
        assert confirm.text == f"I see {number} - Approve"
        browser.save_screenshot(str(ARTIFACTS / "2-mfa-number.png"))
        confirm.click()

        wait.until(expected_conditions.url_contains(redirect_uri))
        browser.save_screenshot(str(ARTIFACTS / "3-redirected.png"))
        redirects = [path for path in received if path.startswith("/?")]  # not /favicon.ico
        assert len(redirects) == 1  # (the code itself is not printed)
        auth_response = {k: v[0] for k, v in parse_qs(urlsplit(redirects[0]).query).items()}
        result = app.acquire_token_by_auth_code_flow(flow, auth_response)
    assert "access_token" in result, result.get("error_description")
    token = jwt.decode(result["access_token"], options={"verify_signature": False})
    assert token["oid"] == identity_platform.user("carol").oid
    assert token["amr"] == ["pwd", "mfa"]
    print(f"screenshots: {ARTIFACTS}")
    assert {"1-login.png", "2-mfa-number.png", "3-redirected.png"} <= {
        p.name for p in ARTIFACTS.glob("*.png")
    }


def test_the_device_code_page_approves_from_a_real_browser(
    identity_platform: IdentityPlatform, browser: Any
) -> None:
    """A browser's own form POST carries its Origin (the page's referrer policy must not turn it into `null`)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with trusting_session(identity_platform.ca_cert_path) as session:
        app = public_app(identity_platform, session)
        flow = app.initiate_device_flow(scopes=[identity_platform.api_scope])
        result: dict[str, Any] = {}
        poller = threading.Thread(target=lambda: result.update(app.acquire_token_by_device_flow(flow)))
        poller.start()
        try:
            browser.get(f"{flow['verification_uri']}?code={flow['user_code']}")
            WebDriverWait(browser, 20).until(
                expected_conditions.presence_of_element_located((By.ID, "login"))
            )
            browser.find_element(By.ID, "login").send_keys("bob")
            browser.find_element(By.CSS_SELECTOR, "button[value=approve]").click()
            WebDriverWait(browser, 20).until(expected_conditions.title_is("Signed in"))
            browser.save_screenshot(str(ARTIFACTS / "device-page-approved.png"))
        finally:
            poller.join(timeout=30)
    assert not poller.is_alive()
    token = jwt.decode(result["access_token"], options={"verify_signature": False})
    assert token["oid"] == identity_platform.user("bob").oid
