"""An injectable clock, so countdowns and timestamps are fixed in snapshot tests.

Code that shows or compares times takes a ``Clock`` instead of calling ``time`` or ``datetime`` itself:
``SystemClock`` in the app, ``FixedClock`` in tests (it only moves when told to).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    def now(self) -> datetime:
        """The current wall-clock time, timezone-aware (UTC)."""
        ...

    def time(self) -> float:
        """The current wall-clock time as epoch seconds (what JWT ``exp``/``iat`` claims use)."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin that never goes backwards (for durations and deadlines)."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def __repr__(self) -> str:
        return "SystemClock()"


class FixedClock:
    """A clock standing still at ``start`` until ``advance()`` or ``set()`` moves it (thread-safe)."""

    DEFAULT_START = datetime(2026, 1, 15, 9, 30, 0, tzinfo=UTC)

    def __init__(self, start: datetime | float | None = None, *, monotonic_start: float = 1000.0) -> None:
        self._lock = threading.Lock()
        self._wall = _as_datetime(start if start is not None else self.DEFAULT_START)
        self._mono = monotonic_start

    def now(self) -> datetime:
        with self._lock:
            return self._wall

    def time(self) -> float:
        with self._lock:
            return self._wall.timestamp()

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def advance(self, seconds: float) -> None:
        """Move both the wall clock and the monotonic clock forward."""
        if seconds < 0:
            raise ValueError("a clock does not go backwards; use set() to place the wall clock")
        with self._lock:
            self._wall += timedelta(seconds=seconds)
            self._mono += seconds

    def set(self, when: datetime | float) -> None:
        """Place the wall clock (the monotonic clock is unaffected, as with a real clock adjustment)."""
        with self._lock:
            self._wall = _as_datetime(when)

    def __repr__(self) -> str:
        return f"FixedClock({self.now().isoformat()})"


def seconds_until(clock: Clock, epoch_seconds: float) -> float:
    """Seconds from now until ``epoch_seconds`` (negative once it has passed) — for expiry countdowns."""
    return epoch_seconds - clock.time()


def format_countdown(seconds: float) -> str:
    """``m:ss`` (or ``h:mm:ss``) for a countdown; ``expired`` once it reaches zero."""
    if seconds <= 0:
        return "expired"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _as_datetime(value: datetime | float) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("FixedClock needs a timezone-aware datetime (e.g. tzinfo=UTC)")
        return value.astimezone(UTC)
    return datetime.fromtimestamp(value, UTC)
