"""The thread that keeps watching the MCP server once the link accepted it: ``/healthz`` every ``poll_interval``;
READY and DEGRADED are reported as they change; when the server stops answering the link says so and reconnects
with capped exponential backoff until it answers again or the link closes."""

from __future__ import annotations

import threading
from typing import Protocol

from console.core.clock import Clock
from console.core.link_state import LinkState, LinkStatus, LinkTimings
from console.core.server_checks import Health, short_error
from mcp_server.errors import UserError


class Report(Protocol):
    """How the watcher tells the link what it saw (the link publishes it)."""

    def __call__(
        self,
        state: LinkState,
        *,
        detail: str = "",
        attempt: int = 0,
        next_retry_in: float | None = None,
        retry_at: float | None = None,
        notify_level: str | None = None,
    ) -> None: ...


class Watched(Protocol):
    """What the watcher needs from the link."""

    @property
    def status(self) -> LinkStatus: ...

    def probe(self) -> Health | None:
        """The accepted server's health (None while no server is accepted)."""
        ...

    def exit_detail(self) -> str | None:
        """Why the server is gone when the console launched it and it exited, else None."""
        ...

    def try_reconnect(self) -> Health:
        """One reconnection attempt; UserError says why it was refused."""
        ...


class HealthWatcher:
    """Polls on its own daemon thread until ``stop`` is set."""

    def __init__(
        self, link: Watched, report: Report, *, timings: LinkTimings, clock: Clock, stop: threading.Event
    ) -> None:
        self._link = link
        self._report = report
        self._timings = timings
        self._clock = clock
        self._stop = stop
        self._thread = threading.Thread(target=self._watch, name="server-link-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _watch(self) -> None:
        while not self._stop.wait(self._timings.poll_interval):
            health = self._link.probe()
            if health is None or self._stop.is_set():
                continue
            if health.answers:
                self._follow(health)
                continue
            detail = self._link.exit_detail() or health.detail
            self._report(LinkState.DOWN, detail=detail, notify_level="warning")
            self._reconnect()

    def _follow(self, health: Health) -> None:
        """READY ↔ DEGRADED (and which parts are not ready) as they change; nothing while they stay the same."""
        current = self._link.status
        if health.state is current.state and (
            health.state is LinkState.READY or health.detail == current.detail
        ):
            return
        degraded = health.state is LinkState.DEGRADED
        self._report(
            health.state,
            detail=health.detail if degraded else "",
            notify_level="warning" if degraded else "info",
        )

    def _reconnect(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            attempt += 1
            delay = min(self._timings.backoff_max, self._timings.backoff_base * 2 ** (attempt - 1))
            self._report(
                LinkState.RECONNECTING,
                attempt=attempt,
                next_retry_in=delay,
                retry_at=self._clock.time() + delay,
                detail=self._link.status.detail,
            )
            if self._stop.wait(delay):
                return
            try:
                health = self._link.try_reconnect()
            except UserError as exc:
                self._report(LinkState.RECONNECTING, attempt=attempt, detail=exc.message)
                continue
            except Exception as exc:  # keep watching whatever goes wrong; the UI shows the detail
                self._report(LinkState.RECONNECTING, attempt=attempt, detail=short_error(exc))
                continue
            if health.state is LinkState.READY:
                self._report(
                    LinkState.READY, detail=f"reconnected after {attempt} attempt(s)", notify_level="info"
                )
                return
            if health.state is LinkState.DEGRADED:
                self._report(LinkState.DEGRADED, detail=health.detail, notify_level="warning")
                return
