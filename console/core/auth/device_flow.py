"""The device-code flow as an object the CLI and the TUI can both drive without blocking an event loop.

``AuthManager.start_device_flow()`` asks the identity platform for a code (one HTTP call: from an event loop run
it with ``asyncio.to_thread``) and returns a ``DeviceFlow`` whose ``prompt`` says what to show. Polling runs in a
worker thread; ``result()`` blocks, ``await wait()`` does not, ``cancel()`` stops polling within a second.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import msal
from pydantic import SecretStr

from console.core.auth.accounts import SignedInAccount
from console.core.auth.errors import DeviceFlowCancelled, DeviceFlowError
from console.core.auth.worker_flow import WorkerFlow
from mcp_server.redact import remember_secret


@dataclass(frozen=True)
class DeviceCodePrompt:
    """What to show the person. The user code (and the message, which contains it) are masked in repr."""

    user_code: SecretStr
    verification_uri: str
    expires_at: float  # epoch seconds
    message: SecretStr = field(repr=False)
    interval: int = 5

    def seconds_left(self, now: float | None = None) -> int:
        return max(0, int(self.expires_at - (time.time() if now is None else now)))


class DeviceFlow(WorkerFlow):
    def __init__(
        self,
        app: msal.PublicClientApplication,
        flow: dict[str, Any],
        on_token: Callable[[dict[str, Any]], SignedInAccount],
    ) -> None:
        super().__init__()
        self._app = app
        self._flow = flow  # holds the device code: never exposed
        self._on_token = on_token
        self._cancelled = threading.Event()
        self._start_lock = threading.Lock()
        remember_secret(str(flow["user_code"]))  # masked in every log, event and export from now on
        self.prompt = DeviceCodePrompt(
            user_code=SecretStr(str(flow["user_code"])),
            verification_uri=str(flow["verification_uri"]),
            expires_at=float(flow["expires_at"]),
            message=SecretStr(str(flow.get("message", ""))),
            interval=int(flow.get("interval", 5)),
        )

    def __repr__(self) -> str:
        return f"<DeviceFlow {self.prompt.verification_uri} done={self.done()}>"

    # -- polling -----------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker thread (idempotent)."""
        with self._start_lock:
            if self._thread is None and not self._cancelled.is_set():
                self._thread = threading.Thread(target=self._poll, name="device-code-poll", daemon=True)
                self._thread.start()

    start_polling = start  # the name the console and its tests call

    def _poll(self) -> None:
        try:
            result = self._app.acquire_token_by_device_flow(
                self._flow,
                exit_condition=lambda flow: (
                    self._cancelled.is_set() or flow.get("expires_at", 0) < time.time()
                ),
            )
            if self._cancelled.is_set():
                raise DeviceFlowCancelled()
            if "access_token" in result:
                self._settle(self._on_token(result))
                return
            error = str(result.get("error", "unknown_error"))
            if error in ("authorization_pending", "slow_down"):  # the loop ended on our clock, not the IdP's
                error = "expired_token"
            raise DeviceFlowError(error, str(result.get("error_description", "")))
        except BaseException as exc:  # handed to whoever waits, never lost in the thread
            self._settle(exc)

    def _stop_if_cancelled(self, future: Future[SignedInAccount]) -> None:
        if future.cancelled():
            self._cancelled.set()
            self._flow["expires_at"] = 0

    def cancel(self) -> None:
        self._cancelled.set()
        self._flow["expires_at"] = 0  # MSAL's documented way to end its polling loop
        with self._start_lock:
            if self._thread is None:
                self._settle(DeviceFlowCancelled())
