"""The console's side of the local stack's scenario admin endpoint (docs/scenarios.md): list, apply, reset.

The endpoint and its secret come from the running stack's state file; local mode only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx2

from console.core.endpoints import stack_state
from console.core.settings import Settings
from mcp_server.errors import UserError
from mcp_server.stack_state import StackState

TIMEOUT = 60.0  # rebuilding the index takes a moment; nothing here waits on a person


@dataclass(frozen=True)
class ScenarioInfo:
    name: str
    title: str
    check: str
    where: str


@dataclass(frozen=True)
class ScenarioStatus:
    active: str | None
    scenarios: tuple[ScenarioInfo, ...]
    reset: str | None = None  # what `reset` undid


class ScenarioClient:
    def __init__(self, state: StackState) -> None:
        if not state.admin_url or state.admin_secret is None:
            raise UserError(
                "The running local stack has no scenario admin endpoint.",
                hint="Restart it with this version (`obo-console server`).",
            )
        self.url = state.admin_url.rstrip("/")
        self._secret = state.admin_secret

    @classmethod
    def from_settings(cls, settings: Settings) -> ScenarioClient:
        if settings.mode != "local":
            raise UserError(
                "Scenarios switch the local stack: they work in local mode only.",
                hint="Run without --mode azure (or OBO_CONSOLE_MODE=local).",
                exit_code=2,
            )
        return cls(stack_state(settings)[1])

    def status(self) -> ScenarioStatus:
        return self._call("GET", "/scenarios")

    def apply(self, name: str) -> ScenarioStatus:
        return self._call("POST", "/scenarios/apply", {"name": name})

    def reset(self) -> ScenarioStatus:
        return self._call("POST", "/scenarios/reset", {})

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> ScenarioStatus:
        headers = {"Authorization": f"Bearer {self._secret.get_secret_value()}"}
        try:
            response = httpx2.request(
                method, self.url + path, json=body, headers=headers, timeout=TIMEOUT, trust_env=False
            )
        except httpx2.HTTPError as exc:
            raise UserError(
                f"The local stack's admin endpoint at {self.url} is unreachable ({type(exc).__name__}).",
                hint="Is the stack still running? Start it with `obo-console server`.",
            ) from None
        try:
            data = response.json()
        except ValueError:
            data = {}
        if response.status_code != 200:
            message = str(data.get("message") or f"HTTP {response.status_code}")
            raise UserError(message, exit_code=2 if response.status_code == 404 else 1)
        return _status(data)


def _status(data: dict[str, Any]) -> ScenarioStatus:
    scenarios = tuple(
        ScenarioInfo(str(s["name"]), str(s["title"]), str(s["check"]), str(s["where"]))
        for s in data.get("scenarios", [])
    )
    return ScenarioStatus(data.get("active"), scenarios, data.get("reset"))
