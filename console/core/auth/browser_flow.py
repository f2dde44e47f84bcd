"""Browser sign-in: MSAL's interactive flow (authorization code with PKCE, loopback redirect ``http://localhost``).

``PublicClientApplication.acquire_token_interactive`` makes the PKCE verifier, state and nonce, listens on a
loopback port, opens the sign-in page in "the system browser" and redeems the code it receives. It blocks until
then, so a ``BrowserFlow`` runs it in a worker thread: ``result()`` blocks, ``await wait()`` does not, ``cancel()``
ends the wait.

Who opens the page. MSAL hands the URI to Python's ``webbrowser`` module (``webbrowser.open``, or a browser it
picked by name: Edge on Linux when installed). Its only other hook, ``on_before_launching_ui``, does not get the
URI, and ``BROWSER`` is read once per process. So this module registers one ``webbrowser`` controller, first in
``webbrowser``'s order (public API: ``webbrowser.register(..., preferred=True)``). While a flow runs it gets the URI:
it announces it (the CLI prints it) and gives it to the flow's opener (local mode ``--as``: complete the page as
a demo user). With no opener it answers "not opened", and ``webbrowser`` goes on to the system browser, as if
this controller were not there. With no flow running it always steps aside. One interactive flow runs at a time
per process (a person signs in in one browser window at a time).
"""

from __future__ import annotations

import contextlib
import threading
import webbrowser
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import msal
import requests

from console.core.auth.accounts import SignedInAccount
from console.core.auth.errors import BrowserSignInError, DeviceFlowCancelled, SignInError
from console.core.auth.login_page import redirect_uri_of
from console.core.auth.worker_flow import WorkerFlow

CONTROLLER_NAME = "obo-console-sign-in"
DEFAULT_TIMEOUT = 300  # seconds for the person to complete the page (MSAL's listener gives up then)
START_WAIT = 15.0  # a cancelled flow ends within ~1 s (MSAL's loop); waiting longer means another one runs

Opener = Callable[[str], None]  # completes the page at the URI (in its own thread); raises to give up


class _HandOff(webbrowser.BaseBrowser):
    """The registered controller: the running flow's URI goes to that flow; otherwise it steps aside."""

    def open(self, url: str, new: int = 0, autoraise: bool = True) -> bool:
        flow = _running.flow
        return flow._opened(url) if flow is not None else False


class _Running:
    lock = threading.Lock()  # held while a flow runs MSAL's interactive call
    flow: BrowserFlow | None = None


_running = _Running()


def _register_first() -> None:
    """Put the hand-off first in ``webbrowser``'s order again (a controller registered since, as preferred, would
    otherwise take the URI before it). A repeated name is tried again; ``_opened`` answers the same each time."""
    webbrowser.register(CONTROLLER_NAME, None, _HandOff(CONTROLLER_NAME), preferred=True)


class BrowserFlow(WorkerFlow):
    def __init__(
        self,
        app: msal.PublicClientApplication,
        scopes: list[str],
        on_token: Callable[[dict[str, Any]], SignedInAccount],
        *,
        opener: Opener | None = None,
        announce: Callable[[str], None] | None = None,
        login_hint: str | None = None,
        claims_challenge: str | None = None,
        timeout: int = DEFAULT_TIMEOUT,
    ) -> None:
        super().__init__()
        self._app = app
        self._scopes = scopes
        self._on_token = on_token
        self._opener = opener
        self._announce = announce
        self._login_hint = login_hint
        self._claims = claims_challenge
        self._timeout = timeout
        self._lock = threading.Lock()
        self._cancelled = False
        self._failure: BaseException | None = None  # why the opener gave up (more precise than MSAL's answer)
        self.auth_uri: str | None = None  # the sign-in page, once MSAL opened it

    def __repr__(self) -> str:
        return f"<BrowserFlow opened={self.auth_uri is not None} done={self.done()}>"

    # -- running -------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker thread (idempotent)."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="browser-sign-in", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        try:
            if not _running.lock.acquire(timeout=START_WAIT):
                raise SignInError(
                    "Another browser sign-in is still running in this console.",
                    hint="Finish or cancel it, then try again.",
                )
            try:
                _register_first()
                _running.flow = self
                result = self._interactive()
            finally:
                _running.flow = None
                _running.lock.release()
            self._settle(self._outcome(result))
        except BaseException as exc:  # handed to whoever waits, never lost in the thread
            self._settle(exc)

    def _interactive(self) -> dict[str, Any]:
        if self._cancelled:
            raise DeviceFlowCancelled()
        try:
            return self._app.acquire_token_interactive(
                self._scopes,
                login_hint=self._login_hint,
                claims_challenge=self._claims,
                timeout=self._timeout,
                prompt=msal.Prompt.SELECT_ACCOUNT,
            )
        except msal.BrowserInteractionTimeoutError:
            raise BrowserSignInError(
                "timed_out",
                f"No sign-in arrived within {self._timeout} s.",
                hint="Run the sign-in again and complete the page in the browser sooner.",
            ) from None

    def _outcome(self, result: dict[str, Any]) -> SignedInAccount | BaseException:
        if self._cancelled:
            return DeviceFlowCancelled()
        if self._failure is not None:
            return self._failure
        if "access_token" in result:
            return self._on_token(result)
        return BrowserSignInError(
            str(result.get("error", "unknown_error")), str(result.get("error_description", ""))
        )

    def _opened(self, url: str) -> bool:
        """MSAL opens the sign-in page: True when this flow's opener took it, False for the system browser."""
        if self.auth_uri == url:  # asked again (the hand-off is in webbrowser's order more than once)
            return self._opener is not None or self._cancelled
        self.auth_uri = url
        if self._announce is not None:
            self._announce(url)
        if self._cancelled:
            self._give_up_later("access_denied", "The sign-in was cancelled in the console.")
            return True
        if self._opener is None:
            return False
        # In a thread: MSAL serves its listener only after this returns.
        threading.Thread(
            target=self._open_with_opener, args=(url,), name="browser-sign-in-page", daemon=True
        ).start()
        return True

    def _open_with_opener(self, url: str) -> None:
        assert self._opener is not None
        try:
            self._opener(url)
        except Exception as exc:  # the page refused: end MSAL's wait now, not at its timeout
            self._failure = exc
            self._give_up("access_denied", str(exc).splitlines()[0])

    def _give_up_later(self, error: str, description: str) -> None:
        threading.Thread(target=self._give_up, args=(error, description), daemon=True).start()

    def _give_up(self, error: str, description: str) -> None:
        """Tell MSAL's listener the sign-in ended without a code, as the identity platform's error answer does
        (with the request's own state, so the listener accepts it)."""
        if self.auth_uri is None:
            return
        state = dict(parse_qsl(urlsplit(self.auth_uri).query)).get("state", "")
        with requests.Session() as session:
            session.trust_env = False  # a loopback address: never through a proxy
            # RequestException: the listener is gone already (MSAL returned).
            with contextlib.suppress(requests.RequestException):
                session.post(
                    redirect_uri_of(self.auth_uri),
                    data={"error": error, "error_description": description, "state": state},
                    timeout=10,
                )

    def cancel(self) -> None:
        """Stop waiting for the browser: MSAL's listener hears that the sign-in was cancelled."""
        with self._lock:
            already = self._cancelled
            self._cancelled = True
            started = self._thread is not None
        if not started:
            self._settle(DeviceFlowCancelled())
        elif not already:
            self._give_up_later("access_denied", "The sign-in was cancelled in the console.")
