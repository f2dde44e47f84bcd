"""How a search client authenticates: with the service's admin api-key, or keyless with an Entra app token.

``OBO_CONSOLE_SEARCH_AUTH=entra`` is Azure AI Search's documented path for document-level access control: the
calling app holds a role on the service (*Search Index Data Reader* to query) and sends its own token in
``Authorization: Bearer``; the user's token still travels in ``x-ms-query-source-authorization``. The app token
comes from azure-identity: ``ClientSecretCredential`` against the local identity platform (trusting only its CA),
``DefaultAzureCredential`` (managed identity, workload identity, Azure CLI, ...) against Microsoft Entra ID.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import requests
from azure.core.credentials import AzureKeyCredential, TokenCredential
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.pipeline import PipelineRequest
from azure.core.pipeline.policies import AsyncBearerTokenCredentialPolicy, BearerTokenCredentialPolicy
from azure.core.pipeline.transport import AsyncioRequestsTransport, RequestsTransport
from azure.identity import ClientSecretCredential, DefaultAzureCredential
from azure.identity.aio import ClientSecretCredential as AsyncClientSecretCredential
from azure.identity.aio import DefaultAzureCredential as AsyncDefaultAzureCredential
from pydantic import SecretStr

SearchAuth = Literal["api-key", "entra"]
SEARCH_AUTH_MODES: tuple[str, ...] = ("api-key", "entra")
SEARCH_SCOPE = "https://search.azure.com/.default"
# Azure AI Search never redirects. azure-core follows a 307/308 with the request's headers, and its cleanup drops
# only Authorization on the way: the api-key and the user's token in x-ms-query-source-authorization would go to
# whatever host the Location names. Every client that carries a credential refuses redirects.
NO_REDIRECTS: dict[str, Any] = {"permit_redirects": False}


def refused_redirect(status: int | None) -> str | None:
    """What every search client says of a 3xx answer (never followed: ``NO_REDIRECTS``); None for any other."""
    if status is None or not 300 <= status < 400:
        return None
    return (
        f"HTTP {status}, a redirect: refused (Azure AI Search never redirects, and following it would send the "
        "credentials to another address). Check OBO_CONSOLE_SEARCH_ENDPOINT."
    )


def _loopback_http(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


class LoopbackBearerPolicy(BearerTokenCredentialPolicy):
    """azure-core's bearer policy, allowing plain http only to a loopback host (the local search service).

    azure-core refuses bearer tokens over http; the local service listens on http://127.0.0.1, where the token
    never leaves the machine. Any other http URL is still refused.
    """

    def on_request(self, request: PipelineRequest[Any]) -> None:
        if _loopback_http(request.http_request.url):
            request.context["enforce_https"] = False
        super().on_request(request)


class AsyncLoopbackBearerPolicy(AsyncBearerTokenCredentialPolicy):
    """The async clients' counterpart of :class:`LoopbackBearerPolicy`."""

    async def on_request(self, request: PipelineRequest[Any]) -> None:
        if _loopback_http(request.http_request.url):
            request.context["enforce_https"] = False
        await super().on_request(request)


@dataclass(frozen=True)
class SearchAuthentication:
    """The credential of a search client, and the keyword arguments that put it on an SDK client."""

    mode: SearchAuth
    credential: AzureKeyCredential | TokenCredential = field(repr=False)

    def client_kwargs(self) -> dict[str, Any]:
        """``credential=`` (and the bearer policy for a token credential) for SearchClient / SearchIndexClient,
        with redirects refused (``NO_REDIRECTS``)."""
        if isinstance(self.credential, AzureKeyCredential):
            return {"credential": self.credential, **NO_REDIRECTS}
        policy = LoopbackBearerPolicy(self.credential, SEARCH_SCOPE)
        return {"credential": self.credential, "authentication_policy": policy, **NO_REDIRECTS}

    def close(self) -> None:
        close = getattr(self.credential, "close", None)
        if callable(close):
            close()


@dataclass(frozen=True)
class AsyncSearchAuthentication:
    """The same for ``azure.search.documents.aio`` clients (an async token credential, the async bearer policy)."""

    mode: SearchAuth
    credential: AzureKeyCredential | AsyncTokenCredential = field(repr=False)

    def client_kwargs(self) -> dict[str, Any]:
        if isinstance(self.credential, AzureKeyCredential):
            return {"credential": self.credential, **NO_REDIRECTS}
        policy = AsyncLoopbackBearerPolicy(self.credential, SEARCH_SCOPE)
        return {"credential": self.credential, "authentication_policy": policy, **NO_REDIRECTS}

    async def close(self) -> None:
        if not isinstance(self.credential, AzureKeyCredential):
            await self.credential.close()


def api_key_auth(api_key: SecretStr) -> SearchAuthentication:
    return SearchAuthentication("api-key", AzureKeyCredential(api_key.get_secret_value()))


def client_secret_auth(
    authority: str, client_id: str, client_secret: SecretStr, ca_cert: Path | None
) -> SearchAuthentication:
    """An app token by client credentials from ``authority`` (``https://host[:port]/<tenant id>``).

    With ``ca_cert`` only that CA is trusted (the environment's proxies and CA bundle are ignored), as the OBO
    client does for the local identity platform.
    """
    tenant_id, options = _client_secret_options(authority, ca_cert, async_transport=False)
    credential = ClientSecretCredential(tenant_id, client_id, client_secret.get_secret_value(), **options)
    return SearchAuthentication("entra", credential)


def async_client_secret_auth(
    authority: str, client_id: str, client_secret: SecretStr, ca_cert: Path | None
) -> AsyncSearchAuthentication:
    """:func:`client_secret_auth` for async clients (requests on a thread: aiohttp is not a dependency)."""
    tenant_id, options = _client_secret_options(authority, ca_cert, async_transport=True)
    credential = AsyncClientSecretCredential(
        tenant_id, client_id, client_secret.get_secret_value(), **options
    )
    return AsyncSearchAuthentication("entra", credential)


def _client_secret_options(
    authority: str, ca_cert: Path | None, *, async_transport: bool
) -> tuple[str, dict[str, Any]]:
    parts = urlsplit(authority.rstrip("/"))
    session = requests.Session()
    session.trust_env = False
    verify: bool | str = str(ca_cert) if ca_cert is not None else True
    # azure-core passes its own `verify` on every request (connection_verify), overriding the session's.
    transport_type = AsyncioRequestsTransport if async_transport else RequestsTransport
    options: dict[str, Any] = {
        "authority": f"{parts.scheme}://{parts.netloc}",
        "disable_instance_discovery": parts.hostname != "login.microsoftonline.com",
        "transport": transport_type(session=session, session_owner=True, connection_verify=verify),
    }
    return parts.path.strip("/").split("/")[0], options


def default_azure_auth(**kwargs: Any) -> SearchAuthentication:
    """Azure: managed identity, workload identity, environment, Azure CLI — whatever the host provides."""
    return SearchAuthentication("entra", DefaultAzureCredential(**kwargs))


def async_default_azure_auth(**kwargs: Any) -> AsyncSearchAuthentication:
    kwargs.setdefault("transport", AsyncioRequestsTransport())  # aiohttp is not a dependency
    return AsyncSearchAuthentication("entra", AsyncDefaultAzureCredential(**kwargs))
