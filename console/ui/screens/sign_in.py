"""Sign-in: the device-code flow with the code and URL large and clear, a QR code of the URL, copy to
clipboard, a countdown while polling and cancel; or (``b``) browser sign-in, MSAL's interactive flow in the system
browser, offered by itself when the tenant blocks device-code sign-in (AADSTS53003). In local mode, "sign in as"
a demo user (for presenters) completes the page of the chosen method."""

from __future__ import annotations

import asyncio

from pydantic import SecretStr
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Center, Horizontal, Vertical
from textual.events import Click, Resize
from textual.screen import ModalScreen
from textual.widgets import Footer, Label, OptionList, Static
from textual.widgets.option_list import Option

from console.core.auth.errors import DeviceFlowError
from console.core.clock import Clock, format_countdown
from console.core.workspace_views import AccountInfo
from console.ui import bindings
from console.ui.protocols import BrowserSignIn, DeviceSignIn, WorkspaceLike
from console.ui.widgets.qr_code import QRCode

DEVICE_STEPS = ("1. On any device, open", "2. Enter this code")
BROWSER_STEPS = ("1. Your browser opens the sign-in page (or open it yourself)", "2. Sign in there")
DEVICE_HINT = "c copy code · u copy URL · o open URL · b browser sign-in · esc cancel"
BROWSER_HINT = "u copy URL · d device code instead · r again · esc cancel"
BLOCKED = (
    "This tenant blocks device-code sign-in (Conditional Access, AADSTS53003).  b: sign in with the browser"
)


