"""A local search service as strict as Azure AI Search: parameters it does not implement are refused (never dropped),
every api-version the SDKs send is accepted and behaves as that version does, the documented limits hold, a token
from a tenant the service does not serve is a 401, and keyless callers need a role. Each case asserts the exact
refusal (status, Azure's error shape, message)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.core.credentials import AzureKeyCredential
from azure.search.documents import SearchClient
from azure.search.documents.indexes import SearchIndexClient

from mcp_server import search_versions
from mcp_server.localcloud.search.auth import EntraTokenValidator
from mcp_server.localcloud.search.roles import DATA_READER, SERVICE_CONTRIBUTOR
from mcp_server.localcloud.search.service import SearchService
from tests.search.conftest import Directory
from tests.search.helpers import ISSUER, TENANT, Signer
from tests.security.search_env import azure_error

PREVIEW = "2026-08-01-preview"
INDEX = "strict"
U1, U2 = "0d000000-0000-0000-0000-0000000000d1", "0d000000-0000-0000-0000-0000000000d2"
G1 = "0e000000-0000-0000-0000-0000000000e1"
READER_APP = "0f000000-0000-0000-0000-0000000000f1"  # a service principal holding Search Index Data Reader
ADMIN_APP = "0f000000-0000-0000-0000-0000000000f2"  # ... holding Search Service Contributor
NO_ROLE_APP = "0f000000-0000-0000-0000-0000000000f3"
FOREIGN = "99999999-8888-7777-6666-555555555555"
FIELDS = [
    {"name": "id", "type": "Edm.String", "key": True},
    {"name": "text", "type": "Edm.String", "searchable": True},
    {"name": "cat", "type": "Edm.String", "filterable": True, "facetable": True},
    {"name": "uids", "type": "Collection(Edm.String)", "permissionFilter": "userIds", "filterable": True},
    {"name": "gids", "type": "Collection(Edm.String)", "permissionFilter": "groupIds", "filterable": True},
]
DOCS = [
    {"id": "pub", "text": "river stone", "cat": "a", "uids": ["all"], "gids": []},
    {"id": "u1", "text": "river cloud", "cat": "a", "uids": [U1], "gids": []},
    {"id": "g1", "text": "stone cloud", "cat": "b", "uids": [], "gids": [G1]},
    {"id": "none", "text": "river", "cat": "b", "uids": ["none"], "gids": []},
]
ROLES = {READER_APP: {DATA_READER}, ADMIN_APP: {SERVICE_CONTRIBUTOR}, NO_ROLE_APP: set()}


def roles_of(tenant_id: str, oid: str) -> frozenset[str] | None:
    return frozenset(ROLES.get(oid, ())) if tenant_id == TENANT else None


class Strict:
    def __init__(self, service: SearchService, signer: Signer) -> None:
        self.service, self.signer = service, signer
        self.key = service.api_key.get_secret_value()
        self.session = requests.Session()
        self.session.trust_env = False

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        version: str = PREVIEW,
        user: str | None = None,
        bearer: str | None = None,
        params: dict[str, str] | None = None,
    ) -> requests.Response:
        headers = {"content-type": "application/json"}
        if bearer is None:
            headers["api-key"] = self.key
        else:
            headers["authorization"] = f"Bearer {bearer}"
        if user is not None:
            headers["x-ms-query-source-authorization"] = user
        data = json.dumps(body).encode() if body is not None else None
        url = f"{self.service.endpoint}{path}"
        response = self.session.request(
            method, url, params={"api-version": version, **(params or {})}, data=data, headers=headers
        )
        assert response.status_code < 500, response.text
        return response

    def search(self, body: dict[str, Any], **kw: Any) -> requests.Response:
        return self.request("POST", f"/indexes('{INDEX}')/docs/search.post.search", body, **kw)

    def ids(self, response: requests.Response) -> set[str]:
        assert response.status_code == 200, response.text
        return {r["id"] for r in response.json()["value"]}


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Strict]:
    signer = Signer()
    directory = Directory()
    directory.groups[U2] = [G1]
    service = SearchService(
        Path(tmp_path_factory.mktemp("strict-search")),
        secrets.token_urlsafe(24),
        EntraTokenValidator(signer.jwks, issuers={ISSUER}),
        directory,
        roles_of=roles_of,
    )
    with service:
        s = Strict(service, signer)
        index = {"name": INDEX, "fields": FIELDS, "permissionFilterOption": "enabled"}
        assert s.request("POST", "/indexes", index).status_code == 201
        assert s.request("POST", f"/indexes('{INDEX}')/docs/search.index", {"value": DOCS}).status_code == 200
        yield s
        s.session.close()


# ---- body parameters ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["facet", "serach", "Top", "filters", "$filter", "queryTyp", "select "])
def test_unknown_body_parameters_are_refused_with_azures_message(strict: Strict, name: str) -> None:
    azure_error(
        strict.search({"search": "*", name: "x"}),
        400,
        f"The request is invalid. Details: parameters : The parameter '{name}' in the request payload is not a "
        "valid parameter for the operation 'search'.\r\n",
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [("facets", ["cat"]), ("highlight", "text"), ("highlightPreTag", "<b>"), ("scoringProfile", "p")]
    + [("vectorQueries", []), ("semanticConfiguration", "s"), ("minimumCoverage", 80)],
)
def test_parameters_azure_has_but_this_service_does_not_are_refused(
    strict: Strict, name: str, value: Any
) -> None:
    azure_error(
        strict.search({"search": "*", name: value}),
        400,
        f"The parameter '{name}' is valid for Azure AI Search but not implemented by the local search service, "
        "which refuses it rather than ignore it. Remove it from the request.",
    )


def test_an_explicit_null_is_the_default_not_a_refusal(strict: Strict) -> None:
    assert strict.ids(strict.search({"search": "*", "facets": None, "highlight": None})) == {"pub"}


def test_get_search_refuses_unknown_and_unsupported_query_parameters(strict: Strict) -> None:
    route = f"/indexes/{INDEX}/docs"
    azure_error(
        strict.request("GET", route, params={"search": "*", "facet": "cat"}),
        400,
        "The parameter 'facet' is valid for Azure AI Search but not implemented by the local search service, "
        "which refuses it rather than ignore it. Remove it from the request.",
    )
    azure_error(
        strict.request("GET", route, params={"search": "*", "$filtre": "cat eq 'a'"}),
        400,
        "The request is invalid. Details: the query parameter '$filtre' is not a valid parameter for the "
        "operation 'search'.",
    )


# ---- api-versions ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", search_versions.SDK_API_VERSIONS)
def test_every_sdk_api_version_is_accepted_and_trims_only_where_it_can(strict: Strict, version: str) -> None:
    """The real SDK at each version, the user's token sent as a raw header: honoured only by versions with
    document-level access control; every other version runs the query with no user (public documents only)."""
    with SearchClient(
        strict.service.endpoint, INDEX, AzureKeyCredential(strict.key), api_version=version
    ) as client:
        headers = {"x-ms-query-source-authorization": strict.signer.token(U1)}
        ids = {r["id"] for r in client.search("*", select=["id"], headers=headers)}
    if search_versions.has_permission_filtering(version):
        assert ids == {"pub", "u1"}
    else:
        assert ids == {"pub"}


def test_api_versions_compare_case_insensitively(strict: Strict) -> None:
    assert strict.ids(
        strict.search({"search": "*"}, version="2025-05-01-Preview", user=strict.signer.token(U1))
    ) == {
        "pub",
        "u1",
    }


@pytest.mark.parametrize("version", ["2026-04-01", "2025-09-01", "2024-07-01"])
def test_permission_attributes_are_unknown_to_a_version_without_them(strict: Strict, version: str) -> None:
    type_version = "V" + version.replace("-", "_")
    field = {"name": "x", "fields": FIELDS}
    azure_error(
        strict.request("POST", "/indexes", field, version=version),
        400,
        "The request is invalid. Details: definition : The property 'permissionFilter' does not exist on type "
        f"'Microsoft.Azure.Search.{type_version}.IndexField'. Make sure to only use property names that are "
        "defined by the type. (Document-level access control needs a preview api-version such as "
        "2026-08-01-preview.)",
    )
    plain = [{k: v for k, v in f.items() if k != "permissionFilter"} for f in FIELDS]
    azure_error(
        strict.request(
            "POST",
            "/indexes",
            {"name": "x", "fields": plain, "permissionFilterOption": "enabled"},
            version=version,
        ),
        400,
        "The request is invalid. Details: definition : The property 'permissionFilterOption' does not exist on "
        f"type 'Microsoft.Azure.Search.{type_version}.Index'. Make sure to only use property names that are defined "
        "by the type. (Document-level access control needs a preview api-version such as 2026-08-01-preview.)",
    )
    shown = strict.request("GET", f"/indexes('{INDEX}')", version=version).json()
    assert "permissionFilterOption" not in shown
    assert all("permissionFilter" not in f for f in shown["fields"])


def test_an_update_under_a_ga_version_cannot_switch_trimming_off(strict: Strict) -> None:
    """The SDK round-trips the definition at 2026-04-01 (which cannot see the permission attributes): they stay."""
    with SearchIndexClient(
        strict.service.endpoint, AzureKeyCredential(strict.key), api_version="2026-04-01"
    ) as ga:
        ga.create_or_update_index(ga.get_index(INDEX))
    shown = strict.request("GET", f"/indexes('{INDEX}')").json()
    assert shown["permissionFilterOption"] == "enabled"
    assert {f["name"]: f["permissionFilter"] for f in shown["fields"]}["uids"] == "userIds"
    assert strict.ids(strict.search({"search": "*"}, user=strict.signer.token(U2))) == {"pub", "g1"}


def test_count_is_the_whole_index_whatever_the_identity(strict: Strict) -> None:
    """$count takes no user token: the api-key holder's view of the whole index (documented as such)."""
    count = strict.request("GET", f"/indexes('{INDEX}')/docs/$count", user=strict.signer.token(U1))
    assert count.status_code == 200 and count.text == str(len(DOCS))


