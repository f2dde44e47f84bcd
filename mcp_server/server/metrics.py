"""Prometheus metrics of one server instance, in its own registry (so several servers in a process never clash).

Under ``obo-console server --workers N`` each worker process writes its samples to ``PROMETHEUS_MULTIPROC_DIR``
(prometheus_client's multiprocess mode, set up by the supervisor) and ``/metrics`` on any worker reports the sum
over all of them."""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class ServerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.tool_calls = Counter(
            "mcp_tool_calls",
            "MCP tool calls by tool and outcome",
            ["tool", "outcome"],
            registry=self.registry,
        )
        self.obo_exchanges = Counter(
            "obo_exchanges",
            "On-behalf-of exchanges sent to the identity platform",
            ["outcome"],
            registry=self.registry,
        )
        self.obo_cache_hits = Counter(
            "obo_cache_hits", "Tool calls served by a cached (or in-flight) OBO token", registry=self.registry
        )
        self.auth_failures = Counter(
            "auth_failures",
            "Requests refused by token validation, by reason",
            ["reason"],
            registry=self.registry,
        )
        self.search_seconds = Histogram(
            "search_seconds",
            "Duration of permission-trimmed searches",
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
        )
        self.obo_cache_degraded = Gauge(
            "obo_cache_degraded",
            "1 while the shared (Redis) OBO cache is unreachable and workers serve from their own caches",
            registry=self.registry,
            # Any live worker degraded: the server is. "live": a dead worker's value leaves with it (the supervisor
            # marks it dead), or a worker that died degraded would say so forever.
            multiprocess_mode="livemax",
        )
        self.obo_cache_redis_errors = Counter(
            "obo_cache_redis_errors", "Failed operations on the Redis OBO cache", registry=self.registry
        )
        self.obo_cache_rejected = Counter(
            "obo_cache_rejected",
            "Redis OBO cache entries rejected (tampered, planted, or sealed with another key)",
            registry=self.registry,
        )

    def _exposed(self) -> CollectorRegistry:
        """This process's registry, or under multiple workers one that sums every worker's samples."""
        directory = os.environ.get(MULTIPROC_ENV)
        if not directory:
            return self.registry
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)
        return registry

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self._exposed()), CONTENT_TYPE_LATEST

    def value(self, name: str, **labels: str) -> float:
        """A sample's current value (0 when never observed), for tests and benchmarks."""
        return self._exposed().get_sample_value(name, labels) or 0.0
