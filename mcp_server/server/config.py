"""What the OBO server needs to know, in one frozen value built from settings (Azure mode) or the local stack."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import SecretStr

from mcp_server import search_versions
from mcp_server.errors import UserError
from mcp_server.settings import SearchAuthSetting, ServerSettings

SEARCH_SCOPE = "https://search.azure.com/.default"
SEARCH_AUDIENCE = "https://search.azure.com"
GRAPH_ENDPOINT = "https://graph.microsoft.com"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
# Fields the tool may return: the model never chooses them, and nothing else in the index leaves the server.
DEFAULT_FIELDS: tuple[str, ...] = ("id", "name", "description", "content", "category", "oid", "group")
ACCESS_FIELDS: tuple[str, ...] = ("oid", "group")


@dataclass(frozen=True)
class ServerConfig:
    """Settings of one OBO server instance. Secrets stay in ``SecretStr``."""

    mode: Literal["local", "azure"]
    authority: str  # https://host/<tenant id>, no trailing slash
    tenant_id: str
    api_client_id: str
    api_client_secret: SecretStr
    search_endpoint: str
    search_index: str
    search_api_key: SecretStr  # empty with keyless search in Azure mode
    identifier_uri: str | None = None  # default api://<client id>
    required_scope: str = "execute"
    allowed_tenants: tuple[str, ...] = ()  # default: the configured tenant only
    accept_v1_tokens: bool = False
    ca_cert: Path | None = None  # CA trusted for the authority (local stack); None = system trust
    jwks_cache_ttl: float = 3600.0
    jwks_refresh_interval: float = 30.0
    obo_scope: str = SEARCH_SCOPE
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str | None = None  # base URL clients use (no path); default http://host:port
    mcp_path: str = "/mcp"
    search_fields: tuple[str, ...] = DEFAULT_FIELDS
    search_retry_total: int = 1
    search_timeout: float = 10.0
    obo_expiry_margin: float = 300.0  # an OBO token is reused until five minutes before it expires
    # Where group memberships come from when a token has no ``groups`` (or the overage claims): only this base,
    # never an endpoint a token names (docs/server.md, Groups).
    graph_endpoint: str = GRAPH_ENDPOINT
    graph_scope: str = GRAPH_SCOPE
    graph_timeout: float = 10.0
    graph_page_size: int = 999  # $top of transitiveMemberOf (Graph's maximum; tests page with less)
    obo_cache: Literal["memory", "redis"] = "memory"
    redis_url: str | None = None  # with obo_cache="redis"
    obo_cache_key: SecretStr | None = None  # encrypts the Redis entries; required with obo_cache="redis"
    extra: dict[str, str] = field(default_factory=dict)
    search_auth: SearchAuthSetting = "api-key"
    search_api_version: str | None = None  # None: the SDK's default (a preview version with trimming)

    def __post_init__(self) -> None:
        check_search_api_version(self.search_api_version)

    @property
    def issuer(self) -> str:
        return f"{self.authority}/v2.0"

    @property
    def v1_issuer(self) -> str:
        return f"https://sts.windows.net/{self.tenant_id}/"

    @property
    def jwks_uri(self) -> str:
        return f"{self.authority}/discovery/v2.0/keys"

    @property
    def api_identifier(self) -> str:
        return self.identifier_uri or f"api://{self.api_client_id}"

    @property
    def full_scope(self) -> str:
        """The scope clients request, e.g. ``api://<client id>/execute``."""
        return f"{self.api_identifier}/{self.required_scope}"

    @property
    def tenants(self) -> tuple[str, ...]:
        return self.allowed_tenants or (self.tenant_id,)

    def base_url(self, port: int | None = None) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        return f"http://{self.host}:{port if port is not None else self.port}"

    def mcp_url(self, port: int | None = None) -> str:
        return self.base_url(port) + self.mcp_path

    @classmethod
    def from_settings(cls, settings: ServerSettings) -> ServerConfig:
        """Azure mode: everything comes from settings; the local CA is loaded only if ``ca_cert`` is set."""
        missing = [
            name
            for name, value in (
                ("OBO_CONSOLE_TENANT_ID", settings.tenant_id),
                ("OBO_CONSOLE_API_CLIENT_ID", settings.api_client_id),
                ("OBO_CONSOLE_API_CLIENT_SECRET", settings.api_client_secret),
                ("OBO_CONSOLE_SEARCH_ENDPOINT", settings.search_endpoint),
                ("OBO_CONSOLE_SEARCH_API_KEY", settings.search_api_key or settings.search_auth == "entra"),
            )
            if not value
        ]
        if missing:
            raise UserError(
                "The MCP server in Azure mode is missing settings: " + ", ".join(missing) + ".",
                hint="Set them in the environment or .env (see docs/server.md), or run in local mode.",
            )
        authority = settings.effective_authority()
        assert authority is not None and settings.tenant_id and settings.api_client_id
        assert settings.api_client_secret and settings.search_endpoint
        return cls(
            mode="azure",
            authority=authority,
            tenant_id=settings.tenant_id,
            api_client_id=settings.api_client_id,
            api_client_secret=settings.api_client_secret,
            search_endpoint=settings.search_endpoint,
            search_index=settings.search_index,
            search_api_key=settings.search_api_key or SecretStr(""),
            search_auth=settings.search_auth,
            search_api_version=settings.search_api_version,
            allowed_tenants=tuple(settings.allowed_tenants),
            graph_endpoint=settings.graph_endpoint.rstrip("/"),
            accept_v1_tokens=settings.accept_v1_tokens,
            ca_cert=settings.ca_cert,
            jwks_cache_ttl=settings.jwks_cache_ttl,
            jwks_refresh_interval=settings.jwks_refresh_interval,
            host=settings.mcp_host,
            port=settings.mcp_port,
            public_url=_base_of(settings.mcp_url),
            **obo_cache_options(settings),
        )


