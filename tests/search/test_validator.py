"""The token validator fetching the identity platform's JWKS over HTTPS, trusting only the platform's CA."""

from __future__ import annotations

import pytest

from mcp_server.localcloud.identity.platform import IdentityPlatform
from mcp_server.localcloud.search.auth import EntraTokenValidator, TokenRejected
from mcp_server.localcloud.search.errors import SearchError

SEARCH = "https://search.azure.com"


def test_jwks_url_with_explicit_ca(identity_platform: IdentityPlatform) -> None:
    validator = EntraTokenValidator(
        identity_platform.jwks_uri,
        issuers={identity_platform.v1_issuer},
        ca_cert=identity_platform.ca_cert_path,
    )
    user = identity_platform.user("carol")
    token = identity_platform.issue_access_token("carol", audience=SEARCH, scopes=["user_impersonation"])
    claims = validator.validate(token)
    assert claims["oid"] == user.oid and claims["aud"] == SEARCH
    with pytest.raises(TokenRejected, match="Audience claim is invalid"):
        validator.validate(identity_platform.issue_access_token("carol"))
    with pytest.raises(TokenRejected, match="Issuer claim is invalid"):
        validator.validate(
            identity_platform.issue_access_token(
                "carol",
                audience=SEARCH,
                scopes=["user_impersonation"],
                issuer="https://sts.windows.net/other/",
            )
        )


def test_jwks_url_without_the_ca_is_not_trusted(identity_platform: IdentityPlatform) -> None:
    # The machine's CA bundle env vars are ignored and the local CA is not in the default trust store.
    validator = EntraTokenValidator(identity_platform.jwks_uri, issuers={identity_platform.v1_issuer})
    token = identity_platform.issue_access_token("carol", audience=SEARCH, scopes=["user_impersonation"])
    with pytest.raises(SearchError) as info:
        validator.validate(token)
    assert info.value.status == 503
