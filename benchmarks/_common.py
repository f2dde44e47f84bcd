"""Timing helpers and the local stack shared by the benchmarks."""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from mcp_server.stack import LocalStack, StackPorts


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


@contextmanager
def temporary_stack() -> Iterator[LocalStack]:
    """The local stack (no calculator) started on free ports in a temporary home; stopped and removed after."""
    with tempfile.TemporaryDirectory() as home:
        stack = LocalStack(
            home=Path(home),
            ports=StackPorts(identity=0, search=0, mcp=0, calculator=None),
            state_file=Path(home) / "local-stack.json",
        )
        stack.start()
        try:
            yield stack
        finally:
            stack.stop()