# ---- limits ------------------------------------------------------------------------------------------------------


def test_a_permission_field_holds_at_most_1000_values(strict: Strict) -> None:
    many = [f"0a000000-0000-0000-0000-{i:012d}" for i in range(1001)]
    batch = {"value": [{"id": "big", "text": "x", "uids": many}]}
    azure_error(
        strict.request("POST", f"/indexes('{INDEX}')/docs/search.index", batch),
        400,
        "The request is invalid. Details: the permission filter field 'uids' holds 1001 values; at most 1000 are "
        "allowed per field. Grant access through a group instead.",
    )
    batch["value"][0]["uids"] = many[:1000]
    response = strict.request("POST", f"/indexes('{INDEX}')/docs/search.index", batch)
    assert response.status_code == 200, response.text
    strict.request(
        "POST",
        f"/indexes('{INDEX}')/docs/search.index",
        {"value": [{"@search.action": "delete", "id": "big"}]},
    )


def test_an_index_holds_at_most_five_unique_rbac_scopes(strict: Strict) -> None:
    fields = [
        {"name": "id", "type": "Edm.String", "key": True},
        {"name": "scope", "type": "Edm.String", "permissionFilter": "rbacScope", "filterable": True},
    ]
    assert strict.request("POST", "/indexes", {"name": "scopes", "fields": fields}).status_code == 201
    route = "/indexes('scopes')/docs/search.index"
    container = "/subscriptions/s/resourceGroups/r/providers/Microsoft.Storage/storageAccounts/a/blobServices/default/containers/c{}"
    five = {"value": [{"id": f"d{i}", "scope": container.format(i)} for i in range(5)]}
    assert strict.request("POST", route, five).status_code == 200
    sixth = {
        "value": [{"id": "d5", "scope": container.format(5)}, {"id": "d6", "scope": container.format(0)}]
    }
    azure_error(
        strict.request("POST", route, sixth),
        400,
        "The request is invalid. Details: the index 'scopes' would hold 6 unique rbacScope values; at most 5 are "
        "allowed per index. Reuse existing container scopes or grant access through userIds/groupIds.",
    )
    # The refused batch left nothing behind, not even its document that reused an existing scope.
    assert strict.request("GET", "/indexes('scopes')/docs/$count").text == "5"


