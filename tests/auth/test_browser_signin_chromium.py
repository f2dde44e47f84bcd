"""A real headless Chromium as the system browser of MSAL's interactive flow: it is registered with Python's
``webbrowser`` as an installed browser is, MSAL opens the sign-in page in it, the test fills the page like a person,
the page's ``form_post`` answer is submitted by Chromium itself to MSAL's loopback listener, and MSAL redeems the
code with its PKCE verifier. Screenshots land in ``test-artifacts/browser-signin/`` (git-ignored)."""

from __future__ import annotations

import shutil
import threading
import webbrowser
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from console.commands.login import browser_sign_in
from console.core.auth.manager import AuthManager
from tests.auth.conftest import AuthStack
from tests.fixtures.chromium import CHROMEDRIVER, CHROMIUM, start_chromium

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is in the test extras")
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser-signin"
MSAL_DONE = "Authentication complete."  # MSAL's listener's page once it has the code

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists() and shutil.which("certutil")),
    reason="needs Debian's chromium, chromium-driver and libnss3-tools (.ci/run installs them)",
)


class ChromiumAsSystemBrowser(webbrowser.BaseBrowser):
    """Registered with ``webbrowser``: each page MSAL opens goes to the headless Chromium, where ``person`` acts."""

    def __init__(self) -> None:
        super().__init__("test-headless-chromium")
        self.act: Callable[[str], None] | None = None
        self.opened: list[str] = []
        self.errors: list[BaseException] = []
        self.acted = threading.Event()  # the person has finished (MSAL may have its code before that)

    def open(self, url: str, new: int = 0, autoraise: bool = True) -> bool:
        if self.act is None:
            return False
        self.opened.append(url)
        self.acted.clear()
        threading.Thread(
            target=self._act, args=(self.act, url), daemon=True
        ).start()  # MSAL listens after this
        return True

    def _act(self, act: Callable[[str], None], url: str) -> None:
        try:
            act(url)
        except BaseException as exc:  # seen by the test
            self.errors.append(exc)
        finally:
            self.acted.set()

    def finished(self, timeout: float = 60) -> bool:
        """Wait until the person's last step (its screenshot included) is done."""
        return self.acted.wait(timeout)


_SYSTEM_BROWSER = ChromiumAsSystemBrowser()
webbrowser.register(_SYSTEM_BROWSER.name, None, _SYSTEM_BROWSER, preferred=True)


@pytest.fixture
def chromium(auth_stack: AuthStack, tmp_path: Path) -> Iterator[Any]:
    """Headless Chromium whose NSS database trusts the local CA (no certificate error is ignored)."""
    driver = start_chromium(tmp_path, trust_ca=auth_stack.platform.ca_cert_path)
    try:
        yield driver
    finally:
        _SYSTEM_BROWSER.act = None
        driver.quit()


def person_signs_in(driver: Any, login: str, shots: str) -> Callable[[str], None]:
    """What a person does in the browser MSAL opened: pick the user, Approve, confirm the MFA number if asked."""

    def act(url: str) -> None:
        # The page's body goes stale while the form posts on to MSAL's listener: read it again, as a person looks
        # again. A step that never comes still ends the wait with a TimeoutException, seen by the test.
        wait = WebDriverWait(driver, 30, ignored_exceptions=(StaleElementReferenceException,))
        driver.get(url)
        wait.until(expected_conditions.presence_of_element_located((By.ID, "login"))).send_keys(login)
        driver.save_screenshot(str(ARTIFACTS / f"{shots}-1-login.png"))
        driver.find_element(By.ID, "approve").click()
        wait.until(
            lambda d: (
                d.find_elements(By.ID, "mfa-number") or MSAL_DONE in d.find_element(By.TAG_NAME, "body").text
            )
        )
        if driver.find_elements(By.ID, "mfa-number"):
            driver.save_screenshot(str(ARTIFACTS / f"{shots}-2-mfa-number.png"))
            driver.find_element(By.ID, "mfa-approve").click()
            wait.until(lambda d: MSAL_DONE in d.find_element(By.TAG_NAME, "body").text)
        driver.save_screenshot(str(ARTIFACTS / f"{shots}-3-msal-listener.png"))

    return act


def test_cli_browser_sign_in_opens_the_system_browser_and_prints_the_url(
    auth_stack: AuthStack,
    make_manager: Callable[..., AuthManager],
    chromium: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    manager = make_manager()
    _SYSTEM_BROWSER.act = person_signs_in(chromium, "bob", "bob")
    account = browser_sign_in(manager, None)  # what `obo-console login --browser` runs
    assert _SYSTEM_BROWSER.finished() and _SYSTEM_BROWSER.errors == []
    assert account.username == "bob@contoso.example"
    printed = capsys.readouterr().err
    assert "Opening the sign-in page in your browser. If it does not open, visit:" in printed
    assert _SYSTEM_BROWSER.opened[0] in printed  # the URL the browser got is the one printed
    assert chromium.current_url.startswith(
        "http://localhost:"
    )  # Chromium posted the answer to MSAL's listener
    token = manager.acquire_token(account)
    assert token.source == "cache" and token.claims()["oid"] == auth_stack.oid("bob")
    assert {"bob-1-login.png", "bob-3-msal-listener.png"} <= {p.name for p in ARTIFACTS.glob("*.png")}


def test_carol_confirms_the_mfa_number_in_chromium_for_a_claims_challenge(
    auth_stack: AuthStack, make_manager: Callable[..., AuthManager], chromium: Any
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    manager = make_manager()
    _SYSTEM_BROWSER.act = person_signs_in(chromium, "carol", "carol")
    claims = '{"access_token":{"acrs":{"essential":true,"values":["c1"]}}}'
    account = manager.start_browser_flow(claims_challenge=claims).result(120)
    assert _SYSTEM_BROWSER.finished() and _SYSTEM_BROWSER.errors == []
    assert account.username == "carol@contoso.example"
    token = manager.acquire_token(account).claims()
    assert (token["amr"], token["acrs"]) == (["pwd", "mfa"], ["c1"])
    assert "carol-2-mfa-number.png" in {p.name for p in ARTIFACTS.glob("*.png")}
    print(f"screenshots: {ARTIFACTS}")
