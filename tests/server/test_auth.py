"""Token validation at the MCP endpoint: 401 with resource_metadata for a missing or invalid token, 403
insufficient_scope for a valid token without `execute`, RFC 9728 metadata, and JWKS rotation."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx2
import jwt
import msal
import pytest

from console.core.clock import FixedClock
from mcp_server.localcloud.identity.platform import IdentityPlatform
from mcp_server.localcloud.serve import ThreadedServer
from mcp_server.server.app import create_server
from mcp_server.server.auth import EntraTokenVerifier, ValidatedToken, authority_http_client
from mcp_server.server.metrics import ServerMetrics
from mcp_server.server.runner import serve_threaded
from mcp_server.stack import LocalStack
from tests.fixtures.stack import OwnServer, api_token, trusting_session
from tests.server.helpers import post_mcp


def failures(stack: LocalStack, reason: str) -> float:
    assert stack.server is not None
    return stack.server.metrics.value("auth_failures_total", reason=reason)


def challenge(response: httpx2.Response) -> str:
    return response.headers.get("www-authenticate", "")


def assert_refused(
    stack: LocalStack,
    token: str | None,
    reason: str,
    *,
    status: int = 401,
    error: str | None = "invalid_token",
) -> httpx2.Response:
    before = failures(stack, reason)
    response = post_mcp(stack.mcp_url, token)
    assert response.status_code == status, response.text
    header = challenge(response)
    assert header.startswith("Bearer ")
    metadata_url = stack.mcp_url.replace("/mcp", "/.well-known/oauth-protected-resource/mcp")
    assert f'resource_metadata="{metadata_url}"' in header
    assert f'scope="{stack.tenant.api_scope}"' in header
    if error is None:
        assert "error=" not in header
    else:
        assert f'error="{error}"' in header
    assert failures(stack, reason) == before + 1, f"auth_failures_total{{reason={reason!r}}} did not count it"
    return response


def test_a_signed_in_users_token_is_accepted(local_stack: LocalStack) -> None:
    response = post_mcp(local_stack.mcp_url, api_token(local_stack, "alice"))
    assert response.status_code == 200


def test_no_token_is_401_without_error_but_with_resource_metadata(local_stack: LocalStack) -> None:
    assert_refused(local_stack, None, "missing_token", error=None)


def test_another_scheme_counts_as_no_token(local_stack: LocalStack) -> None:
    response = post_mcp(local_stack.mcp_url, "dXNlcjpwYXNz", scheme="Basic")
    assert response.status_code == 401 and "error=" not in challenge(response)


def test_forged_signature_is_refused(local_stack: LocalStack) -> None:
    idp = local_stack.identity
    forged = idp.issue_access_token("alice", sign_with=idp.forge_key())  # the real kid, another key
    assert_refused(local_stack, forged, "bad_signature")


def test_unknown_signing_key_is_refused(local_stack: LocalStack) -> None:
    idp = local_stack.identity
    assert_refused(
        local_stack, idp.issue_access_token("alice", sign_with=idp.forge_key(kid="nope")), "unknown_key"
    )


def test_wrong_audience_is_refused(local_stack: LocalStack) -> None:
    token = local_stack.identity.issue_access_token("alice", audience=str(uuid.uuid4()))
    assert_refused(local_stack, token, "wrong_audience")


def test_a_search_token_is_not_accepted_by_the_api(local_stack: LocalStack) -> None:
    token = local_stack.identity.issue_access_token(
        "alice", audience="https://search.azure.com", scopes=("user_impersonation",)
    )
    response = post_mcp(local_stack.mcp_url, token)
    assert response.status_code == 401 and 'error="invalid_token"' in challenge(response)


def test_another_tenants_issuer_is_refused(local_stack: LocalStack) -> None:
    token = local_stack.identity.issue_access_token("alice", tenant_id=str(uuid.uuid4()))
    assert_refused(local_stack, token, "wrong_issuer")


def test_another_tenant_id_under_the_right_issuer_is_refused(local_stack: LocalStack) -> None:
    token = local_stack.identity.issue_access_token("alice", extra_claims={"tid": str(uuid.uuid4())})
    assert_refused(local_stack, token, "tenant_not_allowed")


def test_expired_token_is_refused(local_stack: LocalStack) -> None:
    assert_refused(local_stack, local_stack.identity.issue_access_token("alice", lifetime=-60), "expired")


def test_not_yet_valid_token_is_refused(local_stack: LocalStack) -> None:
    token = local_stack.identity.issue_access_token("alice", extra_claims={"nbf": int(time.time()) + 3600})
    assert_refused(local_stack, token, "not_yet_valid")


def test_hs256_token_with_the_right_kid_is_refused(local_stack: LocalStack) -> None:
    idp = local_stack.identity
    good = jwt.decode(idp.issue_access_token("alice"), options={"verify_signature": False})
    kid = idp.keys.current().kid
    token = jwt.encode(good, "shared-secret-guess-of-32-bytes!!", algorithm="HS256", headers={"kid": kid})
    assert_refused(local_stack, token, "wrong_algorithm")


def test_app_only_token_from_client_credentials_is_refused(local_stack: LocalStack) -> None:
    state = local_stack.state
    assert state is not None and state.api_client_secret is not None
    app = msal.ConfidentialClientApplication(
        state.api_client_id,
        client_credential=state.api_client_secret.get_secret_value(),
        authority=state.authority,
        http_client=trusting_session(state.ca_cert or ""),
        instance_discovery=False,
    )
    result = app.acquire_token_for_client(scopes=[f"api://{state.api_client_id}/.default"])
    assert "access_token" in result, result.get("error_description")
    claims = jwt.decode(result["access_token"], options={"verify_signature": False})
    assert claims["aud"] == state.api_client_id and "scp" not in claims  # a genuine, valid app-only token
    assert_refused(local_stack, result["access_token"], "app_only_token")


def test_token_without_execute_scope_is_403_insufficient_scope(local_stack: LocalStack) -> None:
    token = local_stack.identity.issue_access_token("alice", scopes=("read",))
    response = assert_refused(
        local_stack, token, "insufficient_scope", status=403, error="insufficient_scope"
    )
    assert response.json()["error"] == "insufficient_scope"


def test_protected_resource_metadata_names_the_authority_and_the_api(local_stack: LocalStack) -> None:
    base = local_stack.mcp_url.removesuffix("/mcp")
    response = httpx2.get(f"{base}/.well-known/oauth-protected-resource/mcp", trust_env=False)
    assert response.status_code == 200
    doc = response.json()
    assert doc["resource"] == local_stack.mcp_url
    assert doc["authorization_servers"] == [local_stack.identity.issuer]
    assert doc["scopes_supported"] == [local_stack.tenant.api_scope]
    assert doc["bearer_methods_supported"] == ["header"]


# -- signing-key rotation: a separate identity platform, so the session stack's keys stay as they are ---------------


@pytest.fixture
def rotating_idp(local_stack: LocalStack, tmp_path: Path) -> Iterator[IdentityPlatform]:
    with IdentityPlatform(local_stack.tenant, home=tmp_path / "idp") as idp:
        yield idp


def _server_for(
    local_stack: LocalStack, idp: IdentityPlatform, clock: FixedClock | None = None, **overrides: object
) -> ThreadedServer:
    config = local_stack.server_config(authority=idp.authority, ca_cert=idp.ca_cert_path, port=0, **overrides)
    return serve_threaded(create_server(config, clock=(clock or FixedClock()).monotonic))


def test_rotation_new_key_is_fetched_on_unknown_kid_and_refresh_is_rate_limited(
    local_stack: LocalStack, rotating_idp: IdentityPlatform
) -> None:
    eager = _server_for(local_stack, rotating_idp, jwks_refresh_interval=0.0)
    limited = _server_for(local_stack, rotating_idp, jwks_refresh_interval=3600.0)
    try:
        old = rotating_idp.issue_access_token("bob")
        for server in (eager, limited):
            assert post_mcp(f"{server.base_url}/mcp", old).status_code == 200  # JWKS cached now
        rotating_idp.rotate_keys(grace_seconds=0)  # the old key leaves the JWKS at once
        new = rotating_idp.issue_access_token("bob")
        assert jwt.get_unverified_header(new)["kid"] != jwt.get_unverified_header(old)["kid"]
        # Unknown kid: the eager server refreshes its JWKS and accepts the new key; the old one is gone.
        assert post_mcp(f"{eager.base_url}/mcp", new).status_code == 200
        assert post_mcp(f"{eager.base_url}/mcp", old).status_code == 401
        # The rate-limited server refreshed less than an hour ago: it refuses rather than hammer the authority.
        assert post_mcp(f"{limited.base_url}/mcp", new).status_code == 401
    finally:
        eager.stop()
        limited.stop()


def test_rotation_within_grace_keeps_old_tokens_valid_and_the_cache_ttl_bounds_staleness(
    local_stack: LocalStack, rotating_idp: IdentityPlatform
) -> None:
    clock = FixedClock()  # the JWKS cache's clock: it moves only when the test says so
    server = _server_for(local_stack, rotating_idp, clock, jwks_refresh_interval=0.0, jwks_cache_ttl=60.0)
    url = f"{server.base_url}/mcp"
    try:
        first = rotating_idp.issue_access_token("carol")
        assert post_mcp(url, first).status_code == 200
        rotating_idp.rotate_keys()  # default grace: the first key stays published
        second = rotating_idp.issue_access_token("carol")
        assert post_mcp(url, second).status_code == 200
        assert post_mcp(url, first).status_code == 200
        rotating_idp.rotate_keys(grace_seconds=0)  # the second key leaves the JWKS at once
        clock.advance(59.9)
        assert post_mcp(url, second).status_code == 200  # still cached: within the TTL nothing is re-read
        clock.advance(0.1)  # the TTL is over: the next request re-reads the key set
        assert post_mcp(url, second).status_code == 401
        assert post_mcp(url, first).status_code == 200  # in its grace period
        assert post_mcp(url, rotating_idp.issue_access_token("carol")).status_code == 200
    finally:
        server.stop()


# -- the verified-token cache: a token's signature is checked once, its claims on every request ------------------


async def test_a_token_verified_before_is_reused_but_still_expires(local_stack: LocalStack) -> None:
    """The second request skips the RSA check (``signature_cached``); once the token's ``exp`` passes the same
    string is refused as expired, cache or not."""
    config = local_stack.server_config(port=0)
    metrics = ServerMetrics()
    verifier = EntraTokenVerifier(config, metrics, authority_http_client(config))
    token = local_stack.identity.issue_access_token("bob", lifetime=3)
    first, second = [await verifier.load_access_token(token) for _ in range(2)]
    assert isinstance(first, ValidatedToken) and isinstance(second, ValidatedToken)
    assert (first.signature_cached, second.signature_cached) == (False, True)
    assert (
        second.claims == first.claims and second.claims["oid"] == local_stack.tenant.user_by_login("bob").oid
    )
    time.sleep(max(0.0, first.claims["exp"] - time.time()) + 0.2)
    assert await verifier.load_access_token(token) is None
    assert metrics.value("auth_failures_total", reason="expired") == 1


async def test_a_token_refused_on_its_claims_is_never_remembered(local_stack: LocalStack) -> None:
    """Genuinely signed but for another audience: verified in full, refused, and not kept — each request verifies
    it again, and the memory of verified tokens holds only tokens that passed every check."""
    config = local_stack.server_config(port=0)
    metrics = ServerMetrics()
    verifier = EntraTokenVerifier(config, metrics, authority_http_client(config))
    wrong = local_stack.identity.issue_access_token("bob", audience="api://someone-else")
    for _ in range(2):
        assert await verifier.load_access_token(wrong) is None
    assert metrics.value("auth_failures_total", reason="wrong_audience") == 2
    assert len(verifier._signed) == 0  # the bound is on tokens that passed, not on what anyone can send
    assert isinstance(
        await verifier.load_access_token(local_stack.identity.issue_access_token("bob")), ValidatedToken
    )
    assert len(verifier._signed) == 1


def test_a_cached_verification_never_vouches_for_another_string(
    local_stack: LocalStack, own_mcp_server: OwnServer
) -> None:
    """Keyed by the whole token: the cached token's header and payload with another key's signature, or with a
    byte of its own signature changed, is verified in full and refused."""
    idp = local_stack.identity
    token = idp.issue_access_token("alice")
    url = own_mcp_server.mcp_url
    assert post_mcp(url, token).status_code == 200  # verified and cached now
    head, body, signature = token.split(".")
    forged_signature = idp.issue_access_token("alice", sign_with=idp.forge_key()).split(".")[2]
    flipped = ("B" if signature[0] != "B" else "C") + signature[1:]
    metrics = own_mcp_server.server.metrics
    before = metrics.value("auth_failures_total", reason="bad_signature")
    for forged in (f"{head}.{body}.{forged_signature}", f"{head}.{body}.{flipped}"):
        assert post_mcp(url, forged).status_code == 401
    assert metrics.value("auth_failures_total", reason="bad_signature") == before + 2
    assert post_mcp(url, token).status_code == 200  # the genuine one still passes
