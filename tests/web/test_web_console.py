"""`obo-console web` in a real headless Chromium: the page refuses a missing token (its websocket too); with the
token it renders the console, the device-code sign-in with its link and QR code; `1` signs in as alice; "show my
documents" shows her documents; F7 opens the presenter view; ctrl+e offers the export as a download; a second tab runs its own
console, signed out, which stops when the tab closes; and when the command stops, every console and the local stack it launched
stop with it. Screenshots of each step are kept in
``test-artifacts/web/``."""

from __future__ import annotations

import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ui.terminal import alive
from tests.web.conftest import ARTIFACTS, browser_available
from tests.web.helpers import TEE_WEBSOCKETS, PageScreen, WebConsole

pytestmark = pytest.mark.skipif(
    not browser_available(), reason="needs Debian's chromium and chromium-driver (.ci/run installs them)"
)


@pytest.fixture
def web(isolated_home: Path) -> Iterator[WebConsole]:
    console = WebConsole(isolated_home)
    try:
        yield console
    finally:
        if console.proc.poll() is None:
            console.kill()


def _keys(driver: Any, *keys: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains  # deferred: selenium is optional

    ActionChains(driver).send_keys(*keys).perform()


def _chord(driver: Any, modifier: str, key: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains  # deferred: selenium is optional

    ActionChains(driver).key_down(modifier).send_keys(key).key_up(modifier).perform()


def _focus(driver: Any) -> None:
    """Keys go to the terminal, as after a person clicks into it (without a click the terminal would receive)."""
    driver.execute_script("document.querySelector('.xterm-helper-textarea').focus();")


def _consoles(web: WebConsole) -> list[int]:
    """The tabs' console processes running now (the stack is `... server`)."""
    return [
        pid
        for pid in web.collect_descendants()
        if alive(pid) and "console.cli" in (command := _cmdline(pid)) and command[-1] != "server"
    ]


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]
    except OSError:
        return ["(gone)"]


def _shot(driver: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / name))


def _download(folder: Path, suffix: str, timeout: float = 30.0) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [p for p in folder.iterdir() if p.name.endswith(suffix)]
        if done:
            return done[0]
        time.sleep(0.1)
    raise AssertionError(
        f"no *{suffix} downloaded; the folder holds {sorted(p.name for p in folder.iterdir())}"
    )


def test_the_page_refuses_a_missing_token_and_its_websocket_too(web: WebConsole, browser: Any) -> None:
    from selenium.webdriver.common.by import By  # deferred: selenium is optional

    browser.get(web.base + "/")
    assert browser.find_element(By.TAG_NAME, "h1").text == "401 — Access token needed"
    assert "ends in ?token=" in browser.find_element(By.TAG_NAME, "p").text
    _shot(browser, "0-no-token.png")
    # The page's origin, without the session cookie: the websocket upgrade is refused, no console starts.
    code = browser.execute_async_script(
        "const done = arguments[arguments.length - 1]; const ws = new WebSocket(arguments[0]);"
        "ws.onopen = () => done('opened'); ws.onclose = (e) => done(e.code);",
        web.base.replace("http://", "ws://") + "/ws?width=80&height=24",
    )
    assert code == 1006  # closed before it opened (the upgrade got 401)
    browser.get(web.base + "/?token=" + web.token.swapcase())
    assert browser.find_element(By.TAG_NAME, "h1").text == "403 — Wrong access token"
    # Only the local stack runs: no console was started for the refused page or websocket.
    commands = [_cmdline(pid) for pid in web.collect_descendants()]
    assert commands and all(command[-1] == "server" for command in commands), commands
    assert web.stop() == 0


