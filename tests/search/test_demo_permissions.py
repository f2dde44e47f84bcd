"""The provisioned demo index, queried with tokens the real local identity platform issues."""

from __future__ import annotations

from collections import Counter

import pytest
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import ClientAuthenticationError, ResourceNotFoundError
from azure.search.documents import SearchClient

from mcp_server.localcloud.identity.platform import IdentityPlatform
from mcp_server.localcloud.search.service import SearchService
from mcp_server.localcloud.tenant import Tenant
from mcp_server.provision import DEMO_DOCUMENTS, PUBLIC, SAMPLE_SET, DemoDocument

SEARCH = "https://search.azure.com"


def _readers(doc: DemoDocument, tenant: Tenant) -> set[str] | None:
    """The logins that may read ``doc`` by Azure's rules (None: everyone), from the tenant's memberships."""
    if doc.public:
        return None
    group_ids = {g.id for g in tenant.groups if g.name in doc.groups}
    return {u.login for u in tenant.users if u.login in doc.users or group_ids & set(u.groups)}


def _expected(login: str | None, tenant: Tenant) -> set[str]:
    out = set()
    for doc in DEMO_DOCUMENTS:
        readers = _readers(doc, tenant)
        if readers is None or (login is not None and login in readers):
            out.add(doc.id)
    return out


@pytest.fixture(scope="module")
def client(search_service: SearchService, demo_search_index: str) -> SearchClient:
    return SearchClient(
        search_service.endpoint,
        demo_search_index,
        AzureKeyCredential(search_service.api_key.get_secret_value()),
    )


@pytest.mark.parametrize("login", ["alice", "bob", "carol", "dave", "erin"])
def test_each_demo_user_sees_exactly_what_their_oid_and_groups_admit(
    client: SearchClient, identity_platform: IdentityPlatform, demo_tenant: Tenant, login: str
) -> None:
    token = identity_platform.issue_access_token(login, audience=SEARCH, scopes=["user_impersonation"])
    # The older keyword the SDK still maps (x_ms_query_source_authorization), as older client code calls it.
    results = client.search(
        search_text="*", x_ms_query_source_authorization=token, select="name,oid,group", order_by="id asc"
    )
    names = [r["name"] for r in results]
    expected = _expected(login, demo_tenant)
    by_id = {d.id: d for d in DEMO_DOCUMENTS}
    assert names == [by_id[i].name for i in sorted(expected)]
    public = {d.id for d in DEMO_DOCUMENTS if d.public}
    assert public < expected and expected - public, "some public and some non-public documents"


def test_demo_data_properties(demo_tenant: Tenant) -> None:
    views = {u.login: frozenset(_expected(u.login, demo_tenant)) for u in demo_tenant.users}
    assert len(set(views.values())) == len(views), "no two users see the same set"
    assert all(len(v) < len(DEMO_DOCUMENTS) for v in views.values()), "nobody sees everything"
    assert len(views["alice"] & set(SAMPLE_SET)) == 3 and len(SAMPLE_SET) == 5


def test_alice_sees_three_of_the_five_sample_documents(
    client: SearchClient, identity_platform: IdentityPlatform
) -> None:
    token = identity_platform.issue_access_token("alice", audience=SEARCH, scopes=["user_impersonation"])
    sample_filter = "search.in(id, '" + ",".join(SAMPLE_SET) + "', ',')"
    found = [r["id"] for r in client.search("*", filter=sample_filter, query_source_authorization=token)]
    assert len(found) == 3


def test_no_header_returns_public_documents_only(client: SearchClient) -> None:
    found = {r["id"] for r in client.search("*")}
    assert found == {d.id for d in DEMO_DOCUMENTS if d.public}
    assert all(PUBLIC in (r["oid"] or []) + (r["group"] or []) for r in client.search("*"))


def test_platform_tokens_that_must_be_refused(
    client: SearchClient, identity_platform: IdentityPlatform, search_service: SearchService
) -> None:
    forged = identity_platform.issue_access_token(
        "alice", audience=SEARCH, scopes=["user_impersonation"], sign_with=identity_platform.forge_key()
    )
    expired = identity_platform.issue_access_token(
        "alice", audience=SEARCH, scopes=["user_impersonation"], lifetime=-600
    )
    api_token = identity_platform.issue_access_token("alice")  # the MCP API's own token, not exchanged
    before = Counter(search_service.audiences_seen)
    for token, message in (
        (forged, "Signature validation failed"),
        (expired, "expired"),
        (api_token, "Audience claim is invalid in the JWT token."),
    ):
        with pytest.raises(ClientAuthenticationError) as info:
            list(client.search("*", query_source_authorization=token))
        assert message in str(info.value.message)
    # The service's record shows the unexchanged API token arrived (what the MCP server tests assert never happens).
    assert Counter(search_service.audiences_seen) - before == {SEARCH: 2, identity_platform.api_client_id: 1}


def test_get_document_by_key_is_trimmed(
    client: SearchClient, identity_platform: IdentityPlatform, demo_tenant: Tenant
) -> None:
    bob = identity_platform.issue_access_token("bob", audience=SEARCH, scopes=["user_impersonation"])
    assert client.get_document("doc-05", query_source_authorization=bob)["name"] == "Bob's onboarding plan"
    with pytest.raises(ResourceNotFoundError):
        client.get_document("doc-03", query_source_authorization=bob)  # alice's review
    with pytest.raises(ResourceNotFoundError):
        client.get_document("doc-13", query_source_authorization=bob)  # nobody's
