"""Strict validation of the caller's Entra access token (own checks, FastMCP's JWKS cache) and the RFC 9728
resource-server wiring: 401 with ``resource_metadata`` for a missing or invalid token, 403 ``insufficient_scope``
for a valid token without the API's scope."""

from __future__ import annotations

import math
import ssl
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeGuard

import httpx2
from fastmcp.server.auth import AccessToken, RemoteAuthProvider
from fastmcp.server.auth.providers.jwt import JWTVerifier
from fastmcp.utilities.auth import decode_jwt_header
from joserfc import jwk as joserfc_jwk
from joserfc import jwt as joserfc_jwt
from joserfc.errors import BadSignatureError, JoseError
from joserfc.jws import JWSRegistry
from pydantic import AnyHttpUrl
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mcp_server.server.config import ServerConfig
from mcp_server.server.metrics import ServerMetrics
from mcp_server.verified_tokens import VerifiedTokens, token_digest

ALGORITHM = "RS256"
CLOCK_SKEW = 30.0  # seconds an nbf or iat may lie ahead of this server's clock (FastMCP's tolerance for nbf)


class ValidatedToken(AccessToken):
    """An access token that passed every check, with how long checking it took and whether its signature was
    verified on this request or on an earlier one (for the tool's ``_meta``)."""

    validation_ms: float = 0.0
    signature_cached: bool = False


@dataclass(frozen=True)
class _Signed:
    """What verifying a token's signature established: these claims, signed by the key ``pem`` named ``kid``."""

    kid: str
    pem: str
    claims: dict[str, Any]


def authority_http_client(config: ServerConfig) -> httpx2.AsyncClient:
    """The client for JWKS: trusts exactly the configured CA when one is set (local stack), never env variables."""
    if config.ca_cert is not None:
        ctx = ssl.create_default_context(cafile=str(config.ca_cert))
        return httpx2.AsyncClient(verify=ctx, trust_env=False, timeout=httpx2.Timeout(10.0))
    return httpx2.AsyncClient(timeout=httpx2.Timeout(10.0))


class Refused(Exception):
    """A token failed one check; ``reason`` is its ``auth_failures_total`` label. Never holds the token."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def is_numeric_date(value: object) -> TypeGuard[int | float]:
    """A NumericDate (RFC 7519 §2): a finite JSON number. ``true``, ``"123"``, ``Infinity`` and ``NaN`` are not."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def delegated_scopes(claims: dict[str, Any]) -> list[str]:
    """An Entra token's delegated scopes: ``scp`` alone. Entra access tokens carry no ``scope`` claim, so one that
    does says nothing the API may trust (FastMCP would read it first)."""
    scp = claims.get("scp")
    return scp.split() if isinstance(scp, str) else []


