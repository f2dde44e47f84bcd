"""The Microsoft Graph subset on the identity host, called with ``requests`` as Graph is: a real OBO token for
Graph from MSAL, ``transitiveMemberOf`` paged with ``@odata.nextLink``, ``getMemberObjects``, ``/me``, and
Graph's error envelope (401 ``InvalidAuthenticationToken``, 403 ``Authorization_RequestDenied``)."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from mcp_server.localcloud.identity.platform import IdentityPlatform
from mcp_server.localcloud.tenant import Tenant, User
from tests.identity.helpers import api_app, device_flow_sign_in, public_app

GRAPH = "https://graph.microsoft.com"


def _user(tenant: Tenant, login: str) -> User:
    user = tenant.user_by_login(login)
    assert user is not None
    return user


@pytest.fixture(scope="module")
def erin_graph_token(identity_platform: IdentityPlatform) -> str:
    """Erin signs in to the API (MSAL device flow); the API exchanges her token for Graph (MSAL OBO)."""
    from mcp_server.localcloud.ca import trusting_session

    with trusting_session(identity_platform.ca_cert_path) as session:
        signed_in = device_flow_sign_in(identity_platform, public_app(identity_platform, session), "erin")
        assert "access_token" in signed_in, signed_in
        result = api_app(identity_platform, session).acquire_token_on_behalf_of(
            signed_in["access_token"], [f"{GRAPH}/.default"]
        )
    assert "access_token" in result, result
    assert set(result["scope"].split()) >= {f"{GRAPH}/User.Read", f"{GRAPH}/GroupMember.Read.All"}
    return str(result["access_token"])


def _get(session: requests.Session, url: str, token: str | None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return session.get(url, headers=headers)


def _assert_graph_error(response: requests.Response, status: int, code: str, message: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert (error["code"], error["message"]) == (code, message)
    inner = error["innerError"]
    assert set(inner) == {"date", "request-id", "client-request-id"}
    assert inner["request-id"] == response.headers["request-id"]


def test_transitive_member_of_pages_with_odata_next_link(
    identity_platform: IdentityPlatform,
    identity_http: requests.Session,
    erin_graph_token: str,
    demo_tenant: Tenant,
) -> None:
    erin = _user(demo_tenant, "erin")
    url: str | None = f"{identity_platform.graph_endpoint}/v1.0/me/transitiveMemberOf?$select=id,displayName"
    pages: list[list[dict[str, Any]]] = []
    while url is not None:
        response = _get(identity_http, url, erin_graph_token)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/json;odata.metadata=minimal")
        body = response.json()
        assert body["@odata.context"].endswith("/v1.0/$metadata#directoryObjects")
        pages.append(body["value"])
        url = body.get("@odata.nextLink")
        if url is not None:
            assert url.startswith(f"{identity_platform.graph_endpoint}/v1.0/me/transitiveMemberOf?")
            assert "$skiptoken=" in url and "$select=id,displayName" in url
    assert [len(p) for p in pages] == [100, 100, 41]  # Graph's default page size is 100
    items = [item for page in pages for item in page]
    assert [i["id"] for i in items] == list(erin.groups)
    assert items[0] == {
        "@odata.type": "#microsoft.graph.group",
        "id": erin.groups[0],
        "displayName": "All Staff",
    }


def test_top_and_the_group_cast_and_the_page_size_limit(
    identity_platform: IdentityPlatform,
    identity_http: requests.Session,
    erin_graph_token: str,
    demo_tenant: Tenant,
) -> None:
    erin = _user(demo_tenant, "erin")
    base = f"{identity_platform.graph_endpoint}/v1.0/me/transitiveMemberOf"
    body = _get(identity_http, f"{base}/microsoft.graph.group?$top=999&$select=id", erin_graph_token).json()
    assert "@odata.nextLink" not in body and body["@odata.context"].endswith("#groups")
    assert body["value"] == [{"id": g} for g in erin.groups]
    for query, message in (
        ("$top=1000", "Invalid page size specified: '1000'. Must be between 1 and 999 inclusive."),
        ("$select=mail", "Could not find a property named 'mail' on type 'microsoft.graph.directoryObject'."),
    ):
        _assert_graph_error(
            _get(identity_http, f"{base}?{query}", erin_graph_token), 400, "Request_BadRequest", message
        )


def test_a_next_link_of_one_user_does_not_page_another_users_list(
    identity_platform: IdentityPlatform, identity_http: requests.Session, erin_graph_token: str
) -> None:
    first = _get(
        identity_http,
        f"{identity_platform.graph_endpoint}/v1.0/me/transitiveMemberOf?$top=1",
        erin_graph_token,
    )
    alice_graph = identity_platform.issue_access_token("alice", audience=GRAPH, scopes=["User.Read"])
    _assert_graph_error(
        _get(identity_http, first.json()["@odata.nextLink"], alice_graph),
        400,
        "Request_BadRequest",
        "The specified page token value has expired or is invalid.",
    )


def test_get_member_objects_security_enabled_only_and_me(
    identity_platform: IdentityPlatform,
    identity_http: requests.Session,
    erin_graph_token: str,
    demo_tenant: Tenant,
) -> None:
    erin = _user(demo_tenant, "erin")
    url = f"{identity_platform.graph_endpoint}/v1.0/me/getMemberObjects"
    headers = {"Authorization": f"Bearer {erin_graph_token}"}
    response = identity_http.post(url, headers=headers, json={"securityEnabledOnly": True})
    assert response.status_code == 200, response.text
    assert response.json()["@odata.context"].endswith("/v1.0/$metadata#Collection(Edm.String)")
    assert response.json()["value"] == list(erin.groups)
    _assert_graph_error(
        identity_http.post(url, headers=headers, json={}),
        400,
        "Request_BadRequest",
        "The parameter 'securityEnabledOnly' in the request payload is not a valid parameter for the operation "
        "'getMemberObjects'. It is required and must be true or false.",
    )
    me = _get(identity_http, f"{identity_platform.graph_endpoint}/v1.0/me", erin_graph_token).json()
    assert (me["id"], me["displayName"], me["userPrincipalName"]) == (erin.oid, erin.name, erin.upn)


def test_user_read_alone_lists_memberships_with_limited_information(
    identity_platform: IdentityPlatform, identity_http: requests.Session, demo_tenant: Tenant
) -> None:
    """Without a group permission Graph returns each group's type and id, every other property null."""
    alice = _user(demo_tenant, "alice")
    token = identity_platform.issue_access_token("alice", audience=GRAPH, scopes=["User.Read"])
    body = _get(identity_http, f"{identity_platform.graph_endpoint}/v1.0/me/transitiveMemberOf", token).json()
    assert [v["id"] for v in body["value"]] == list(alice.groups)
    assert body["value"][0] == {
        "@odata.type": "#microsoft.graph.group",
        "id": alice.groups[0],
        "displayName": None,
        "description": None,
        "securityEnabled": None,
        "mailEnabled": None,
    }