class SignInScreen(ModalScreen[AccountInfo | None]):
    CSS_PATH = "sign_in.tcss"
    BINDINGS = bindings.SIGN_IN

    def __init__(self, workspace: WorkspaceLike, clock: Clock) -> None:
        super().__init__(id="sign-in")
        self.workspace = workspace
        self.clock = clock
        self.flow: DeviceSignIn | None = None
        self.browser: BrowserSignIn | None = None
        self.method = "device_code"  # or "browser"
        self.blocked_user: str | None = None  # device code refused (AADSTS53003) for this demo user
        self._code: SecretStr | None = None  # kept masked; revealed only where it is shown
        self._finished = False
        self.demo_users = list(workspace.demo_users())

    def compose(self) -> ComposeResult:
        with Center(id="sign-in-box"):
            yield Label("Sign in to OBO Console", id="sign-in-title")
            with Horizontal(id="sign-in-columns"):
                with Vertical(id="sign-in-steps"):
                    yield Static(DEVICE_STEPS[0], classes="step", id="sign-in-step-1")
                    yield Static("requesting a code…", id="sign-in-url")
                    yield Static(DEVICE_STEPS[1], classes="step", id="sign-in-step-2")
                    yield Static("", id="sign-in-code")
                    yield Static("", id="sign-in-status")
                    yield Static(DEVICE_HINT, id="sign-in-hint")
                yield QRCode(id="sign-in-qr")
            if self.demo_users:
                yield Static(
                    "Local mode — presenter: complete the page as a demo user", id="sign-in-as-title"
                )
                yield OptionList(
                    *(Option(f"{i + 1}  {user}", id=user) for i, user in enumerate(self.demo_users)),
                    id="sign-in-as",
                )
        yield Footer()

    def on_mount(self) -> None:
        self.set_class(self.app.size.height < 34, "-short")
        self.set_interval(1.0, self._tick, name="sign-in-countdown")
        self.start_flow()

    def on_resize(self, event: Resize) -> None:
        self.set_class(event.size.height < 34, "-short")

    @work(group="device-flow", exclusive=True, exit_on_error=False)
    async def start_flow(self) -> None:
        self._status("Requesting a device code…")
        try:
            flow = await asyncio.to_thread(self.workspace.begin_device_flow)
        except Exception as exc:  # shown with what to do
            self._status(f"Could not start sign-in: {exc}  (r: try again)", error=True)
            return
        self.flow = flow
        self._code = flow.user_code
        self.query_one("#sign-in-url", Static).update(Text(flow.verification_uri, style="bold underline"))
        self.query_one("#sign-in-code", Static).update(
            Text("  ".join(flow.user_code.get_secret_value()), style="bold")
        )
        self.query_one(QRCode).set_data(flow.verification_uri)
        self._tick()
        # Shielded: leaving the screen must not cancel the sign-in itself (cancel() does that, on purpose).
        waiting = asyncio.wrap_future(flow.signed_in())
        waiting.add_done_callback(lambda task: task.cancelled() or task.exception())
        try:
            account = await asyncio.shield(waiting)
        except Exception as exc:  # declined, expired, cancelled, blocked: shown, not fatal
            if self.is_attached and self.flow is flow:
                self.flow = None
                self._device_failed(exc, f"{exc}  (r: new code, esc: cancel)")
            return
        if self.is_attached and self.flow is flow:
            self._finish(account)

    def _status(self, message: str, *, error: bool = False) -> None:
        self.query_one("#sign-in-status", Static).update(
            Text(message, style="bold red" if error else "italic")
        )

    def _tick(self) -> None:
        if self.method == "browser":
            self._show_browser_page()
            return
        flow = self.flow
        if flow is None:
            return
        left = flow.expires_at - self.clock.time()
        if left > 0:
            self._status(f"Waiting for you to approve…  code expires in {format_countdown(left)}")
        else:
            self._status("The code expired.  (r: new code, esc: cancel)", error=True)

    # ---- actions
    async def action_cancel(self) -> None:
        flow, self.flow = self.flow, None
        if flow is not None:
            flow.cancel()
        self._cancel_browser()
        self._finish(None)

    def _finish(self, account: AccountInfo | None) -> None:
        """Close the screen, once. The device flow and a demo-user or browser sign-in can complete together
        (completing the page as a demo user also approves the device code), and ``dismiss`` pops whatever screen is
        on top: a second one would pop the main screen and leave an empty one."""
        if self._finished or not self.is_attached:
            return
        self._finished = True
        self.dismiss(account)

    def action_copy_code(self) -> None:
        if self._code is not None:
            self.app.copy_to_clipboard(self._code.get_secret_value())
            self.notify("Code copied to the clipboard.")

    def action_copy_url(self) -> None:
        if self.method == "browser":
            if self.browser is not None and self.browser.auth_uri:
                self.app.copy_to_clipboard(self.browser.auth_uri)
                self.notify("URL copied to the clipboard.")
            return
        if self.flow is not None:
            self.app.copy_to_clipboard(self.flow.verification_uri)
            self.notify("URL copied to the clipboard.")

    def action_open_url(self) -> None:
        """The verification page in a browser: a new tab of the page's browser under `obo-console web`."""
        if self.flow is not None:
            self.app.open_url(self.flow.verification_uri)

    @on(Click, "#sign-in-url")
    def _url_clicked(self) -> None:
        self.action_open_url()

    async def action_retry(self) -> None:
        if self.method == "browser":
            self.start_browser(None)
            return
        flow, self.flow = self.flow, None
        if flow is not None:
            flow.cancel()
        self.start_flow()

    def action_sign_in_as(self, index: int) -> None:
        if 0 <= index < len(self.demo_users):
            self.sign_in_as(self.demo_users[index])

    @on(OptionList.OptionSelected, "#sign-in-as")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            self.sign_in_as(event.option.id)

    @work(group="sign-in-as", exclusive=True, exit_on_error=False)
    async def sign_in_as(self, username: str) -> None:
        if self.method == "browser":
            self.start_browser(username)
            return
        self._status(f"Completing the sign-in page as {username}…")
        try:
            account = await asyncio.to_thread(self.workspace.sign_in_as, username)
        except Exception as exc:
            self._device_failed(exc, f"Sign-in as {username} failed: {exc}", username)
            return
        flow, self.flow = self.flow, None
        if flow is not None:
            flow.cancel()
        if self.is_attached:
            self._finish(account)

    # ---- browser sign-in (MSAL's interactive flow)
    def _device_failed(self, exc: Exception, message: str, username: str | None = None) -> None:
        """Show why the device-code sign-in failed; when Conditional Access blocks it, offer the browser."""
        if isinstance(exc, DeviceFlowError) and exc.blocked_by_policy:
            self.blocked_user = username
            self._status(BLOCKED, error=True)
        else:
            self._status(message, error=True)

    def action_browser(self) -> None:
        """Sign in in the browser instead: as the demo user the device code was refused for, else the system
        browser (in local mode 1–4 then complete the page as a demo user)."""
        self.start_browser(self.blocked_user)

    def action_device_code(self) -> None:
        if self.method == "device_code":
            return
        self._cancel_browser()
        self._set_method("device_code")
        self.query_one("#sign-in-url", Static).update("requesting a code…")
        self.start_flow()

    def _set_method(self, method: str) -> None:
        self.method = method
        browser = method == "browser"
        steps = BROWSER_STEPS if browser else DEVICE_STEPS
        self.query_one("#sign-in-step-1", Static).update(steps[0])
        self.query_one("#sign-in-step-2", Static).update(steps[1])
        self.query_one("#sign-in-hint", Static).update(BROWSER_HINT if browser else DEVICE_HINT)
        self.query_one("#sign-in-code", Static).display = not browser
        self.query_one(QRCode).display = not browser
        self.set_class(browser, "-browser")

    def _cancel_browser(self) -> None:
        browser, self.browser = self.browser, None
        if browser is not None:
            browser.cancel()

    @work(group="browser-sign-in", exclusive=True, exit_on_error=False)
    async def start_browser(self, as_user: str | None) -> None:
        flow, self.flow = self.flow, None
        if flow is not None:
            flow.cancel()  # one method at a time: the device code stops polling
        self._cancel_browser()
        self._set_method("browser")
        who = f" as {as_user}" if as_user else ""
        self.query_one("#sign-in-url", Static).update("opening the sign-in page…")
        self._status(f"Starting browser sign-in{who}…")
        try:
            browser = await asyncio.to_thread(self.workspace.begin_browser_sign_in, as_user)
        except Exception as exc:  # shown with what to do
            self._status(f"Could not start browser sign-in: {exc}  (r: try again)", error=True)
            return
        self.browser = browser
        waiting = asyncio.wrap_future(browser.signed_in())
        waiting.add_done_callback(lambda task: task.cancelled() or task.exception())
        try:
            account = await asyncio.shield(waiting)
        except Exception as exc:  # declined, refused, cancelled, timed out: shown, not fatal
            if self.is_attached and self.browser is browser:
                self._status(f"{exc}  (r: again, d: device code, esc: cancel)", error=True)
            return
        if self.is_attached and self.browser is browser:
            self._finish(account)

    def _show_browser_page(self) -> None:
        browser = self.browser
        if browser is None or browser.signed_in().done():
            return
        if browser.auth_uri:
            url = browser.auth_uri.split("?")[0]
            self.query_one("#sign-in-url", Static).update(Text(url, style="bold underline"))
            self._status("Waiting for you to sign in in the browser…")
