"""Sign-in: the device-code flow with the code and URL large and clear, a QR code of the URL, copy to
clipboard, a countdown while polling and cancel; in local mode, "sign in as" a demo user (for presenters)."""

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

from console.core.clock import Clock, format_countdown
from console.core.workspace_views import AccountInfo
from console.ui import bindings
from console.ui.protocols import DeviceSignIn, WorkspaceLike
from console.ui.widgets.qr_code import QRCode


class SignInScreen(ModalScreen[AccountInfo | None]):
    CSS_PATH = "sign_in.tcss"
    BINDINGS = bindings.SIGN_IN

    def __init__(self, workspace: WorkspaceLike, clock: Clock) -> None:
        super().__init__(id="sign-in")
        self.workspace = workspace
        self.clock = clock
        self.flow: DeviceSignIn | None = None
        self._code: SecretStr | None = None  # kept masked; revealed only where it is shown
        self.demo_users = list(workspace.demo_users())

    def compose(self) -> ComposeResult:
        with Center(id="sign-in-box"):
            yield Label("Sign in to OBO Console", id="sign-in-title")
            with Horizontal(id="sign-in-columns"):
                with Vertical(id="sign-in-steps"):
                    yield Static("1. On any device, open", classes="step")
                    yield Static("requesting a code…", id="sign-in-url")
                    yield Static("2. Enter this code", classes="step")
                    yield Static("", id="sign-in-code")
                    yield Static("", id="sign-in-status")
                    yield Static("c copy code · u copy URL · o open URL · esc cancel", id="sign-in-hint")
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
        except Exception as exc:  # declined, expired, cancelled: shown, not fatal
            if self.is_attached and self.flow is flow:
                self._status(f"{exc}  (r: new code, esc: cancel)", error=True)
            return
        if self.is_attached and self.flow is flow:
            self.dismiss(account)

    def _status(self, message: str, *, error: bool = False) -> None:
        self.query_one("#sign-in-status", Static).update(
            Text(message, style="bold red" if error else "italic")
        )

    def _tick(self) -> None:
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
        self.dismiss(None)

    def action_copy_code(self) -> None:
        if self._code is not None:
            self.app.copy_to_clipboard(self._code.get_secret_value())
            self.notify("Code copied to the clipboard.")

    def action_copy_url(self) -> None:
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
        self._status(f"Completing the sign-in page as {username}…")
        try:
            account = await asyncio.to_thread(self.workspace.sign_in_as, username)
        except Exception as exc:
            self._status(f"Sign-in as {username} failed: {exc}", error=True)
            return
        flow, self.flow = self.flow, None
        if flow is not None:
            flow.cancel()
        if self.is_attached:
            self.dismiss(account)
