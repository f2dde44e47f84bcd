"""Keyless search (``OBO_CONSOLE_SEARCH_AUTH=entra``): real azure-identity app tokens from the local identity
platform, real azure-search-documents, the local search service checking the app's role assignments."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.core.exceptions import HttpResponseError, ServiceRequestError
from azure.core.pipeline.transport import AsyncioRequestsTransport
from azure.search.documents import SearchClient
from azure.search.documents.aio import SearchClient as AsyncSearchClient
from pydantic import SecretStr

from console.cli import main
from mcp_server import provision as provisioning
from mcp_server.errors import UserError
from mcp_server.localcloud.identity.platform import IdentityPlatform
from mcp_server.localcloud.search.local import platform_validator, tenant_directory
from mcp_server.localcloud.search.roles import RoleLookup
from mcp_server.localcloud.search.service import SearchService
from mcp_server.localcloud.tenant import Tenant
from mcp_server.search_credential import SearchAuthentication, client_secret_auth
from mcp_server.server.app import create_server
from mcp_server.server.config import ServerConfig
from mcp_server.server.runner import serve_threaded
from mcp_server.server.search_auth import server_async_search_auth
from mcp_server.settings import ServerSettings
from mcp_server.stack import LocalStack
from mcp_server.stack_state import StackState, write_state
from tests.fixtures.stack import api_token
from tests.server.helpers import call, expected_names, plain_client_get_documents

SEARCH = "https://search.azure.com"
INDEX = "keyless"
DEMO_COUNT = len(provisioning.DEMO_DOCUMENTS)
ALICE_DOCS = {f"doc-{n:02d}" for n in (1, 2, 3, 6, 7, 8, 9, 11, 12, 14, 15)}


def app_auth(platform: IdentityPlatform, key: str) -> SearchAuthentication:
    app = platform.tenant.app(key)
    assert app.client_secret is not None
    return client_secret_auth(platform.authority, app.client_id, app.client_secret, platform.ca_cert_path)


def no_roles(tenant_id: str, oid: str) -> frozenset[str] | None:
    return frozenset() if tenant_id else None


@pytest.fixture(scope="module")
def keyless_search(
    tmp_path_factory: pytest.TempPathFactory, identity_platform: IdentityPlatform, demo_tenant: Tenant
) -> Iterator[SearchService]:
    """A search service trusting the platform, with the tenant file's role assignments, the demo index provisioned
    keyless by the provisioner app."""
    folder = Path(tmp_path_factory.mktemp("keyless-search"))
    service = _service(folder, identity_platform, demo_tenant, demo_tenant.search_roles_of)
    with service:
        auth = app_auth(identity_platform, "provisioner")
        report = provisioning.provision(
            service.endpoint, auth, INDEX, provisioning.principals_from_tenant(demo_tenant)
        )
        auth.close()
        assert report.documents == DEMO_COUNT and report.created == DEMO_COUNT
        yield service


def test_the_api_app_searches_as_the_user_with_its_reader_role(
    keyless_search: SearchService, identity_platform: IdentityPlatform
) -> None:
    auth = app_auth(identity_platform, "api")
    user = identity_platform.issue_access_token("alice", audience=SEARCH)
    with SearchClient(keyless_search.endpoint, INDEX, **auth.client_kwargs()) as client:
        ids = {r["id"] for r in client.search("*", query_source_authorization=user, select=["id"])}
        public = {r["id"] for r in client.search("*", select=["id"])}
        assert client.get_document_count() == DEMO_COUNT  # $count: the whole index, whatever the identity
    auth.close()
    assert ids == ALICE_DOCS
    assert public == {"doc-01", "doc-08", "doc-12"}  # no user token: public documents only


def test_the_reader_role_cannot_load_documents_or_manage_the_index(
    keyless_search: SearchService, identity_platform: IdentityPlatform, demo_tenant: Tenant
) -> None:
    auth = app_auth(identity_platform, "api")
    principal = demo_tenant.api_app.service_principal_id
    with (
        SearchClient(keyless_search.endpoint, INDEX, **auth.client_kwargs()) as client,
        pytest.raises(HttpResponseError) as info,
    ):
        client.upload_documents([{"id": "doc-99", "name": "planted"}])
    auth.close()
    assert info.value.status_code == 403
    assert info.value.error is not None
    assert info.value.error.message == (
        f"Authorization failed. The principal '{principal}' has no role assignment on this search service that "
        "allows this operation; assign it Search Index Data Contributor."
    )


def _service(
    folder: Path, identity_platform: IdentityPlatform, demo_tenant: Tenant, roles_of: RoleLookup | None
) -> SearchService:
    """A search service of its own (a fresh admin key) trusting the platform's tokens; ``roles_of`` None: role-based
    access off (api-key only)."""
    return SearchService(
        folder,
        secrets.token_urlsafe(24),
        platform_validator(identity_platform),
        tenant_directory(demo_tenant),
        roles_of=roles_of,
    )


def _api_app_search_refused(service: SearchService, identity_platform: IdentityPlatform) -> HttpResponseError:
    """What the service answers the API app's bearer-token search (started and stopped here)."""
    auth = app_auth(identity_platform, "api")
    with (
        service,
        SearchClient(service.endpoint, INDEX, **auth.client_kwargs()) as client,
        pytest.raises(HttpResponseError) as info,
    ):
        list(client.search("*"))
    auth.close()
    return info.value


