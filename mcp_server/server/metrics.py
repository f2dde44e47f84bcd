"""Prometheus metrics of one server instance, in its own registry (so several servers in a process never clash)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest


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

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def value(self, name: str, **labels: str) -> float:
        """A sample's current value (0 when never observed), for tests and benchmarks."""
        return self.registry.get_sample_value(name, labels) or 0.0
