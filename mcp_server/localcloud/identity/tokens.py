"""Tokens shaped as Entra ID issues them (docs/identity.md, Tokens): v2 for APIs that ask for v2, v1 otherwise
(Azure AI Search), id tokens and ``client_info`` for MSAL's accounts. RS256, signed by the current key."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mcp_server.localcloud.identity.scopes import Target
from mcp_server.localcloud.signing_keys import SigningKey, SigningKeyStore
from mcp_server.localcloud.tenant import GROUPS_OVERAGE_LIMIT, AppRegistration, Tenant, User

USER_TOKEN_LIFETIME = (3600, 5400)  # Entra: random between 60 and 90 minutes
APP_TOKEN_LIFETIME = 3599
ID_TOKEN_LIFETIME = 3600


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def v1_issuer(tenant_id: str) -> str:
    """What Entra puts in ``iss`` of v1 tokens (the search token); validate it exactly."""
    return f"https://sts.windows.net/{tenant_id}/"


def overage_endpoint(tenant_id: str, oid: str) -> str:
    """Where Entra's overage claim says the groups are (an Azure AD Graph URL). Only a hint: APIs call Microsoft
    Graph themselves and never fetch a URL a token names."""
    return f"https://graph.windows.net/{tenant_id}/users/{oid}/getMemberObjects"


def group_claims(tenant: Tenant, user: User, app: AppRegistration, tenant_id: str) -> dict[str, Any]:
    """``groups`` as Entra emits it for ``app``: nothing unless ``groupMembershipClaims`` is set, the overage
    claims (``_claim_names``/``_claim_sources``) above 200 groups."""
    groups = tenant.claim_groups(user, app)
    if groups is None:
        return {}
    if len(groups) > GROUPS_OVERAGE_LIMIT:
        return {
            "_claim_names": {"groups": "src1"},
            "_claim_sources": {"src1": {"endpoint": overage_endpoint(tenant_id, user.oid)}},
        }
    return {"groups": groups}


@dataclass(frozen=True)
class Minted:
    token: str
    claims: dict[str, Any]

    @property
    def expires_in(self) -> int:
        return max(0, int(self.claims["exp"] - time.time()))


class TokenMinter:
    def __init__(self, tenant: Tenant, keys: SigningKeyStore, base_url: Callable[[], str]) -> None:
        self.tenant = tenant
        self.keys = keys
        self._base_url = base_url
        # Seconds this platform's clock is off from the real time (scenario "clock-skew"; 0 otherwise).
        self.clock_offset = 0.0

    def issuer(self, tenant_id: str | None = None) -> str:
        return f"{self._base_url()}/{tenant_id or self.tenant.tenant_id}/v2.0"

    def pairwise_sub(self, oid: str, app_id: str, tenant_id: str | None = None) -> str:
        # Stable per (tenant, app, user), different across apps: Entra's pairwise subject.
        digest = hashlib.sha256(f"{tenant_id or self.tenant.tenant_id}|{app_id}|{oid}".encode()).digest()
        return b64url(digest)[:43]

    def _times(self, lifetime: int | None, default: tuple[int, int] | int) -> tuple[int, int, int]:
        now = int(time.time() + self.clock_offset)
        if lifetime is None:
            lifetime = (
                secrets.choice(range(default[0], default[1] + 1)) if isinstance(default, tuple) else default
            )
        if lifetime <= 0:  # an already-expired token (tests): issued an hour before it expired
            exp = now + lifetime
            return exp - 3600, exp - 3600, exp
        return now, now, now + lifetime

    def _sign(self, claims: dict[str, Any], sign_with: SigningKey | None, *, v1: bool) -> Minted:
        key = sign_with or self.keys.current()
        return Minted(key.sign(claims, x5t=v1), claims)

    def user_access_token(
        self,
        user: User,
        target: Target,
        scopes: tuple[str, ...],
        client: AppRegistration,
        *,
        client_authenticated: bool,
        lifetime: int | None = None,
        tenant_id: str | None = None,
        issuer: str | None = None,
        extra: dict[str, Any] | None = None,
        sign_with: SigningKey | None = None,
        amr: tuple[str, ...] = ("pwd",),
        acrs: tuple[str, ...] = (),
    ) -> Minted:
        """``amr``: how the person authenticated (``pwd``, ``mfa``); ``acrs``: authentication contexts satisfied.
        Both ride in v1 and v2 tokens here, so policies can be checked on an OBO assertion (docs/identity.md)."""
        tid = tenant_id or self.tenant.tenant_id
        iat, nbf, exp = self._times(lifetime, USER_TOKEN_LIFETIME)
        acr = "1" if client_authenticated else "0"
        claims: dict[str, Any] = {"aud": target.audience}
        if target.token_version == 2:
            claims |= {
                "iss": issuer or self.issuer(tid),
                "iat": iat,
                "nbf": nbf,
                "exp": exp,
                "amr": list(amr),
                "azp": client.client_id,
                "azpacr": acr,
                "name": user.name,
                "oid": user.oid,
                "preferred_username": user.username,
                "rh": _rh(),
                "scp": " ".join(scopes),
                "sub": self.pairwise_sub(user.oid, target.app_id, tid),
                "tid": tid,
                "uti": _uti(),
                "ver": "2.0",
            }
        else:
            claims |= {
                "iss": issuer or v1_issuer(tid),
                "iat": iat,
                "nbf": nbf,
                "exp": exp,
                "acr": "1",
                "amr": list(amr),
                "appid": client.client_id,
                "appidacr": acr,
                "name": user.name,
                "oid": user.oid,
                "rh": _rh(),
                "scp": " ".join(scopes),
                "sub": self.pairwise_sub(user.oid, target.app_id, tid),
                "tid": tid,
                "unique_name": user.upn,
                "upn": user.upn,
                "uti": _uti(),
                "ver": "1.0",
            }
        if acrs:
            claims["acrs"] = list(acrs)
        if target.app is not None:  # an app registration of this tenant: its groupMembershipClaims decide
            claims |= group_claims(self.tenant, user, target.app, tid)
        claims |= extra or {}
        return self._sign(claims, sign_with, v1=target.token_version == 1)

    def app_access_token(
        self,
        client: AppRegistration,
        target: Target,
        roles: tuple[str, ...],
        *,
        lifetime: int | None = None,
        tenant_id: str | None = None,
        extra: dict[str, Any] | None = None,
        sign_with: SigningKey | None = None,
    ) -> Minted:
        tid = tenant_id or self.tenant.tenant_id
        iat, nbf, exp = self._times(lifetime, APP_TOKEN_LIFETIME)
        claims: dict[str, Any] = {
            "aud": target.audience,
            "iat": iat,
            "nbf": nbf,
            "exp": exp,
            "idtyp": "app",
            "oid": client.service_principal_id,
            "rh": _rh(),
            "sub": client.service_principal_id,
            "tid": tid,
            "uti": _uti(),
        }
        if roles:
            claims["roles"] = list(roles)
        if target.token_version == 2:
            claims |= {"iss": self.issuer(tid), "azp": client.client_id, "azpacr": "1", "ver": "2.0"}
        else:
            claims |= {"iss": v1_issuer(tid), "appid": client.client_id, "appidacr": "1", "ver": "1.0"}
        claims |= extra or {}
        return self._sign(claims, sign_with, v1=target.token_version == 1)

    def id_token(
        self,
        user: User,
        client: AppRegistration,
        *,
        tenant_id: str | None = None,
        sign_with: SigningKey | None = None,
        nonce: str | None = None,
    ) -> Minted:
        tid = tenant_id or self.tenant.tenant_id
        iat, nbf, exp = self._times(None, ID_TOKEN_LIFETIME)
        claims = {
            "aud": client.client_id,
            "iss": self.issuer(tid),
            "iat": iat,
            "nbf": nbf,
            "exp": exp,
            "name": user.name,
            "oid": user.oid,
            "preferred_username": user.username,
            "rh": _rh(),
            "sub": self.pairwise_sub(user.oid, client.client_id, tid),
            "tid": tid,
            "uti": _uti(),
            "ver": "2.0",
        }
        if nonce:
            claims["nonce"] = nonce  # echoed from the authorization request (MSAL checks it)
        claims |= group_claims(self.tenant, user, client, tid)  # the client's own groupMembershipClaims
        return self._sign(claims, sign_with, v1=False)

    def client_info(self, user: User) -> str:
        """base64url ``{"uid": oid, "utid": tid}``: MSAL's home account id is ``uid.utid``."""
        return b64url(json.dumps({"uid": user.oid, "utid": self.tenant.tenant_id}).encode())


def _uti() -> str:
    return b64url(uuid.uuid4().bytes)[:22]


def _rh() -> str:
    return "0." + b64url(secrets.token_bytes(24))