def test_the_console_in_the_browser_signs_in_asks_presents_and_exports(web: WebConsole, browser: Any) -> None:
    from selenium.webdriver.common.keys import Keys  # deferred: selenium is optional

    browser.get(web.url)
    assert "token=" not in browser.current_url  # exchanged for the session cookie, gone from the address bar
    page = PageScreen(browser)
    screen = page.wait_for(lambda s: "OBO Console" in s and "Chat" in s, timeout=60)
    _shot(browser, "1-console.png")
    screen = page.wait_for(lambda s: "Waiting for you to approve" in s, timeout=120)
    assert "Enter this code" in screen and "o open URL" in screen
    verification = next(word for word in screen.split() if word.startswith("https://127.0.0.1:"))
    assert any(block in screen for block in "▀▄█")  # the QR code of the link
    for user in ("alice@", "bob@", "carol@"):
        assert user in screen, user
    _shot(browser, "2-sign-in.png")

    _focus(browser)
    first_tab = browser.current_window_handle
    _keys(browser, "o")  # the link opens in a new tab of this browser
    deadline = time.monotonic() + 30
    while len(browser.window_handles) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    opened = [handle for handle in browser.window_handles if handle != first_tab]
    assert len(opened) == 1
    browser.switch_to.window(opened[0])
    assert browser.current_url.startswith(verification)
    browser.close()
    browser.switch_to.window(first_tab)
    _focus(browser)

    _keys(browser, "1")  # the presenter's choice: complete the sign-in page as alice
    screen = page.wait_for(lambda s: "Sign in to OBO Console" not in s and "<alice@" in s, timeout=90)
    _shot(browser, "3-signed-in-as-alice.png")

    _keys(browser, "show my documents")
    page.wait_for("show my documents", timeout=20)
    _keys(browser, Keys.ENTER)
    screen = page.wait_for(lambda s: "ran as" in s and "visible" in s and "Found " in s, timeout=120)
    assert "search.azure.com" in screen  # the OBO token's audience, beside the user token's
    assert "eyJ" not in screen  # claims, never a token
    _shot(browser, "4-her-documents.png")

    _keys(browser, Keys.F7)
    screen = page.wait_for("Last answer", timeout=30)
    _shot(browser, "5-presenter.png")
    _keys(browser, Keys.ESCAPE)
    page.wait_for(lambda s: "Last answer" not in s, timeout=30)

    _chord(browser, Keys.CONTROL, "e")
    screen = page.wait_for("offered as the download", timeout=60)
    _shot(browser, "6-export.png")
    bundle = _download(browser.downloads, ".zip")
    with zipfile.ZipFile(bundle) as archive:
        names = sorted(archive.namelist())
        stem = bundle.name.removesuffix(".zip")
        assert names == [f"{stem}.md", f"{stem}.trace.jsonl"]
        markdown = archive.read(f"{stem}.md").decode()
    assert stem.startswith("session-") and (web.home / "exports" / f"{stem}.md").read_text() == markdown
    assert "show my documents" in markdown and "Company handbook" in markdown and "eyJ" not in markdown

    # A second tab: its own console process (the same stack), signed out, gone again when the tab closes.
    assert len(_consoles(web)) == 1
    browser.switch_to.new_window("tab")
    browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": TEE_WEBSOCKETS})
    browser.get(web.base + "/")  # the session cookie: no token needed again
    second = PageScreen(browser)
    screen = second.wait_for(lambda s: "Waiting for you to approve" in s, timeout=120)
    assert "<alice@" not in screen  # its own sign-in: a new tab starts signed out (tests/web/test_tabs.py)
    _shot(browser, "7-second-tab-signed-out.png")
    assert len(_consoles(web)) == 2
    browser.close()
    browser.switch_to.window(first_tab)
    deadline = time.monotonic() + 60
    while len(_consoles(web)) > 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(_consoles(web)) == 1
    page.wait_for("Found ", timeout=10)  # the first tab's console carries on

    web.collect_descendants()
    assert web.stop() == 0  # and nothing it started (the tab's console, the local stack) is left running
    assert not (web.home / "local-stack.json").exists()
    # The token was printed once, in the URL, and never logged (no access log: its request lines carry it).
    assert [line.strip() for line in web.stdout if web.token in line] == [web.url]
    assert not [line for line in web.stderr if web.token in line]
