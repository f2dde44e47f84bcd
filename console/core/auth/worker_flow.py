"""What the device-code and browser sign-in flows share: a worker thread settles one future.

Callers block on ``result()``, ``await wait()`` or ``cancel()``; a waiter that goes away (its task cancelled)
cancels the future, and the flow stops its worker with it.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future, InvalidStateError

from console.core.auth.accounts import SignedInAccount


class WorkerFlow:
    """Base of ``DeviceFlow`` and ``BrowserFlow``: subclasses start the worker (``start``) and stop it (``cancel``)."""

    def __init__(self) -> None:
        self._future: Future[SignedInAccount] = Future()
        # Whoever awaited wait() may be cancelled: asyncio then cancels this future too; the worker stops with it.
        self._future.add_done_callback(self._stop_if_cancelled)
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the worker thread (idempotent)."""
        raise NotImplementedError

    def cancel(self) -> None:
        raise NotImplementedError

    def _settle(self, outcome: SignedInAccount | BaseException) -> None:
        """Complete the future unless it is already done (cancelled by a waiter that went away, or by cancel())."""
        if self._future.done():
            return
        try:
            if isinstance(outcome, BaseException):
                self._future.set_exception(outcome)
            else:
                self._future.set_result(outcome)
        except InvalidStateError:  # completed by another thread between the check and the set
            pass

    def _stop_if_cancelled(self, future: Future[SignedInAccount]) -> None:
        if future.cancelled():
            self.cancel()

    # -- waiting -------------------------------------------------------------------------------------------
    @property
    def future(self) -> Future[SignedInAccount]:
        self.start()
        return self._future

    def result(self, timeout: float | None = None) -> SignedInAccount:
        """Block until signed in; raises the flow's error (or DeviceFlowCancelled). Ctrl-C cancels the flow."""
        try:
            return self.future.result(timeout)
        except KeyboardInterrupt:
            self.cancel()
            raise

    async def wait(self) -> SignedInAccount:
        return await asyncio.wrap_future(self.future)

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def done(self) -> bool:
        return self._future.done()