class EntraTokenVerifier(JWTVerifier):
    """Validates an Entra access token step by step; each refusal is counted under its own reason.

    JWTVerifier supplies the JWKS cache and its rate-limited refresh. Its ``load_access_token`` is not used: it
    skips ``exp``/``nbf`` when they are absent, reads ``scope`` before ``scp``, and cannot say why a token
    failed. Checks: RS256 only, a known ``kid``, the signature, ``exp``/``iat``/``nbf`` present and numeric
    (``nbf`` and ``iat`` at most ``CLOCK_SKEW`` seconds ahead), exact issuer and audience, a tenant allowlist, a
    delegated user token (``scp``, ``oid``, not ``idtyp=app``) and the v1/v2 issuer–audience pairing. Scope is
    NOT checked here, so a valid token without ``execute`` reaches the route's scope check and gets 403."""

    def __init__(
        self,
        config: ServerConfig,
        metrics: ServerMetrics,
        http_client: httpx2.AsyncClient,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
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
        # The key set's lifetime (``jwks_cache_ttl``, 1 h by default) counts on ``clock`` (seconds, monotonic):
        # tests move it instead of sleeping. JWTVerifier's own lifetime, on the real clock, is switched off.
        self._cache_ttl = sys.maxsize
        self._clock = clock
        self._jwks_read_at: float | None = None
        self.config = config
        self.metrics = metrics
        self.issuers = tuple(issuers)
        self.audiences = tuple(audiences)
        self._jwks_unreachable = False  # the last JWKS fetch failed: an unknown kid may be a known one
        self._signed: VerifiedTokens[_Signed] = VerifiedTokens()

    async def load_access_token(self, token: str) -> AccessToken | None:
        started = time.perf_counter()
        digest = token_digest(token)
        try:
            signed = await self._reusable(digest)
            cached = signed is not None
            if signed is None:
                signed = _Signed(*await self._verified_claims(token))
            claims = signed.claims
            now = time.time()
            self._check_claims(claims, now)
        except Refused as refused:
            self.metrics.auth_failures.labels(reason=refused.reason).inc()
            return None
        if not cached:  # only a token that passed every check is remembered
            clock = self._clock()
            self._signed.put(digest, signed, clock + (float(claims["exp"]) - now), clock)
        return ValidatedToken(
            token=token,
            client_id=str(claims.get("azp") or claims.get("appid")),
            scopes=delegated_scopes(claims),
            expires_at=int(claims["exp"]),
            subject=claims.get("sub"),
            claims=claims,
            validation_ms=(time.perf_counter() - started) * 1000,
            signature_cached=cached,
        )

    async def _reusable(self, digest: bytes) -> _Signed | None:
        """An earlier verification of this exact token, reused only while the key that verified it is still the one
        the current key set names by its ``kid`` (a rotated-out or re-read key set means a full verification); the
        claim checks run again on every request all the same."""
        signed = self._signed.get(digest, self._clock())
        if signed is None:
            return None
        try:
            return signed if await self._get_jwks_key(signed.kid) == signed.pem else None
        except ValueError:
            return None  # the key left the set: verify in full, which says why

    async def _verified_claims(self, token: str) -> tuple[str, str, dict[str, Any]]:
        """The key id, the key and the payload of a token whose header is acceptable and whose signature verifies
        with a JWKS key."""
        try:
            header = decode_jwt_header(token)  # exactly three segments, else ValueError
        except (ValueError, TypeError, RecursionError):  # RecursionError: JSON nested a thousand deep
            raise Refused("malformed") from None
        if not isinstance(header, dict):
            raise Refused("malformed")
        if header.get("alg") != ALGORITHM:
            raise Refused("wrong_algorithm")
        if (
            "crit" in header
        ):  # Entra never sets it; an extension this server does not know must not be ignored
            raise Refused("unsupported_header")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Refused("no_key_id")  # Entra always names the key; never guess one
        try:
            pem = await self._get_jwks_key(kid)
        except ValueError:
            raise Refused("jwks_unavailable" if self._jwks_unreachable else "unknown_key") from None
        try:
            decoded = joserfc_jwt.decode(
                token,
                joserfc_jwk.import_key(pem, "RSA"),
                algorithms=[ALGORITHM],
                registry=JWSRegistry(algorithms=[ALGORITHM], strict_check_header=False),
            )
        except BadSignatureError:
            raise Refused("bad_signature") from None
        except (JoseError, ValueError, TypeError, RecursionError):
            raise Refused("malformed") from None
        return kid, pem, dict(decoded.claims)

    async def _get_jwks_key(self, kid: str | None) -> str:
        read_at = self._jwks_read_at
        if read_at is not None and self._clock() - read_at >= self.config.jwks_cache_ttl:
            self._jwks_cache = {}  # stale: no key of it is used; the lookup re-reads the set (rate-limited)
            self._jwks_read_at = None
        return await super()._get_jwks_key(kid)

    def forget_keys(self) -> None:
        """Drop the cached key set so the next token reads it again (local scenarios: as if the TTL had passed)."""
        self._jwks_cache = {}
        self._jwks_read_at = None
        self._jwks_last_refresh_attempt = None

    async def _fetch_jwks(self) -> dict[str, Any]:
        try:
            data = await super()._fetch_jwks()
        except Exception:
            self._jwks_unreachable = True
            raise
        self._jwks_unreachable = False
        self._jwks_read_at = self._clock()
        return data

    def _check_claims(self, claims: dict[str, Any], now: float) -> None:
        """The checks after the signature, in order; raises ``Refused`` with the first failure's reason."""
        for name in ("exp", "iat", "nbf"):  # Entra always issues all three
            if name not in claims:
                raise Refused("missing_claims")
            if not is_numeric_date(claims[name]):
                raise Refused("invalid_claims")
        if claims["exp"] <= now:
            raise Refused("expired")
        if claims["nbf"] > now + CLOCK_SKEW or claims["iat"] > now + CLOCK_SKEW:
            raise Refused("not_yet_valid")
        for name in ("iss", "aud", "tid", "oid", "sub", "azp", "appid", "scp", "idtyp", "ver"):
            if name in claims and not isinstance(claims[name], str):
                raise Refused("invalid_claims")
        groups = claims.get("groups", [])
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise Refused("invalid_claims")
        if claims.get("iss") not in self.issuers:
            raise Refused("wrong_issuer")
        if claims.get("aud") not in self.audiences:
            raise Refused("wrong_audience")
        reason = self._policy_violation(claims)
        if reason is not None:
            raise Refused(reason)

    def _policy_violation(self, claims: dict[str, Any]) -> str | None:
        if claims.get("tid") not in self.config.tenants:
            return "tenant_not_allowed"
        if claims.get("idtyp") == "app" or not delegated_scopes(claims):
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


def build_auth_provider(
    config: ServerConfig,
    metrics: ServerMetrics,
    base_url: str,
    http_client: httpx2.AsyncClient,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> RemoteAuthProvider:
    verifier = EntraTokenVerifier(config, metrics, http_client, clock=clock)
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

        await self.app(scope, receive, counting_send)
