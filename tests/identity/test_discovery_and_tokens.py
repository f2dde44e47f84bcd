"""Discovery documents, the JWKS, and the shape of the tokens, checked over HTTPS with PyJWT."""

from __future__ import annotations

import ssl

import jwt
import pytest
import requests

from mcp_server.localcloud.identity.platform import IdentityPlatform
from mcp_server.localcloud.tenant import Tenant
from tests.identity.helpers import assert_entra_error

A1_FIELDS = {
    "token_endpoint",
    "token_endpoint_auth_methods_supported",
    "jwks_uri",
    "response_modes_supported",
    "subject_types_supported",
    "id_token_signing_alg_values_supported",
    "response_types_supported",
    "scopes_supported",
    "issuer",
    "request_uri_parameter_supported",
    "userinfo_endpoint",
    "authorization_endpoint",
    "device_authorization_endpoint",
    "http_logout_supported",
    "frontchannel_logout_supported",
    "end_session_endpoint",
    "claims_supported",
    "kerberos_endpoint",
    "tenant_region_scope",
    "cloud_instance_name",
    "cloud_graph_host_name",
    "msgraph_host",
    "rbac_url",
}


def test_openid_configuration_has_entras_fields_and_our_https_endpoints(
    identity_platform: IdentityPlatform, identity_http: requests.Session, demo_tenant: Tenant
) -> None:
    response = identity_http.get(identity_platform.openid_configuration_url)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["access-control-allow-origin"] == "*"
    doc = response.json()
    assert set(doc) == A1_FIELDS
    tid = demo_tenant.tenant_id
    base = identity_platform.base_url
    assert base.startswith("https://127.0.0.1:")
    assert doc["issuer"] == f"{base}/{tid}/v2.0" == identity_platform.issuer
    assert doc["token_endpoint"] == identity_platform.token_endpoint == f"{base}/{tid}/oauth2/v2.0/token"
    assert doc["device_authorization_endpoint"] == identity_platform.device_endpoint
    assert doc["jwks_uri"] == identity_platform.jwks_uri == f"{base}/{tid}/discovery/v2.0/keys"
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
    assert "code_challenge_methods_supported" not in doc  # Entra does not advertise it


def test_tenant_by_domain_common_and_unknown(
    identity_platform: IdentityPlatform, identity_http: requests.Session, demo_tenant: Tenant
) -> None:
    base = identity_platform.base_url
    by_domain = identity_http.get(f"{base}/{demo_tenant.domain}/v2.0/.well-known/openid-configuration").json()
    assert by_domain["issuer"] == identity_platform.issuer  # the GUID, even when asked by domain
    common = identity_http.get(f"{base}/common/v2.0/.well-known/openid-configuration").json()
    assert common["issuer"] == f"{base}/{{tenantid}}/v2.0"
    unknown = identity_http.get(f"{base}/not-a-tenant/v2.0/.well-known/openid-configuration")
    assert unknown.status_code == 400
    assert_entra_error(unknown.json(), "invalid_tenant", 90002)
    v1 = identity_http.get(f"{base}/{demo_tenant.tenant_id}/.well-known/openid-configuration").json()
    assert v1["issuer"] == identity_platform.v1_issuer


def test_jwks_keys_have_kid_x5t_x5c_and_issuer(
    identity_platform: IdentityPlatform, identity_http: requests.Session
) -> None:
    jwks = identity_http.get(identity_platform.jwks_uri).json()
    assert jwks == identity_platform.jwks()
    assert jwks["keys"]
    for key in jwks["keys"]:
        assert key["kty"] == "RSA" and key["use"] == "sig" and key["e"] == "AQAB"
        assert key["kid"] == key["x5t"] and key["x5c"]
        assert key["issuer"] == identity_platform.issuer


def test_api_token_verifies_with_pyjwt_against_the_jwks_over_https(
    identity_platform: IdentityPlatform, demo_tenant: Tenant
) -> None:
    token = identity_platform.issue_access_token("bob")
    client = jwt.PyJWKClient(
        identity_platform.jwks_uri,
        ssl_context=ssl.create_default_context(cafile=str(identity_platform.ca_cert_path)),
    )
    key = client.get_signing_key_from_jwt(token)
    claims = jwt.decode(
        token,
        key.key,
        algorithms=["RS256"],
        audience=demo_tenant.api_app.client_id,
        issuer=identity_platform.issuer,
        options={"require": ["exp", "iat", "nbf"]},
    )
    bob = demo_tenant.user_by_login("bob")
    assert bob is not None
    assert claims["ver"] == "2.0" and claims["tid"] == demo_tenant.tenant_id and claims["oid"] == bob.oid
    assert claims["azp"] == demo_tenant.console_app.client_id and claims["azpacr"] == "0"
    assert claims["scp"] == "execute" and claims["preferred_username"] == bob.username
    assert claims["groups"] == list(bob.groups) and claims["name"] == bob.name
    assert 3600 <= claims["exp"] - claims["iat"] <= 5400 and claims["nbf"] == claims["iat"]
    assert claims["uti"] and claims["sub"]
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "RS256", "kid": key.key_id, "typ": "JWT"}


def test_forged_expired_and_other_tenant_tokens_fail_pyjwt_validation(
    identity_platform: IdentityPlatform, demo_tenant: Tenant
) -> None:
    jwks = jwt.PyJWKSet.from_dict(identity_platform.jwks())
    current = jwks.keys[0].key

    def verify(token: str) -> dict:
        return jwt.decode(
            token,
            current,
            algorithms=["RS256"],
            audience=demo_tenant.api_app.client_id,
            issuer=identity_platform.issuer,
        )

    with pytest.raises(jwt.InvalidSignatureError):
        verify(identity_platform.issue_access_token("alice", sign_with=identity_platform.forge_key()))
    with pytest.raises(jwt.ExpiredSignatureError):
        verify(identity_platform.issue_access_token("alice", lifetime=-1))
    with pytest.raises(jwt.InvalidIssuerError):
        verify(
            identity_platform.issue_access_token("alice", tenant_id="11111111-2222-3333-4444-555555555555")
        )


def test_lifetimes_vary_between_60_and_90_minutes_and_sub_is_pairwise(
    identity_platform: IdentityPlatform, demo_tenant: Tenant
) -> None:
    lifetimes = set()
    for _ in range(12):
        claims = jwt.decode(
            identity_platform.issue_access_token("alice"), options={"verify_signature": False}
        )
        lifetimes.add(claims["exp"] - claims["iat"])
    assert all(3600 <= s <= 5400 for s in lifetimes) and len(lifetimes) > 1
    api = jwt.decode(identity_platform.issue_access_token("alice"), options={"verify_signature": False})
    search = jwt.decode(
        identity_platform.issue_access_token(
            "alice", audience="https://search.azure.com", scopes=["user_impersonation"]
        ),
        options={"verify_signature": False},
    )
    id_token = jwt.decode(identity_platform.issue_id_token("alice"), options={"verify_signature": False})
    assert api["oid"] == search["oid"] == id_token["oid"]
    assert len({api["sub"], search["sub"], id_token["sub"]}) == 3


def test_instance_discovery_answers_for_our_host(
    identity_platform: IdentityPlatform, identity_http: requests.Session
) -> None:
    response = identity_http.get(
        f"{identity_platform.base_url}/common/discovery/instance",
        params={
            "authorization_endpoint": f"{identity_platform.authority}/oauth2/v2.0/authorize",
            "api-version": "1.1",
        },
    )
    body = response.json()
    assert body["tenant_discovery_endpoint"] == identity_platform.openid_configuration_url
