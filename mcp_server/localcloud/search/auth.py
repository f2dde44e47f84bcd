"""Checking the end-user token of ``x-ms-query-source-authorization``, as Azure AI Search does.

The token must be an Entra access token for Azure AI Search: RS256-signed by a key of the identity platform's JWKS
(by ``kid``), unexpired, from an accepted issuer, with audience ``https://search.azure.com``. Any failure is an
error for the request — never a query run with less trimming.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any, Protocol

import jwt
import requests

from mcp_server.verified_tokens import VerifiedTokens, token_digest

from .errors import SearchError

SEARCH_AUDIENCE = "https://search.azure.com"
SEARCH_APP_ID = "880da380-985e-4198-81b9-e05b1cc53158"
SEARCH_SCOPE = "user_impersonation"  # the one delegated scope Azure AI Search exposes
JWKS_REFRESH_SECONDS = 300.0


class TokenValidator(Protocol):
    """What the service needs of a validator: the verified claims (with ``oid`` and ``tid``) or an exception."""

    def validate(self, token: str) -> dict[str, Any]: ...


class TokenRejected(SearchError):
    def __init__(self, message: str) -> None:
        super().__init__(401, message)


def require_user(claims: dict[str, Any]) -> None:
    """Refuse a token that carries no signed-in user: the query runs as the user, never as an application.

    A delegated (user) token for Azure AI Search has a ``scp`` holding ``user_impersonation``; an app-only token
    (client credentials) has none, is marked ``idtyp: app`` when that optional claim is issued, and names the
    service principal in both ``oid`` and ``sub`` (a user's ``sub`` is pairwise, never its ``oid``).
    """
    scopes = claims.get("scp")
    if (
        claims.get("idtyp") == "app"
        or not isinstance(scopes, str)
        or ("sub" in claims and claims.get("sub") == claims.get("oid"))
    ):
        raise TokenRejected(
            "The query source authorization token carries no user: it is an application (app-only) token. "
            "Send the signed-in user's delegated token for https://search.azure.com (for example from the "
            "on-behalf-of flow)."
        )
    if SEARCH_SCOPE not in scopes.split():
        raise TokenRejected(
            f"The query source authorization token does not grant the '{SEARCH_SCOPE}' scope of Azure AI "
            "Search; request https://search.azure.com/.default for the user."
        )


def strip_bearer(value: str) -> str:
    value = value.strip()
    if value[:7].lower() == "bearer ":
        return value[7:].strip()
    return value


def _segment(value: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))


def unverified_audience(token: str) -> str | list[str] | None:
    """The ``aud`` claim as sent, for the service's record of what it received (not trusted).

    Decoded directly (header and payload must be JSON objects): PyJWT's unverified decode checks the token
    character by character, which was most of the cost of a search request."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        header, claims = _segment(parts[0]), _segment(parts[1])
    except (ValueError, binascii.Error):
        return None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        return None
    aud = claims.get("aud")
    return aud if isinstance(aud, str | list) else None


class _UrlJwks:
    """A JWKS fetched over HTTPS trusting an explicit CA only (never the environment's bundle)."""

    def __init__(self, url: str, ca_cert: Path | None) -> None:
        self.url = url
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.verify = str(ca_cert) if ca_cert else True

    def __call__(self) -> dict[str, Any]:
        response = self.session.get(self.url, timeout=10)
        response.raise_for_status()
        return dict(response.json())


class EntraTokenValidator:
    """Validates Entra access tokens for Azure AI Search against a JWKS.

    ``jwks_source``: a callable returning the JWKS dict (in-process identity platform), or an https URL of the
    JWKS (fetched with ``ca_cert`` as the only trust anchor). ``issuers``: the exact accepted ``iss`` values, or a
    predicate on ``iss``. ``audiences``: accepted ``aud`` values.
    """

    def __init__(
        self,
        jwks_source: Callable[[], dict[str, Any]] | str,
        *,
        issuers: Collection[str] | Callable[[str], bool],
        audiences: Collection[str] = (SEARCH_AUDIENCE, SEARCH_APP_ID),
        ca_cert: Path | None = None,
        leeway_seconds: int = 300,
        refresh_seconds: float = JWKS_REFRESH_SECONDS,
    ) -> None:
        self._source = _UrlJwks(jwks_source, ca_cert) if isinstance(jwks_source, str) else jwks_source
        self._is_url = isinstance(jwks_source, str)
        self._issuer_ok: Callable[[str], bool] = (
            issuers if callable(issuers) else frozenset(issuers).__contains__
        )
        self.audiences = tuple(audiences)
        self.leeway = leeway_seconds
        self.refresh_seconds = refresh_seconds
        self._keys: dict[str, Any] = {}
        self._fetched_at = float("-inf")
        self._lock = threading.Lock()
        # A token already verified is not decoded and verified again on every query of the same user; expiry (with
        # leeway) still applies, and entries live a minute at most.
        self._verified: VerifiedTokens[dict[str, Any]] = VerifiedTokens()

    def _load(self) -> None:
        try:
            jwks = self._source()
            keyset = jwt.PyJWKSet.from_dict(jwks)
        except Exception as exc:
            raise SearchError(
                503, "The signing keys of the identity provider could not be retrieved."
            ) from exc
        self._keys = {k.key_id: k for k in keyset.keys if k.key_id}
        self._fetched_at = time.monotonic()

    def _key(self, kid: str) -> Any:
        with self._lock:
            # In-process sources are cheap: always re-read. URLs: at most once per refresh interval.
            stale = (
                not self._is_url
                or time.monotonic() - self._fetched_at >= self.refresh_seconds
                or not self._keys
            )
            if kid not in self._keys and stale:
                self._load()
            key = self._keys.get(kid)
        if key is None:
            raise TokenRejected(
                "The JWT token's signing key (kid) is not one of the identity provider's keys."
            )
        return key

    def validate(self, token: str) -> dict[str, Any]:
        """The verified claims; raises :class:`TokenRejected` (401) for any invalid token."""
        digest = token_digest(token)
        now = time.time()
        cached = self._verified.get(digest, now)
        if cached is not None:
            return dict(cached)
        claims = self._verify(token)
        exp = claims.get("exp")
        if isinstance(exp, int | float):
            self._verified.put(digest, claims, float(exp) + self.leeway, now)
        return dict(claims)

    def _verify(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenRejected("The query source authorization token is not a valid JWT token.") from None
        if header.get("alg") != "RS256":
            raise TokenRejected("The JWT token must be signed with RS256.")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise TokenRejected("The JWT token has no key id (kid) in its header.")
        key = self._key(kid)
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                audience=list(self.audiences),
                leeway=self.leeway,
                options={"require": ["exp", "aud", "iss"]},
            )
        except jwt.InvalidAudienceError:
            raise TokenRejected("Audience claim is invalid in the JWT token.") from None
        except jwt.ExpiredSignatureError:
            raise TokenRejected("The JWT token is expired.") from None
        except jwt.ImmatureSignatureError:
            raise TokenRejected("The JWT token is not yet valid (nbf).") from None
        except jwt.InvalidSignatureError:
            raise TokenRejected("Signature validation failed for the JWT token.") from None
        except jwt.MissingRequiredClaimError as exc:
            raise TokenRejected(f"The JWT token has no '{exc.claim}' claim.") from None
        except jwt.PyJWTError:
            raise TokenRejected("The query source authorization token is not a valid JWT token.") from None
        iss = claims.get("iss")
        if not isinstance(iss, str) or not self._issuer_ok(iss):
            raise TokenRejected("Issuer claim is invalid in the JWT token.")
        for claim in ("oid", "tid"):
            if not isinstance(claims.get(claim), str) or not claims[claim]:
                raise TokenRejected(f"The JWT token has no '{claim}' claim.")
        return claims
