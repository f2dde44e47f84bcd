"""Browser sign-in in the console, end to end: the real Workspace, real MSAL (its interactive flow with its own
loopback listener) and the real local stack, driven through the sign-in screen with Pilot.

"The system browser" here is a ``webbrowser`` controller the test registers, as an installed browser is: it gets
the sign-in page MSAL opens and completes it with the same GET and form POSTs a browser sends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from textual.pilot import Pilot
from textual.widgets import Static

from console.core.describe import describe
from console.core.events import Event, SignInStep
from console.core.workspace import Workspace
from console.ui.app import OboConsoleApp
from console.ui.screens.sign_in import BLOCKED, SignInScreen
from mcp_server.stack import LocalStack
from tests.fixtures.browser_person import BrowserPerson
from tests.fixtures.workspace import FAST, workspace_on
from tests.ui.helpers import until
from tests.ui.test_flow import SIZE

SIGN_IN = 60.0  # seconds a sign-in may take on a loaded machine


@pytest.fixture
def workspace(use_local_stack: LocalStack, patient_local_stack: LocalStack) -> Iterator[Workspace]:
    with workspace_on(FAST) as ws:
        yield ws


def _status(screen: SignInScreen) -> str:
    return str(screen.query_one("#sign-in-status", Static).render())


async def _sign_in_screen(pilot: Pilot, app: OboConsoleApp) -> SignInScreen:
    """The sign-in screen the console opens at start (nobody signed in), once it shows a device code."""
    await until(pilot, lambda: isinstance(app.screen, SignInScreen), SIGN_IN, "the sign-in screen")
    screen = app.screen
    assert isinstance(screen, SignInScreen)
    await until(pilot, lambda: screen.flow is not None, SIGN_IN, "the device code")
    return screen


async def test_f2_offers_browser_sign_in_and_the_system_browser_completes_it(
    workspace: Workspace, person: BrowserPerson
) -> None:
    seen: list[Event] = []
    workspace.bus.subscribe(seen.append)
    app = OboConsoleApp(workspace=workspace)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _sign_in_screen(pilot, app)
        # The footer composes its keys after the screen mounts: wait for them, as a person's eye would.
        await until(pilot, lambda: len(screen.query("FooterKey")) > 0, SIGN_IN, "the footer's keys")
        footer = [str(key.render()) for key in screen.query("FooterKey")]
        assert any("Browser sign-in" in key for key in footer), footer
        assert any("Device code" in key for key in footer), footer
        device = screen.flow

        person.login = "alice"
        await pilot.press("b")
        await until(pilot, lambda: not isinstance(app.screen, SignInScreen), SIGN_IN, "browser sign-in")
        assert person.errors == []
        assert workspace.current_account is not None
        assert workspace.current_account.username == "alice@contoso.example"
    assert len(person.opened) == 1 and "/oauth2/v2.0/authorize?" in person.opened[0]
    assert "code_challenge_method=S256" in person.opened[0]
    assert device is not None and device.signed_in().done()  # choosing the browser stopped the device code
    steps = [(e.method, e.state) for e in seen if isinstance(e, SignInStep) and e.method == "browser"]
    assert steps == [("browser", "started"), ("browser", "page_opened"), ("browser", "done")]
    done = next(e for e in seen if isinstance(e, SignInStep) and e.state == "done")
    assert describe(done).line() == "browser sign-in done: alice@contoso.example"


async def test_blocked_device_code_offers_the_browser_with_one_key(workspace: Workspace) -> None:
    seen: list[Event] = []
    workspace.bus.subscribe(seen.append)
    app = OboConsoleApp(workspace=workspace)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _sign_in_screen(pilot, app)
        await pilot.press("4")  # dave: Conditional Access blocks his device-code sign-in
        await until(pilot, lambda: BLOCKED in _status(screen), SIGN_IN, "the AADSTS53003 offer")
        assert screen.blocked_user == "dave@contoso.example"
        assert workspace.current_account is None

        await pilot.press("b")  # one key: the browser sign-in, completed as dave
        await until(pilot, lambda: not isinstance(app.screen, SignInScreen), SIGN_IN, "browser sign-in")
        assert workspace.current_account is not None
        assert workspace.current_account.username == "dave@contoso.example"
    blocked = [e for e in seen if isinstance(e, SignInStep) and e.state == "blocked"]
    assert [(e.method, e.code) for e in blocked] == [("device_code", "AADSTS53003")]
    assert (
        describe(blocked[0])
        .line()
        .startswith(
            "device-code sign-in blocked: Sign-in failed: this tenant's Conditional Access blocks device-code sign-in"
        )
    )
    assert [e.state for e in seen if isinstance(e, SignInStep) and e.method == "browser"] == [
        "started",
        "page_opened",
        "done",
    ]


async def test_in_browser_mode_a_demo_user_key_completes_the_browser_page(
    workspace: Workspace, person: BrowserPerson
) -> None:
    """``b`` opens the system browser (nobody signs in there); ``2`` then cancels that sign-in and completes a new
    browser sign-in as bob; ``d`` would go back to the device code."""
    seen: list[Event] = []
    workspace.bus.subscribe(seen.append)
    app = OboConsoleApp(workspace=workspace)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _sign_in_screen(pilot, app)
        person.login = ""
        await pilot.press("b")
        await until(pilot, lambda: bool(person.opened), SIGN_IN, "the system browser to get the page")
        screen._tick()
        assert "/oauth2/v2.0/authorize" in str(screen.query_one("#sign-in-url", Static).render())
        assert _status(screen) == "Waiting for you to sign in in the browser…"
        assert not screen.query_one("#sign-in-code", Static).display  # no code in browser mode
        first = screen.browser
        await pilot.press("u")
        assert app.clipboard == person.opened[0]

        await pilot.press("2")
        await until(
            pilot, lambda: not isinstance(app.screen, SignInScreen), SIGN_IN, "browser sign-in as bob"
        )
        assert workspace.current_account is not None
        assert workspace.current_account.username == "bob@contoso.example"
    assert first is not None and first.signed_in().done()
    states = [(e.state, e.account) for e in seen if isinstance(e, SignInStep) and e.method == "browser"]
    assert states[:2] == [("started", None), ("page_opened", None)]
    assert ("cancelled", None) in states  # the system-browser sign-in, cancelled by choosing bob
    assert states[-1] == ("done", "bob@contoso.example")
