"""The real azure-search-documents 12.1.0b2 SDK, unchanged, against the local search service."""

from __future__ import annotations

from collections import Counter

import pytest
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError
from azure.search.documents import SearchClient
from azure.search.documents.indexes import SearchIndexClient
from azure.search.documents.indexes.models import (
    PermissionFilter,
    SearchableField,
    SearchField,
    SearchFieldDataType,
    SearchIndex,
    SearchIndexPermissionFilterOption,
    SimpleField,
)

from mcp_server.localcloud.search.service import SearchService
from tests.search.conftest import Directory
from tests.search.helpers import Signer

STRINGS = SearchFieldDataType.Collection(SearchFieldDataType.STRING)
U1, U2, U3 = (
    "0a000000-0000-0000-0000-000000000001",
    "0a000000-0000-0000-0000-000000000002",
    "0a000000-0000-0000-0000-000000000003",
)
G1, G2 = "0b000000-0000-0000-0000-000000000001", "0b000000-0000-0000-0000-000000000002"


def _index(name: str) -> SearchIndex:
    return SearchIndex(
        name=name,
        fields=[
            SimpleField(name="id", type=SearchFieldDataType.STRING, key=True, sortable=True),
            SearchableField(name="name", sortable=True),
            SearchableField(name="content"),
            SimpleField(name="rank", type=SearchFieldDataType.INT32, filterable=True, sortable=True),
            SearchField(
                name="oid", type=STRINGS, filterable=True, permission_filter=PermissionFilter.USER_IDS
            ),
            SearchField(
                name="group", type=STRINGS, filterable=True, permission_filter=PermissionFilter.GROUP_IDS
            ),
        ],
        permission_filter_option=SearchIndexPermissionFilterOption.ENABLED,
    )


# Who may read what: (key, oid field, group field).
ACL = [
    ("p1", ["all"], []),
    ("p2", ["none"], ["all"]),
    ("u1", [U1], []),
    ("u12", [U1, U2], []),
    ("g1", [], [G1]),
    ("g2", ["none"], [G2]),
    ("u3g2", [U3], [G2]),
    ("nobody", [], []),
    ("none", ["none"], ["none"]),
]


@pytest.fixture(scope="module")
def clients(own_search: SearchService, directory: Directory) -> tuple[SearchIndexClient, SearchClient]:
    credential = AzureKeyCredential(own_search.api_key.get_secret_value())
    index_client = SearchIndexClient(own_search.endpoint, credential)
    created = index_client.create_or_update_index(_index("acl"))
    assert created.permission_filter_option == SearchIndexPermissionFilterOption.ENABLED
    client = SearchClient(own_search.endpoint, "acl", credential)
    results = client.upload_documents(
        [
            {
                "id": key,
                "name": f"report {key}",
                "content": f"quarterly report about {key}",
                "rank": i,
                "oid": oid,
                "group": grp,
            }
            for i, (key, oid, grp) in enumerate(ACL)
        ]
    )
    assert [r.status_code for r in results] == [201] * len(ACL)
    directory.groups.update({U1: [G1], U2: [], U3: [G1, G2]})
    return index_client, client


def _visible(oid: str | None, groups: list[str]) -> set[str]:
    """What Azure's documented rules admit: the oid in userIds, a group in groupIds, or 'all' anywhere."""
    out = set()
    for key, oids, grps in ACL:
        if "all" in oids or "all" in grps or (oid is not None and oid in oids) or set(groups) & set(grps):
            out.add(key)
    return out


def test_index_round_trips_permission_attributes(clients: tuple[SearchIndexClient, SearchClient]) -> None:
    index_client, _ = clients
    index = index_client.get_index("acl")
    by_name = {f.name: f for f in index.fields}
    assert by_name["oid"].permission_filter == PermissionFilter.USER_IDS
    assert by_name["group"].permission_filter == PermissionFilter.GROUP_IDS
    assert by_name["id"].key is True
    assert index.permission_filter_option == SearchIndexPermissionFilterOption.ENABLED
    assert "acl" in list(index_client.list_index_names())


def test_no_header_gives_public_documents_only(clients: tuple[SearchIndexClient, SearchClient]) -> None:
    _, client = clients
    found = {d["id"] for d in client.search("*")}
    assert found == _visible(None, []) == {"p1", "p2"}


@pytest.mark.parametrize("oid", [U1, U2, U3])
def test_each_user_sees_what_their_ids_and_groups_admit(
    clients: tuple[SearchIndexClient, SearchClient], signer: Signer, directory: Directory, oid: str
) -> None:
    _, client = clients
    token = signer.token(oid)
    found = {d["id"] for d in client.search("*", query_source_authorization=token)}
    assert found == _visible(oid, directory.groups[oid])
    # The older spelling of the same keyword, and a "Bearer " prefix, trim the same way.
    legacy = {d["id"] for d in client.search("*", x_ms_query_source_authorization="Bearer " + token)}
    assert legacy == found
    # Text search and the caller's filter are ANDed with the trimming.
    ranked = {d["id"] for d in client.search("report", filter="rank ge 2", query_source_authorization=token)}
    assert ranked == {k for k in found if [a[0] for a in ACL].index(k) >= 2}


def test_get_document_is_trimmed_the_same_way(
    clients: tuple[SearchIndexClient, SearchClient], signer: Signer
) -> None:
    _, client = clients
    token = signer.token(U1)
    assert client.get_document("u1", query_source_authorization=token)["name"] == "report u1"
    assert client.get_document("p1")["id"] == "p1"
    with pytest.raises(ResourceNotFoundError):
        client.get_document("u1")  # no header: not public
    with pytest.raises(ResourceNotFoundError):
        client.get_document("g2", query_source_authorization=token)


