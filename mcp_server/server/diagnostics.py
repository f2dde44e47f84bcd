"""``GET /diagnostics/obo``: one on-behalf-of exchange for the caller, reported as claims (docs/server.md).

What ``obo-console doctor`` uses to tell whether the exchange works without calling the tool: authenticated with
the user's token exactly as the tool is (the same validation, the API's scope), it always exchanges afresh (the
cache would hide a broken secret or consent) and answers the non-secret claims of the token it got — never a token.
"""

from __future__ import annotations

from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mcp_server import aadsts
from mcp_server.server.auth import EntraTokenVerifier, ValidatedToken
from mcp_server.server.config import ServerConfig
from mcp_server.server.obo import OboError, OboExchanger

PATH = "/diagnostics/obo"
# Claims worth reporting; everything else (uti, rh, xms_*) is left out. None of these is a credential.
REPORTED_CLAIMS = (
    "aud",
    "iss",
    "iat",
    "nbf",
    "exp",
    "scp",
    "roles",
    "oid",
    "tid",
    "appid",
    "azp",
    "ver",
    "idtyp",
    "name",
    "upn",
    "preferred_username",
    "amr",
    "acrs",
    "groups",
)
_NO_STORE = {"Cache-Control": "no-store"}


def reported(claims: dict[str, Any]) -> dict[str, Any]:
    return {name: claims[name] for name in REPORTED_CLAIMS if name in claims}


class OboDiagnostic:
    """The route's handler: validate the caller like the tool, exchange once, report claims or the AADSTS code."""

    def __init__(
        self, config: ServerConfig, verifier: EntraTokenVerifier, exchanger: OboExchanger, metadata_url: str
    ) -> None:
        self.config = config
        self.verifier = verifier
        self.exchanger = exchanger
        self.metadata_url = metadata_url

    async def handle(self, request: Request) -> Response:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer ") or not header[7:].strip():
            return self._refuse(401, "invalid_token", "Send the user's access token as a Bearer token.")
        token = await self.verifier.load_access_token(header[7:].strip())
        if not isinstance(token, ValidatedToken):
            return self._refuse(
                401, "invalid_token", "The token was refused (signature, issuer, audience or time)."
            )
        if self.config.required_scope not in token.scopes:
            return self._refuse(
                403, "insufficient_scope", f"The token lacks the scope {self.config.full_scope}."
            )
        caller = reported(token.claims)
        try:
            obo = await anyio.to_thread.run_sync(self.exchanger.exchange, token.token)
        except OboError as exc:
            entry = aadsts.lookup(exc.aadsts)
            body: dict[str, Any] = {
                "ok": False,
                "caller": caller,
                "aadsts": exc.aadsts,
                "error": exc.cause,
                "meaning": entry.meaning if entry else None,
                "fix": entry.fix if entry else None,
            }
            return JSONResponse(body, status_code=200, headers=_NO_STORE)
        body = {
            "ok": True,
            "caller": caller,
            "scope": self.config.obo_scope,
            "obo_claims": reported(obo.claims),
        }
        return JSONResponse(body, headers=_NO_STORE)

    def _refuse(self, status: int, error: str, message: str) -> Response:
        challenge = f'Bearer error="{error}", resource_metadata="{self.metadata_url}"'
        return JSONResponse(
            {"error": error, "error_description": message},
            status_code=status,
            headers={"WWW-Authenticate": challenge, **_NO_STORE},
        )
