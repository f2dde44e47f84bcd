"""Short garbage-collector pauses for a console that runs for hours.

A full (generation 2) collection visits every object the interpreter tracks. Once the console has started, about
300,000 of them are modules, classes, functions and the app's own widgets, alive until exit; on a shared 2-core
machine visiting them takes about 200 ms, a pause that landed in the middle of a turn every few turns (the
300–400 ms outliers of ``benchmarks/bench_console.py``). ``gc.freeze()`` moves every object alive at that moment
out of the collector's sight, so later collections visit only what was made since.

The price: an object frozen here that becomes garbage later (the sign-in screen once it is closed) is never
freed. That is a one-off few hundred kilobytes, which is why freezing happens only at two moments after which
little long-lived is added: when the core has started, and after the first turn (its lazy imports: Markdown, the
MCP client, the agents' run machinery).

After each collection between turns the C allocator is asked to give back the free memory it holds (glibc's
``malloc_trim``; elsewhere nothing happens). A turn's objects are freed, but the allocator keeps the pages they
used, scattered among live ones, and the console's resident memory crept up turn after turn with no more live
objects (``benchmarks/bench_console_soak.py``).
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable


class HeapSettler:
    """Freezes the long-lived heap at the two moments above; off unless ``enabled`` (a test process that runs many
    apps must not keep each one's objects alive for good)."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self.frozen_at: list[str] = []  # which moments have frozen the heap, in order
        self.released = 0  # how many times free memory went back to the system (between turns)

    def core_started(self) -> None:
        """Freeze without collecting first: start-up leaves little garbage, and a full collection here would
        hold the interpreter (the sign-in screen's first frames) for ~200 ms."""
        self._freeze("core started", collect=False)

    def between_turns(self) -> None:
        """A full collection now, while nothing runs, so that the collector's own comes later, not mid-turn. After
        the first turn it also freezes what survives (only what is not frozen yet is visited)."""
        if not self.enabled:
            return
        if "first turn" in self.frozen_at:
            gc.collect()
        else:
            self._freeze("first turn", collect=True)
        if release_free_memory():
            self.released += 1

    def _freeze(self, moment: str, *, collect: bool) -> None:
        if not self.enabled or moment in self.frozen_at:
            return
        if collect:
            gc.collect()
        gc.freeze()
        self.frozen_at.append(moment)


_trim: Callable[[int], int] | None = None
_looked_up = False


def release_free_memory() -> bool:
    """Give the C heap's free pages back to the system; True if the allocator could be asked (glibc)."""
    global _trim, _looked_up
    if not _looked_up:
        _looked_up = True
        _trim = _malloc_trim()
    if _trim is None:
        return False
    _trim(0)
    return True


def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    import ctypes  # deferred: only once a turn has ended, not at start-up

    try:
        trim: Callable[[int], int] = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return None
    return trim