def test_an_app_without_a_role_is_refused_403(
    tmp_path: Path, identity_platform: IdentityPlatform, demo_tenant: Tenant
) -> None:
    service = _service(tmp_path, identity_platform, demo_tenant, no_roles)
    principal = demo_tenant.api_app.service_principal_id
    refused = _api_app_search_refused(service, identity_platform)
    assert refused.status_code == 403
    assert refused.error is not None and refused.error.message == (
        f"Authorization failed. The principal '{principal}' has no role assignment on this search service that "
        "allows this operation; assign it Search Index Data Reader or Search Index Data Contributor."
    )


def test_bearer_is_refused_where_role_based_access_is_off(
    tmp_path: Path, identity_platform: IdentityPlatform, demo_tenant: Tenant
) -> None:
    """A service without role assignments wired: api-key only, as a key-only Azure service."""
    plain = _service(tmp_path, identity_platform, demo_tenant, None)
    refused = _api_app_search_refused(plain, identity_platform)
    assert refused.status_code == 401
    assert refused.error is not None and refused.error.message == (
        "Bearer (role-based) authentication is not enabled on this search service; send an api-key."
    )


def test_bearer_tokens_never_travel_over_plain_http_beyond_loopback(
    identity_platform: IdentityPlatform,
) -> None:
    auth = app_auth(identity_platform, "api")
    with (
        SearchClient("http://search.example.invalid", INDEX, **auth.client_kwargs()) as client,
        pytest.raises(ServiceRequestError, match="non-TLS protected"),
    ):
        list(client.search("*"))
    auth.close()


async def test_the_mcp_server_searches_keyless(local_stack: LocalStack) -> None:
    """With search_auth=entra and a wrong api-key, the server still returns exactly alice's documents: its calls
    ride on the API app's Entra token, and the user's view on her OBO token."""
    config = local_stack.server_config(
        port=0, search_auth="entra", search_api_key=SecretStr("not-the-key-" + "x" * 20)
    )
    threaded = serve_threaded(create_server(config))
    try:
        url = f"{threaded.base_url}/mcp"
        documents = await plain_client_get_documents(url, api_token(local_stack, "alice"))
    finally:
        threaded.stop()
    assert {d["name"] for d in documents} == expected_names(local_stack, "alice")


async def test_the_mcp_server_without_a_role_fails_closed(
    local_stack: LocalStack, tmp_path: Path, identity_platform: IdentityPlatform
) -> None:
    assert local_stack.identity is not None
    service = SearchService(
        tmp_path,
        local_stack.search_key,
        platform_validator(local_stack.identity),
        tenant_directory(local_stack.tenant),
        roles_of=no_roles,
    )
    with service:
        config = local_stack.server_config(port=0, search_auth="entra", search_endpoint=service.endpoint)
        threaded = serve_threaded(create_server(config))
        try:
            result = await call(f"{threaded.base_url}/mcp", api_token(local_stack, "alice"))
        finally:
            threaded.stop()
    principal = local_stack.tenant.api_app.service_principal_id
    # The server reads the index definition first (its fields), which needs Reader or Search Service Contributor.
    assert result.is_error
    assert result.content[0].text == (
        f"Search failed: the search service answered HTTP 403: () Authorization failed. The principal '{principal}' "
        "has no role assignment on this search service that allows this operation; assign it Search Service "
        "Contributor or Reader."
    )