def check_search_api_version(version: str | None) -> None:
    """Refuse an api-version under which Azure AI Search would not trim results to the user (fail closed)."""
    if version is None or search_versions.has_permission_filtering(version):
        return
    known = search_versions.is_known(version)
    raise UserError(
        f"OBO_CONSOLE_SEARCH_API_VERSION={version} "
        + (
            "has no document-level access control: the search service would ignore the user's token "
            "(x-ms-query-source-authorization) and the MCP server refuses to search untrimmed."
            if known
            else "is not an Azure AI Search api-version the SDK knows."
        ),
        hint="Leave it unset (the SDK's default, "
        f"{search_versions.SDK_DEFAULT_API_VERSION}) or use a preview version with permission filtering: "
        + ", ".join(sorted(search_versions.PERMISSION_API_VERSIONS))
        + ".",
    )


def obo_cache_options(settings: ServerSettings) -> dict[str, Any]:
    """The OBO cache settings as ServerConfig fields; Redis without an encryption key is refused here, at start."""
    if settings.obo_cache == "memory":
        return {"obo_cache": "memory"}
    if settings.obo_cache_key is None or not settings.obo_cache_key.get_secret_value():
        raise UserError(
            "OBO_CONSOLE_OBO_CACHE=redis needs OBO_CONSOLE_OBO_CACHE_KEY: OBO tokens in Redis are secrets and "
            "are stored encrypted.",
            hint='Set it to 32 random bytes, base64url: python -c "import base64, os; '
            'print(base64.urlsafe_b64encode(os.urandom(32)).decode())" (the same key on every worker and replica).',
        )
    return {"obo_cache": "redis", "redis_url": settings.redis_url, "obo_cache_key": settings.obo_cache_key}


def _base_of(mcp_url: str | None) -> str | None:
    if not mcp_url:
        return None
    url = mcp_url.rstrip("/")
    return url[: -len("/mcp")] if url.endswith("/mcp") else url
