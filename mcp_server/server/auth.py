"""Strict validation of the caller's Entra access token (FastMCP's JWTVerifier, tightened) and the RFC 9728
resource-server wiring: 401 with ``resource_metadata`` for a missing or invalid token, 403 ``insufficient_scope``
for a valid token without the API's scope."""

from __future__ import annotations

import ssl
import time
from typing import Any

import httpx2
import jwt as pyjwt
from fastmcp.server.auth import AccessToken, RemoteAuthProvider
from fastmcp.server.auth.providers.jwt import JWTVerifier
from pydantic import AnyHttpUrl
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mcp_server.server.config import ServerConfig
from mcp_server.server.metrics import ServerMetrics

ALGORITHM = "RS256"


class ValidatedToken(AccessToken):
    """An access token that passed every check, with how long checking it took (for the tool's ``_meta``)."""

    validation_ms: float = 0.0


def authority_http_client(config: ServerConfig) -> httpx2.AsyncClient:
    """The client for JWKS: trusts exactly the configured CA when one is set (local stack), never env variables."""
    if config.ca_cert is not None:
        ctx = ssl.create_default_context(cafile=str(config.ca_cert))
        return httpx2.AsyncClient(verify=ctx, trust_env=False, timeout=httpx2.Timeout(10.0))
    return httpx2.AsyncClient(timeout=httpx2.Timeout(10.0))


class EntraTokenVerifier(JWTVerifier):
    """JWTVerifier (signature via JWKS, RS256 only, exact issuer, audience, exp/nbf) plus what Entra APIs need:
    a tenant allowlist, v1/v2 issuer–audience pairing, and refusal of app-only tokens. Scope is NOT checked here,
    so a valid token without ``execute`` reaches the route's scope check and gets 403 rather than 401."""

    def __init__(self, config: ServerConfig, metrics: ServerMetrics, http_client: httpx2.AsyncClient) -> None:
        issuers = [config.issuer]
        audiences = [config.api_client_id]
        if config.accept_v1_tokens:
            issuers.append(config.v1_issuer)
            audiences.append(config.api_identifier)
        super().__init__(
            jwks_uri=config.jwks_uri,
            issuer=issuers,
            audience=audiences,
            algorithm=ALGORITHM,
            required_scopes=None,
            http_client=http_client,
            jwks_refresh_interval=config.jwks_refresh_interval,
        )
        self._cache_ttl = config.jwks_cache_ttl  # JWTVerifier's JWKS cache lifetime (1 h by default)
        self.config = config
        self.metrics = metrics

    async def load_access_token(self, token: str) -> AccessToken | None:
        started = time.perf_counter()
        result = await super().load_access_token(token)
        if result is None:
            self._fail(self._why_invalid(token))
            return None
        reason = self._policy_violation(result.claims)
        if reason is not None:
            self._fail(reason)
            return None
        return ValidatedToken(
            **result.model_dump(), validation_ms=(time.perf_counter() - started) * 1000
        )

    def _fail(self, reason: str) -> None:
        self.metrics.auth_failures.labels(reason=reason).inc()

    def _policy_violation(self, claims: dict[str, Any]) -> str | None:
        if claims.get("tid") not in self.config.tenants:
            return "tenant_not_allowed"
        if claims.get("idtyp") == "app" or not claims.get("scp"):
            return "app_only_token"
        if not claims.get("oid"):
            return "no_oid"
        version = claims.get("ver")
        iss, aud = claims.get("iss"), claims.get("aud")
        if version == "2.0":
            ok = iss == self.config.issuer and aud == self.config.api_client_id
        elif version == "1.0" and self.config.accept_v1_tokens:
            ok = iss == self.config.v1_issuer and aud == self.config.api_identifier
        else:
            ok = False
        return None if ok else "wrong_token_version"

    def _why_invalid(self, token: str) -> str:
        """A label for the metrics; the checks themselves were done by JWTVerifier with the signature verified."""
        try:
            header = pyjwt.get_unverified_header(token)
            claims = pyjwt.decode(token, options={"verify_signature": False})
        except pyjwt.PyJWTError:
            return "malformed"
        now = time.time()
        if header.get("alg") != ALGORITHM:
            return "wrong_algorithm"
        if isinstance(claims.get("exp"), int | float) and claims["exp"] < now:
            return "expired"
        if isinstance(claims.get("nbf"), int | float) and claims["nbf"] > now + 30:
            return "not_yet_valid"
        if claims.get("iss") not in (self.issuer if isinstance(self.issuer, list) else [self.issuer]):
            return "wrong_issuer"
        audiences = self.audience if isinstance(self.audience, list) else [self.audience]
        aud = claims.get("aud")
        if not any(a in (aud if isinstance(aud, list) else [aud]) for a in audiences):
            return "wrong_audience"
        if header.get("kid") not in self._jwks_cache:
            return "unknown_key"
        return "bad_signature"


def build_auth_provider(
    config: ServerConfig, metrics: ServerMetrics, base_url: str, http_client: httpx2.AsyncClient
) -> RemoteAuthProvider:
    verifier = EntraTokenVerifier(config, metrics, http_client)
    return RemoteAuthProvider(
        token_verifier=verifier,
        authorization_servers=[AnyHttpUrl(config.issuer)],
        base_url=base_url,
        scopes_supported=[config.full_scope],
        challenge_scopes=[config.full_scope],
        required_scopes=[config.required_scope],  # checked by the route: 403 insufficient_scope
        resource_name="OBO Console MCP server",
    )


class AuthFailureCounter:
    """Counts refusals the verifier never sees: no bearer token (401) and a missing scope (403)."""

    def __init__(self, app: ASGIApp, metrics: ServerMetrics, mcp_path: str) -> None:
        self.app = app
        self.metrics = metrics
        self.mcp_path = mcp_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path", "").rstrip("/") != self.mcp_path:
            await self.app(scope, receive, send)
            return
        has_bearer = any(
            name.lower() == b"authorization" and value[:7].lower() == b"bearer "
            for name, value in scope.get("headers", [])
        )

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status = message["status"]
                if status == 401 and not has_bearer:
                    self.metrics.auth_failures.labels(reason="missing_token").inc()
                elif status == 403:
                    self.metrics.auth_failures.labels(reason="insufficient_scope").inc()
            await send(message)

        await self.app(scope, receive, send=counting_send)
