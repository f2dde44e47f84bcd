"""Browser sign-in as the workspace offers it: MSAL's interactive flow in a worker thread, its steps published as
``SignInStep`` events, and a handle the UI waits on (``console.ui.protocols.BrowserSignIn``).

Also the event for a device-code sign-in that Conditional Access blocked (AADSTS53003), so every view can say
that the tenant blocks device-code sign-in and offer the browser instead.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from console.core.auth.errors import DeviceFlowCancelled
from console.core.events import EventBus, SignInStep
from console.core.workspace_views import AccountInfo, SignInHandle

if TYPE_CHECKING:
    from console.core.auth.accounts import SignedInAccount
    from console.core.auth.browser_flow import BrowserFlow
    from console.core.auth.manager import AuthManager

BLOCKED_CODE = "AADSTS53003"


class BrowserSignInHandle(SignInHandle):
    """A browser sign-in in progress. ``auth_uri`` is the sign-in page once opened (None before)."""

    def __init__(self, flow: BrowserFlow, on_signed_in: Callable[[SignedInAccount], AccountInfo]) -> None:
        super().__init__(flow, on_signed_in)
        self._browser = flow

    @property
    def auth_uri(self) -> str | None:
        return self._browser.auth_uri

    def __repr__(self) -> str:
        return f"<BrowserSignInHandle opened={self.auth_uri is not None} done={self.done()}>"


def begin_browser_sign_in(
    auth: AuthManager,
    bus: EventBus,
    on_signed_in: Callable[[SignedInAccount], AccountInfo],
    as_user: str | None = None,
) -> BrowserSignInHandle:
    """Start MSAL's interactive flow (the system browser; ``as_user``: the demo user completes the page)."""
    user = auth.endpoints.demo_user(as_user).username if as_user is not None else None

    def opened(url: str) -> None:
        page = urlsplit(url)
        bus.publish(
            SignInStep(
                method="browser",
                state="page_opened",
                account=user,
                detail=f"the sign-in page {page.scheme}://{page.netloc}{page.path}",
            )
        )

    def finished(account: SignedInAccount) -> AccountInfo:
        info = on_signed_in(account)
        bus.publish(SignInStep(method="browser", state="done", account=info.username))
        return info

    flow = auth.start_browser_flow(as_user=user, announce=opened)
    bus.publish(SignInStep(method="browser", state="started", account=user))
    handle = BrowserSignInHandle(flow, finished)
    handle.signed_in().add_done_callback(lambda done: _report_failure(bus, done, "browser", user))
    return handle


def watch_device_flow(bus: EventBus, done: Future[AccountInfo], user: str | None = None) -> None:
    """Publish the blocked (AADSTS53003) or failed state of a device-code sign-in once it ends."""
    done.add_done_callback(lambda finished: _report_failure(bus, finished, "device_code", user))


def _report_failure(bus: EventBus, done: Future[AccountInfo], method: str, user: str | None) -> None:
    if done.cancelled() or done.exception() is None:
        return
    error = done.exception()
    blocked = bool(getattr(error, "blocked_by_policy", False))
    message = getattr(error, "message", str(error))
    state = "blocked" if blocked else "cancelled" if isinstance(error, DeviceFlowCancelled) else "failed"
    bus.publish(
        SignInStep(
            method=method,
            state=state,
            account=user,
            code=BLOCKED_CODE if blocked else None,
            detail=str(message),
        )
    )
