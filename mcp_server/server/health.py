"""Readiness for ``/healthz``: every part probed at once, each with a short deadline, so the answer comes within
about ``PROBE_TIMEOUT`` whatever is down — a black-holed dependency makes its part "not ready", never the probe
slow. Each part says how long ago it was last ready, and the answer says how old it is (a "ready" answer is reused
for ``HEALTH_TTL`` so probes never hammer the dependencies; concurrent callers share one probe round).

Blocking probes run on threads of their own (one per part), never on the shared worker-thread pool that tool
calls may have filled with requests stuck on the same dependency.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

HEALTH_TTL = 2.0  # seconds a readiness answer is reused
PROBE_TIMEOUT = 0.5  # seconds one part's probe may take before the part is reported not ready

Probe = Callable[[], Awaitable[dict[str, Any]]]


class Health:
    """Probes parts by name; ``report()`` gives ``(ready, body)`` for ``/healthz``."""

    def __init__(
        self, probes: dict[str, Probe], *, ttl: float = HEALTH_TTL, timeout: float = PROBE_TIMEOUT
    ) -> None:
        self.probes = probes
        self.ttl = ttl
        self.timeout = timeout
        self._lock: anyio.Lock | None = None  # made on the serving loop, on first use
        self._checked: tuple[float, dict[str, dict[str, Any]]] | None = None
        self._last_ready: dict[str, float] = {}

    async def report(self) -> tuple[bool, dict[str, Any]]:
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            checked = self._checked
            if checked is None or self._stale(checked):
                parts = await self._probe_all()
                checked = self._checked = (time.monotonic(), parts)  # the time the answer was complete
            checked_at, parts = checked
        now = time.monotonic()
        shown = {name: {**part, "last_ready_age_s": self._age(name, now)} for name, part in parts.items()}
        ready = all(part["ready"] for part in parts.values())
        # Degraded: serving, but a part says it runs on a fallback (the shared OBO cache is away).
        degraded = ready and any(part.get("degraded") for part in parts.values())
        body = {
            "status": "degraded" if degraded else "ready" if ready else "unavailable",
            "checked_age_s": round(now - checked_at, 3),
            "parts": shown,
        }
        return ready, body

    def _stale(self, checked: tuple[float, dict[str, dict[str, Any]]]) -> bool:
        """A "ready" answer is reused for ``ttl``; a "not ready" one only for ``timeout``, so recovery shows soon."""
        checked_at, parts = checked
        ready = all(part["ready"] for part in parts.values())
        return time.monotonic() - checked_at >= (self.ttl if ready else min(self.ttl, self.timeout))

    def _age(self, name: str, now: float) -> float | None:
        last = self._last_ready.get(name)
        return None if last is None else round(now - last, 3)

    async def _probe_all(self) -> dict[str, dict[str, Any]]:
        results: dict[str, dict[str, Any]] = {}

        async def probe(name: str, check: Probe) -> None:
            with anyio.move_on_after(self.timeout):
                results[name] = await check()
            result = results.setdefault(
                name,
                {"ready": False, "error": f"no answer within {self.timeout:g} s (unreachable or stalled)"},
            )
            if result["ready"]:
                self._last_ready[name] = time.monotonic()

        async with anyio.create_task_group() as group:
            for name, check in self.probes.items():
                group.start_soon(probe, name, check)
        return {name: results[name] for name in self.probes}


def on_own_thread(func: Callable[[], Any]) -> Callable[[], Awaitable[Any]]:
    """``func`` on a thread of its own (one at a time): abandoned, not awaited, when its probe's deadline passes."""
    limiters: list[anyio.CapacityLimiter] = []  # made on the serving loop, on first use

    async def run() -> Any:
        if not limiters:
            limiters.append(anyio.CapacityLimiter(1))
        return await anyio.to_thread.run_sync(func, limiter=limiters[0], abandon_on_cancel=True)

    return run
