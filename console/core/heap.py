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
"""

from __future__ import annotations

import gc


class HeapSettler:
    """Freezes the long-lived heap at the two moments above; off unless ``enabled`` (a test process that runs many
    apps must not keep each one's objects alive for good)."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self.frozen_at: list[str] = []  # which moments have frozen the heap, in order

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

    def _freeze(self, moment: str, *, collect: bool) -> None:
        if not self.enabled or moment in self.frozen_at:
            return
        if collect:
            gc.collect()
        gc.freeze()
        self.frozen_at.append(moment)
