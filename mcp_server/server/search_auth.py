"""The MCP server's own credential for the search service (``OBO_CONSOLE_SEARCH_AUTH``): the admin api-key, or
keyless — the API app's client-credentials token from the local identity platform in local mode, azure-identity's
``DefaultAzureCredential`` in Azure mode. Either way the user's OBO token still rides in
``x-ms-query-source-authorization``: the app's credential authorizes the call, never the user's view."""

from __future__ import annotations

from typing import Any

from azure.core.credentials import AzureKeyCredential

from mcp_server.search_credential import (
    AsyncSearchAuthentication,
    SearchAuthentication,
    api_key_auth,
    async_client_secret_auth,
    async_default_azure_auth,
    client_secret_auth,
    default_azure_auth,
)
from mcp_server.server.config import ServerConfig


def server_search_auth(config: ServerConfig) -> SearchAuthentication:
    if config.search_auth == "api-key":
        return api_key_auth(config.search_api_key)
    if config.mode == "local":
        return client_secret_auth(
            config.authority, config.api_client_id, config.api_client_secret, config.ca_cert
        )
    return default_azure_auth()


def server_async_search_auth(config: ServerConfig) -> AsyncSearchAuthentication:
    """The same for ``azure.search.documents.aio`` clients."""
    if config.search_auth == "api-key":
        return AsyncSearchAuthentication(
            "api-key", AzureKeyCredential(config.search_api_key.get_secret_value())
        )
    if config.mode == "local":
        return async_client_secret_auth(
            config.authority, config.api_client_id, config.api_client_secret, config.ca_cert
        )
    return async_default_azure_auth()


def client_options(config: ServerConfig) -> dict[str, Any]:
    """Options every search client of the server shares: the api-version, when one is configured."""
    return {"api_version": config.search_api_version} if config.search_api_version else {}