@pytest.mark.parametrize("version", ["2026-04-01", "2025-09-01", "2024-07-01"])
def test_the_server_refuses_an_api_version_that_would_not_trim(local_stack: LocalStack, version: str) -> None:
    with pytest.raises(UserError) as info:
        local_stack.server_config(search_api_version=version)
    assert info.value.message == (
        f"OBO_CONSOLE_SEARCH_API_VERSION={version} has no document-level access control: the search service "
        "would ignore the user's token (x-ms-query-source-authorization) and the MCP server refuses to search "
        "untrimmed."
    )
    assert isinstance(local_stack.server_config(search_api_version="2025-11-01-preview"), ServerConfig)


def test_provision_cli_keyless_on_the_local_stack(
    search_service: SearchService,
    identity_platform: IdentityPlatform,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`OBO_CONSOLE_SEARCH_AUTH=entra obo-console provision`: the provisioner app's token, no admin key (the state
    file's key is wrong on purpose)."""
    write_state(
        StackState(
            search_endpoint=search_service.endpoint,
            search_index="cli-keyless",
            search_api_key=SecretStr("wrong-" + "k" * 30),
            authority=identity_platform.authority,
            ca_cert=str(identity_platform.ca_cert_path),
        )
    )
    monkeypatch.setenv("OBO_CONSOLE_SEARCH_AUTH", "entra")
    assert main(["provision", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["index"] == "cli-keyless" and report["created"] == DEMO_COUNT
    monkeypatch.setenv("OBO_CONSOLE_SEARCH_AUTH", "api-key")
    assert main(["provision"]) != 0  # the same state with the (wrong) admin key: refused
    assert "refused the request (403): Authorization failed." in capsys.readouterr().err


def test_azure_mode_keyless_needs_no_admin_key() -> None:
    base = dict(
        mode="azure",
        tenant_id="ce5f3f8f-ace8-464d-9563-b2a5c75a2005",
        api_client_id="c47511d1-328e-4830-afc4-c68df34d9781",
        api_client_secret=SecretStr("s" * 32),
        search_endpoint="https://example.search.windows.net",
    )
    config = ServerConfig.from_settings(ServerSettings(**base, search_auth="entra"))
    assert config.search_auth == "entra" and config.search_api_key.get_secret_value() == ""
    with pytest.raises(UserError) as info:
        ServerConfig.from_settings(ServerSettings(**base))
    assert (
        info.value.message == "The MCP server in Azure mode is missing settings: OBO_CONSOLE_SEARCH_API_KEY."
    )


async def test_async_clients_search_keyless_too(
    local_stack: LocalStack, identity_platform: IdentityPlatform
) -> None:
    """The aio SearchClient with the server's async credential (azure.identity.aio, requests on a thread)."""
    config = local_stack.server_config(search_auth="entra")
    auth = server_async_search_auth(config)
    assert local_stack.identity is not None
    user = local_stack.identity.issue_access_token("alice", audience=SEARCH)
    async with AsyncSearchClient(
        config.search_endpoint,
        config.search_index,
        **auth.client_kwargs(),
        transport=AsyncioRequestsTransport(),
    ) as client:
        results = await client.search("*", query_source_authorization=user, select=["id"])
        ids = {r["id"] async for r in results}
    await auth.close()
    assert ids == ALICE_DOCS


def test_the_server_command_refuses_an_untrimmed_api_version_before_starting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OBO_CONSOLE_SEARCH_API_VERSION", "2026-04-01")
    assert main(["server", "--port", "0", "--identity-port", "0", "--search-port", "0"]) == 1
    err = capsys.readouterr().err
    assert "OBO_CONSOLE_SEARCH_API_VERSION=2026-04-01 has no document-level access control" in err
    assert "2026-08-01-preview" in err  # the hint names versions that trim