def test_invalid_tokens_are_errors_never_wider_results(
    clients: tuple[SearchIndexClient, SearchClient], signer: Signer
) -> None:
    _, client = clients
    forged = Signer(kid=signer.kid).token(U3)  # same kid, other key
    cases = {
        "forged": (forged, "Signature validation failed"),
        "expired": (signer.token(U3, lifetime=-3600), "expired"),
        "wrong audience": (
            signer.token(U3, aud="api://some-other-api"),
            "Audience claim is invalid in the JWT token.",
        ),
        "wrong issuer": (signer.token(U3, iss="https://evil.example/"), "Issuer claim is invalid"),
        "unknown key": (signer.token(U3, kid="not-a-known-kid"), "kid"),
        "garbage": ("not.a.jwt", "not a valid JWT"),
    }
    for name, (token, message) in cases.items():
        with pytest.raises(ClientAuthenticationError) as info:
            list(client.search("*", query_source_authorization=token))
        assert message in str(info.value.message), name
        with pytest.raises(ClientAuthenticationError):
            client.get_document("p1", query_source_authorization=token)


def test_directory_failure_fails_the_query(
    own_search: SearchService,
    clients: tuple[SearchIndexClient, SearchClient],
    signer: Signer,
    directory: Directory,
) -> None:
    # No SDK retries: a 5xx is retried with back-off by default, which only slows the test down.
    credential = AzureKeyCredential(own_search.api_key.get_secret_value())
    client = SearchClient(own_search.endpoint, "acl", credential, retry_total=0)
    directory.fail = True
    try:
        with pytest.raises(HttpResponseError) as info:
            list(client.search("*", query_source_authorization=signer.token(U1)))
        assert info.value.status_code == 503
    finally:
        directory.fail = False


def test_audiences_of_received_user_tokens_are_recorded(
    own_search: SearchService, clients: tuple[SearchIndexClient, SearchClient], signer: Signer
) -> None:
    _, client = clients
    before = Counter(own_search.audiences_seen)
    list(client.search("*", query_source_authorization=signer.token(U2)))
    with pytest.raises(ClientAuthenticationError):
        list(client.search("*", query_source_authorization=signer.token(U2, aud="api://my-mcp-api")))
    assert Counter(own_search.audiences_seen) - before == {
        "https://search.azure.com": 1,
        "api://my-mcp-api": 1,
    }


def test_count_and_document_count(clients: tuple[SearchIndexClient, SearchClient]) -> None:
    _, client = clients
    assert client.get_document_count() == len(ACL)
    results = client.search("*", include_total_count=True, top=1)
    assert results.get_count() == 2  # public documents only, without a user token
    assert len(list(results)) == 1


def test_more_than_1000_matches_page_through_the_iterator(own_search: SearchService) -> None:
    credential = AzureKeyCredential(own_search.api_key.get_secret_value())
    SearchIndexClient(own_search.endpoint, credential).create_index(
        SearchIndex(
            name="many",
            fields=[
                SimpleField(name="id", type=SearchFieldDataType.STRING, key=True, sortable=True),
                SearchableField(name="text"),
                SimpleField(name="n", type=SearchFieldDataType.INT32, filterable=True, sortable=True),
            ],
        )
    )
    client = SearchClient(own_search.endpoint, "many", credential)
    docs = [
        {"id": f"k{i:05d}", "text": "common " + ("odd" if i % 2 else "even"), "n": i} for i in range(2300)
    ]
    for start in range(0, len(docs), 1000):
        assert all(r.succeeded for r in client.upload_documents(docs[start : start + 1000]))
    # No top: the service pages 50 at a time with @search.nextPageParameters; the SDK follows them all.
    results = client.search("common", include_total_count=True, order_by=["n asc"])
    assert results.get_count() == 2300
    assert [d["n"] for d in results] == list(range(2300))
    # top above the 1000 page limit: 1000, then the rest, exactly top in total.
    top = [d["n"] for d in client.search("odd", top=1100, skip=3, order_by=["n desc"])]
    odds = sorted((i for i in range(2300) if i % 2), reverse=True)
    assert top == odds[3 : 3 + 1100]
    pages = list(client.search("*", top=1500, order_by=["n asc"]).by_page())
    assert [len(list(p)) for p in pages] == [1000, 500]


def test_concurrent_users_never_see_each_others_results(
    own_search: SearchService,
    clients: tuple[SearchIndexClient, SearchClient],
    signer: Signer,
    directory: Directory,
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    users = (U1, U2, U3)
    tokens = {oid: signer.token(oid) for oid in users}
    expected = {oid: _visible(oid, directory.groups[oid]) for oid in users}
    credential = AzureKeyCredential(own_search.api_key.get_secret_value())

    def run(i: int) -> tuple[str, set[str]]:
        oid = users[i % 3]
        client = SearchClient(own_search.endpoint, "acl", credential)
        return oid, {d["id"] for d in client.search("*", query_source_authorization=tokens[oid])}

    with ThreadPoolExecutor(6) as pool:
        for oid, found in pool.map(run, range(36)):
            assert found == expected[oid]


def test_only_the_exact_special_values_grant_everyone(
    clients: tuple[SearchIndexClient, SearchClient],
) -> None:
    _, client = clients
    lookalikes = [
        {"id": f"look{i}", "name": "lookalike", "oid": [v], "group": []}
        for i, v in enumerate(["ALL", " all", "All"])
    ]
    assert all(r.succeeded for r in client.upload_documents(lookalikes))
    try:
        assert {d["id"] for d in client.search("lookalike")} == set()
    finally:
        client.delete_documents([{"id": d["id"]} for d in lookalikes])
