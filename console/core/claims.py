"""Decoded token claims and what each standard claim means, in plain language.

Decoding does NOT verify the signature: this is for showing a person what their token says (the MCP server is
what verifies tokens). Nothing here returns or prints the raw token: callers get the claims (and the header's
``alg``/``kid``/``typ``), never the encoded string.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt
from pydantic import SecretStr

# One line per standard claim of Entra ID (v1/v2 access and id tokens) and OIDC.
CLAIM_MEANINGS: dict[str, str] = {
    "aud": "Audience: the API this token is for; that API must reject tokens meant for anyone else.",
    "iss": "Issuer: the identity platform and tenant that issued and signed the token.",
    "iat": "Issued at: when the token was issued.",
    "nbf": "Not before: the token is not valid before this time.",
    "exp": "Expires: the token is not valid after this time.",
    "sub": "Subject: the user, pairwise per application (the same person has a different sub in other apps).",
    "oid": "Object id: the user's immutable id in the tenant, the same in every application (used for access checks).",
    "tid": "Tenant id: the directory the user signed in to.",
    "azp": "Authorized party: the client application that requested the token (v2 tokens).",
    "azpacr": "How the client application authenticated: 0 public client, 1 client secret, 2 certificate.",
    "appid": "Application id: the client application that requested the token (v1 tokens).",
    "appidacr": "How the client application authenticated (v1): 0 public client, 1 secret, 2 certificate.",
    "scp": "Scopes: the delegated permissions the user granted to the client for this API.",
    "roles": "App roles assigned to the user or application for this API.",
    "ver": "Token version: 1.0 or 2.0 (decides the issuer and audience format).",
    "name": "Display name of the user (for display only, not for access decisions).",
    "preferred_username": "The user's sign-in name (UPN or email); mutable, for display only.",
    "upn": "User principal name: the user's sign-in name (mutable; do not use for access decisions).",
    "unique_name": "A human-readable name of the user (v1 tokens; mutable).",
    "email": "The user's email address, if the user has one.",
    "given_name": "The user's first name.",
    "family_name": "The user's last name.",
    "groups": "Object ids of the groups the user belongs to (used for access checks, e.g. search trimming).",
    "hasgroups": "The user is in too many groups to list; ask Microsoft Graph for them.",
    "_claim_names": "Groups overage: the groups are too many for the token and must be fetched separately.",
    "_claim_sources": "Where Entra says the claims that did not fit are (an Azure AD Graph URL); the MCP server "
    "never fetches it and asks Microsoft Graph itself.",
    "wids": "Tenant-wide admin roles (role template ids) held by the user.",
    "uti": "Token id: a unique identifier of this token (helps trace it in sign-in logs).",
    "rh": "Internal refresh value the identity platform uses to revalidate the token (opaque).",
    "aio": "Internal value the identity platform uses (opaque).",
    "idp": "Identity provider that authenticated the user, when not the tenant itself.",
    "amr": "Authentication methods used (e.g. pwd, mfa).",
    "acr": "Authentication context class reference (v1): 0 means the user did not meet ISO/IEC 29115.",
    "acrs": "Authentication context ids (Conditional Access) the user satisfied.",
    "auth_time": "When the user last authenticated.",
    "sid": "Session id: identifies the user's sign-in session.",
    "nonce": "Value the client sent to bind the id token to its request (replay protection).",
    "at_hash": "Hash of the access token issued with this id token (binds the two).",
    "c_hash": "Hash of the authorization code issued with this id token.",
    "ipaddr": "IP address the user authenticated from.",
    "onprem_sid": "The user's security identifier in on-premises Active Directory.",
    "login_hint": "A reusable hint to sign in as this user again without choosing the account.",
    "ctry": "The user's country or region.",
    "tenant_ctry": "The tenant's country or region.",
    "xms_cc": "Client capabilities the client declared (e.g. cp1: it handles claims challenges).",
    "xms_ftd": "Internal routing value (opaque).",
    "xms_idrel": "Internal value describing how the user relates to the tenant (opaque).",
    "jti": "JWT id: a unique identifier of this token.",
    "typ": "Token type.",
}

TIME_CLAIMS = frozenset({"iat", "nbf", "exp", "auth_time"})


class ClaimsError(ValueError):
    """The value is not a decodable JWT."""


@dataclass(frozen=True)
class ClaimLine:
    name: str
    value: Any
    display: str  # the value as a person reads it (times as UTC dates)
    meaning: str  # one line; "" for a claim we do not know


def _raw(token: str | SecretStr) -> str:
    raw = (token.get_secret_value() if isinstance(token, SecretStr) else token).strip()
    if raw.count(".") != 2:  # PyJWT would read a fourth part into the payload's base64
        raise ClaimsError("not a JWT (expected three dot-separated parts)")
    return raw


def decode_claims(token: str | SecretStr) -> dict[str, Any]:
    """The payload's claims, decoded WITHOUT signature verification: for display only, never to decide access
    (the MCP server is what verifies tokens)."""
    try:
        claims: dict[str, Any] = jwt.decode(_raw(token), options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise ClaimsError(f"the token's payload cannot be read ({exc})") from exc
    return claims


def decode_header(token: str | SecretStr) -> dict[str, Any]:
    """The JOSE header's public fields (alg, kid, typ, x5t), unverified: for display only."""
    try:
        header = jwt.get_unverified_header(_raw(token))
    except jwt.PyJWTError as exc:
        raise ClaimsError(f"the token's header cannot be read ({exc})") from exc
    return {k: header[k] for k in ("alg", "kid", "typ", "x5t") if k in header}


def unverified_expiry(token: str | SecretStr) -> float | None:
    """The ``exp`` claim as a timestamp, unverified (to refresh a token before it lapses); None if absent."""
    try:
        return float(decode_claims(token)["exp"])
    except (ClaimsError, KeyError, TypeError, ValueError):
        return None


def claim_meaning(name: str) -> str:
    if name in CLAIM_MEANINGS:
        return CLAIM_MEANINGS[name]
    if name.startswith("xms_"):
        return "Microsoft extension claim (optional claim configured on the app registration)."
    return ""


def format_timestamp(value: Any) -> str:
    try:
        return datetime.fromtimestamp(int(value), tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (TypeError, ValueError, OverflowError, OSError):
        return str(value)


def display_value(name: str, value: Any) -> str:
    if name in TIME_CLAIMS:
        return f"{value} ({format_timestamp(value)})"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) if value else "(none)"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


def explain_claims(claims: dict[str, Any]) -> list[ClaimLine]:
    """Each claim with its display value and one-line meaning, in the token's order."""
    return [
        ClaimLine(name, value, display_value(name, value), claim_meaning(name))
        for name, value in claims.items()
    ]


def format_duration(seconds: float) -> str:
    seconds = int(abs(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def seconds_left(claims: dict[str, Any], now: float | None = None) -> int | None:
    if "exp" not in claims:
        return None
    try:
        return int(claims["exp"]) - int(time.time() if now is None else now)
    except (TypeError, ValueError):
        return None


def expiry_countdown(claims: dict[str, Any], now: float | None = None) -> str:
    """'expires in 1h 12m 03s' / 'expired 3m 10s ago' / 'no expiry claim'."""
    left = seconds_left(claims, now)
    if left is None:
        return "no expiry claim"
    return f"expires in {format_duration(left)}" if left > 0 else f"expired {format_duration(left)} ago"
