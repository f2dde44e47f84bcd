"""Timing helpers shared by the benchmarks."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def timed(call: Callable[[], object], repeat: int, *, warm_up: bool = False) -> float:
    """The median wall time of ``repeat`` calls, in seconds (after one untimed call if ``warm_up``)."""
    if warm_up:
        call()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)
