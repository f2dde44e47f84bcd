"""The local search service's verified-token cache (by hash, a minute at most, expiry still applied) and its direct
``aud`` read: the same answers as full verification / PyJWT's unverified decode, never another token's claims."""

from __future__ import annotations

import base64
import json

import jwt
import pytest

from mcp_server.localcloud.identity.platform import IdentityPlatform
from mcp_server.localcloud.search.auth import EntraTokenValidator, TokenRejected, unverified_audience

SEARCH = "https://search.azure.com"


def _b64(value: object) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_cached_verification_gives_each_token_its_own_claims(identity_platform: IdentityPlatform) -> None:
    validator = EntraTokenValidator(
        identity_platform.jwks_uri,
        issuers={identity_platform.v1_issuer},
        ca_cert=identity_platform.ca_cert_path,
    )
    tokens = {
        login: identity_platform.issue_access_token(login, audience=SEARCH, scopes=["user_impersonation"])
        for login in ("alice", "bob", "carol")
    }
    for _ in range(3):  # the second and third rounds come from the cache
        for login, token in tokens.items():
            claims = validator.validate(token)
            assert claims["oid"] == identity_platform.user(login).oid
            claims["oid"] = "changed by the caller"  # a copy: the cached claims stay as verified
    assert validator.validate(tokens["alice"])["oid"] == identity_platform.user("alice").oid
    head, body, signature = tokens["alice"].split(".")
    forged_body = _b64(
        json.loads(base64.urlsafe_b64decode(body + "==")) | {"oid": identity_platform.user("bob").oid}
    )
    with pytest.raises(TokenRejected, match="Signature validation failed for the JWT token."):
        validator.validate(f"{head}.{forged_body}.{signature}")  # a cached token's signature on other claims


@pytest.mark.parametrize(
    "token",
    [
        f"{_b64({'alg': 'RS256'})}.{_b64({'aud': SEARCH})}.sig",
        f"{_b64({'alg': 'RS256'})}.{_b64({'aud': [SEARCH, 'x']})}.sig",
        f"{_b64({'alg': 'RS256'})}.{_b64({'aud': 5})}.sig",
        f"{_b64({'alg': 'RS256'})}.{_b64({'sub': 'x'})}.sig",
        f"{_b64({'alg': 'RS256'})}.{_b64([1, 2])}.sig",
        f"{_b64([1])}.{_b64({'aud': SEARCH})}.sig",
        f"{_b64({'alg': 'RS256'})}.{_b64(b'not json')}.sig",
        f"{_b64({'alg': 'RS256'})}.@@@.sig",
        "not-a-jwt",
        "a.b",
        "",
    ],
)
def test_unverified_audience_reads_what_pyjwt_would(token: str) -> None:
    try:
        reference = jwt.decode(token, options={"verify_signature": False}).get("aud")
        reference = reference if isinstance(reference, str | list) else None
    except jwt.PyJWTError:
        reference = None
    assert unverified_audience(token) == reference