# ---- tenants and keyless callers ---------------------------------------------------------------------------------


def test_a_user_token_from_a_tenant_the_service_does_not_serve_is_401(strict: Strict) -> None:
    azure_error(
        strict.search({"search": "*"}, user=strict.signer.token(U1, tid=FOREIGN)),
        401,
        f"The query source authorization token was issued for tenant '{FOREIGN}', which this search service does "
        "not serve. Sign in to the service's own tenant.",
    )


def test_a_bearer_token_from_a_tenant_the_service_does_not_serve_is_401(strict: Strict) -> None:
    azure_error(
        strict.search({"search": "*"}, bearer=strict.signer.token(READER_APP, tid=FOREIGN, idtyp="app")),
        401,
        f"The Authorization bearer token was issued for tenant '{FOREIGN}', which this search service does not "
        "serve. Sign in to the service's own tenant.",
    )


def test_bearer_callers_need_the_role_of_the_operation(strict: Strict) -> None:
    reader = strict.signer.token(READER_APP, idtyp="app")
    assert strict.ids(strict.search({"search": "*"}, bearer=reader, user=strict.signer.token(U1))) == {
        "pub",
        "u1",
    }
    azure_error(
        strict.search({"search": "*"}, bearer=strict.signer.token(NO_ROLE_APP, idtyp="app")),
        403,
        f"Authorization failed. The principal '{NO_ROLE_APP}' has no role assignment on this search service that "
        "allows this operation; assign it Search Index Data Reader or Search Index Data Contributor.",
    )
    azure_error(
        strict.request("DELETE", f"/indexes('{INDEX}')", bearer=reader),
        403,
        f"Authorization failed. The principal '{READER_APP}' has no role assignment on this search service that "
        "allows this operation; assign it Search Service Contributor.",
    )
    # The service contributor manages indexes but may not read their documents.
    admin = strict.signer.token(ADMIN_APP, idtyp="app")
    assert strict.request("GET", f"/indexes('{INDEX}')", bearer=admin).status_code == 200
    azure_error(
        strict.search({"search": "*"}, bearer=admin),
        403,
        f"Authorization failed. The principal '{ADMIN_APP}' has no role assignment on this search service that "
        "allows this operation; assign it Search Index Data Reader or Search Index Data Contributor.",
    )


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("not.a.jwt", "The Authorization bearer token was rejected: The token is not a valid JWT token."),
        (
            "",
            "Authentication required: send the service's admin key in the api-key header, or an Entra token in Authorization: Bearer.",
        ),
    ],
)
def test_a_bad_bearer_token_is_401(strict: Strict, token: str, message: str) -> None:
    azure_error(strict.search({"search": "*"}, bearer=token), 401, message)


def test_a_bearer_token_for_another_audience_is_401(strict: Strict) -> None:
    azure_error(
        strict.search(
            {"search": "*"}, bearer=strict.signer.token(READER_APP, aud="api://other", idtyp="app")
        ),
        401,
        "The Authorization bearer token was rejected: Audience claim is invalid in the JWT token.",
    )


def test_elevated_read_is_never_a_way_around_trimming(strict: Strict) -> None:
    """Not implemented for Bearer callers (400), refused for the api-key (403): never an untrimmed result."""
    headers_route = f"/indexes('{INDEX}')/docs/search.post.search"
    reader = strict.signer.token(READER_APP, idtyp="app")
    response = strict.session.post(
        f"{strict.service.endpoint}{headers_route}",
        params={"api-version": PREVIEW},
        json={"search": "*"},
        headers={"authorization": f"Bearer {reader}", "x-ms-enable-elevated-read": "true"},
    )
    azure_error(
        response, 400, "Elevated read is not implemented by the local search service; remove the header."
    )
