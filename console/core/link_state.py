"""Where the console's link to its MCP server stands: the one vocabulary of server states the core emits, the
status line shows and events carry, and how patient the link is. Light to import (standard library only)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class LinkState(StrEnum):
    """The server's state as the console sees it."""

    CONNECTING = "connecting"  # looking for the server, launching it, or checking it
    READY = "ready"  # /healthz answers 200: every part of the server is ready
    DEGRADED = "degraded"  # it answers, but names parts that are not ready; turns are still allowed
    DOWN = "down"  # not answering
    RECONNECTING = "reconnecting"  # retrying with backoff
    STOPPED = "stopped"  # the link was closed

    @property
    def accepts_turns(self) -> bool:
        """Whether a turn may go to the server now (a degraded server still answers: e.g. from cached tokens)."""
        return self in (LinkState.READY, LinkState.DEGRADED)


@dataclass(frozen=True)
class LinkStatus:
    """Where the link stands. ``retry_at`` is epoch seconds (a UI counts down to it with its clock)."""

    state: LinkState
    url: str | None = None
    attempt: int = 0
    next_retry_in: float | None = None
    retry_at: float | None = None
    launched: bool = False
    detail: str = ""

    @property
    def ready(self) -> bool:
        return self.state is LinkState.READY

    @property
    def accepts_turns(self) -> bool:
        return self.state.accepts_turns

    def describe(self) -> str:
        where = self.url or "the MCP server"
        match self.state:
            case LinkState.CONNECTING:
                return f"connecting to {where}" + (f" ({self.detail})" if self.detail else "")
            case LinkState.READY:
                return f"connected to {where}" + (" (started by the console)" if self.launched else "")
            case LinkState.DEGRADED:
                return f"connected to {where}, but " + (self.detail or "some of its parts are not ready")
            case LinkState.DOWN:
                return f"{where} is not answering" + (f": {self.detail}" if self.detail else "")
            case LinkState.RECONNECTING:
                wait = f" in {self.next_retry_in:.1f} s" if self.next_retry_in is not None else ""
                return f"reconnecting to {where} (attempt {self.attempt}{wait})"
            case LinkState.STOPPED:
                return "disconnected" + (f": {self.detail}" if self.detail else "")
        return self.state.value


@dataclass(frozen=True)
class LogLine:
    """One line the launched server printed (or the console wrote about it: stream "console")."""

    ts: float
    stream: str  # stdout | stderr | console
    text: str


@dataclass
class LinkTimings:
    """How patient the link is. Tests shorten these."""

    startup_timeout: float = 60.0  # launch → state file + /healthz
    poll_interval: float = 1.0  # /healthz while ready
    probe_timeout: float = 2.0
    backoff_base: float = 0.5
    backoff_max: float = 10.0
    stop_grace: float = 10.0  # SIGTERM → SIGKILL