def test_graph_refusals_in_graphs_shape(
    identity_platform: IdentityPlatform, identity_http: requests.Session
) -> None:
    base = f"{identity_platform.graph_endpoint}/v1.0/me"
    empty = _get(identity_http, f"{base}/transitiveMemberOf", None)
    _assert_graph_error(empty, 401, "InvalidAuthenticationToken", "Access token is empty.")
    assert empty.headers["www-authenticate"].startswith('Bearer realm=""')
    api_token = identity_platform.issue_access_token("alice")  # a token for the MCP API, not for Graph
    _assert_graph_error(
        _get(identity_http, f"{base}/transitiveMemberOf", api_token),
        401,
        "InvalidAuthenticationToken",
        "Access token validation failure. Invalid audience.",
    )
    expired = identity_platform.issue_access_token("alice", audience=GRAPH, lifetime=-60)
    _assert_graph_error(
        _get(identity_http, f"{base}/transitiveMemberOf", expired),
        401,
        "InvalidAuthenticationToken",
        "Lifetime validation failed, the token is expired.",
    )
    # GroupMember.Read.All lists memberships, but getMemberObjects and /me need a User.* permission.
    members_only = identity_platform.issue_access_token(
        "alice", audience=GRAPH, scopes=["GroupMember.Read.All"]
    )
    assert _get(identity_http, f"{base}/transitiveMemberOf", members_only).status_code == 200
    denied = identity_http.post(
        f"{base}/getMemberObjects",
        headers={"Authorization": f"Bearer {members_only}"},
        json={"securityEnabledOnly": False},
    )
    _assert_graph_error(
        denied, 403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
    )
    app_only = identity_platform.issue_app_token(audience=GRAPH, roles=("Directory.Read.All",))
    _assert_graph_error(
        _get(identity_http, base, app_only),
        400,
        "BadRequest",
        "/me request is only valid with delegated authentication flow.",
    )


def test_an_outage_answers_503_in_graphs_shape(
    identity_platform: IdentityPlatform, identity_http: requests.Session
) -> None:
    token = identity_platform.issue_access_token("alice", audience=GRAPH, scopes=["User.Read"])
    identity_platform.graph.fail_with(503)
    try:
        response = _get(
            identity_http, f"{identity_platform.graph_endpoint}/v1.0/me/transitiveMemberOf", token
        )
    finally:
        identity_platform.graph.fail_with(None)
    _assert_graph_error(response, 503, "serviceNotAvailable", "The service is temporarily unavailable.")
