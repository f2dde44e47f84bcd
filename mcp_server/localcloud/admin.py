"""The local stack's admin endpoint: list, apply and reset scenarios (docs/scenarios.md), on loopback only.

Every request needs ``Authorization: Bearer <admin_secret>``, the secret the running stack wrote to its state file
(mode 0600): whoever can read that file already holds the stack's secrets; nobody else can switch anything.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

import anyio
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mcp_server.scenarios import SCENARIOS, ScenarioSwitch, ScenarioUnavailable, UnknownScenario

MAX_BODY = 4096
_NO_STORE = {"Cache-Control": "no-store"}


def _error(status: int, error: str, message: str) -> Response:
    headers = dict(_NO_STORE)
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="obo-console local stack admin"'
    return JSONResponse({"error": error, "message": message}, status_code=status, headers=headers)


class AdminApp:
    def __init__(self, switch: ScenarioSwitch, secret: SecretStr) -> None:
        self.switch = switch
        self.secret = secret

    def build(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/scenarios", self.listing, methods=["GET"]),
                Route("/scenarios/apply", self.apply, methods=["POST"]),
                Route("/scenarios/reset", self.reset, methods=["POST"]),
            ]
        )

    def _refusal(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer ") or not header[7:].strip():
            return _error(
                401,
                "unauthorized",
                "The admin endpoint needs the stack's admin secret as a Bearer token (admin_secret in the "
                "local stack state file).",
            )
        given = header[7:].strip().encode()
        if not hmac.compare_digest(given, self.secret.get_secret_value().encode()):
            return _error(
                403, "forbidden", "The admin secret is wrong: use admin_secret from the state file."
            )
        return None

    def _state(self) -> dict[str, Any]:
        return {"active": self.switch.active, "scenarios": [s.as_dict() for s in SCENARIOS.values()]}

    async def listing(self, request: Request) -> Response:
        refused = self._refusal(request)
        return refused or JSONResponse(self._state(), headers=_NO_STORE)

    async def apply(self, request: Request) -> Response:
        refused = self._refusal(request)
        if refused is not None:
            return refused
        body = await request.body()
        if len(body) > MAX_BODY:
            return _error(413, "too_large", f"The request body is over {MAX_BODY} bytes.")
        try:
            name = json.loads(body or b"null").get("name")
        except (ValueError, AttributeError):
            name = None
        if not isinstance(name, str) or not name:
            return _error(400, "bad_request", 'Send JSON {"name": "<scenario>"}.')
        try:
            # Blocking work (rebuilding an index, stopping a service): off this loop.
            await anyio.to_thread.run_sync(self.switch.apply, name)
        except UnknownScenario as exc:
            return _error(404, "unknown_scenario", str(exc))
        except ScenarioUnavailable as exc:
            return _error(409, "unavailable", str(exc))
        return JSONResponse(self._state(), headers=_NO_STORE)

    async def reset(self, request: Request) -> Response:
        refused = self._refusal(request)
        if refused is not None:
            return refused
        was = await anyio.to_thread.run_sync(self.switch.reset)
        return JSONResponse({**self._state(), "reset": was}, headers=_NO_STORE)
