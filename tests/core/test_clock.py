"""The injectable clock: fixed in tests, real in the app."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from console.core.clock import Clock, FixedClock, SystemClock, format_countdown, seconds_until


def test_fixed_clock_stands_still_until_advanced() -> None:
    clock = FixedClock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    assert isinstance(clock, Clock)
    assert clock.now() == datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    mono = clock.monotonic()
    assert clock.now() == clock.now() and clock.monotonic() == mono
    clock.advance(90.5)
    assert clock.now() == datetime(2026, 3, 1, 12, 1, 30, 500000, tzinfo=UTC)
    assert clock.monotonic() == mono + 90.5
    assert clock.time() == clock.now().timestamp()


def test_fixed_clock_set_moves_wall_time_only_and_refuses_naive_or_backwards() -> None:
    clock = FixedClock(0.0)
    assert clock.now() == datetime(1970, 1, 1, tzinfo=UTC)
    mono = clock.monotonic()
    clock.set(datetime(2030, 1, 1, tzinfo=UTC))
    assert clock.now().year == 2030 and clock.monotonic() == mono
    with pytest.raises(ValueError, match="timezone-aware"):
        FixedClock(datetime(2030, 1, 1))
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1)


def test_system_clock_follows_real_time() -> None:
    """Each reading lies between two readings of the real clock it stands for, so it is that clock and it moves."""
    clock = SystemClock()
    assert isinstance(clock, Clock)
    for read, real in ((clock.monotonic, time.monotonic), (clock.time, time.time)):
        before = real()
        value = read()
        after = real()
        assert before <= value <= after, f"{read.__name__}: {value} is not between {before} and {after}"
    first = clock.monotonic()
    while time.monotonic() <= first:  # the real clock moves past the first reading (no sleep: its next tick)
        pass
    assert clock.monotonic() > first
    before_now = datetime.now(UTC)
    now = clock.now()
    assert now.tzinfo is UTC and before_now <= now <= datetime.now(UTC)


def test_countdowns_from_the_clock() -> None:
    clock = FixedClock(1_000_000.0)
    expiry = 1_000_000.0 + 3725
    assert seconds_until(clock, expiry) == 3725
    assert format_countdown(seconds_until(clock, expiry)) == "1:02:05"
    clock.advance(3725 - 59)
    assert format_countdown(seconds_until(clock, expiry)) == "0:59"
    clock.advance(59)
    assert format_countdown(seconds_until(clock, expiry)) == "expired"
