"""The server's own settings, from the environment and a ``.env`` file (pydantic-settings).

``OBO_CONSOLE_MODE=local`` (default) runs against the bundled local identity platform and search service, found
through the local stack state file; ``OBO_CONSOLE_MODE=azure`` uses Microsoft Entra ID and Azure AI Search as
configured here. The console's settings (``console.core.settings``) extend these with what only the console needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from mcp_server.paths import default_state_file

Mode = Literal["local", "azure"]
SearchAuthSetting = Literal["api-key", "entra"]  # mcp_server.search_credential.SearchAuth


class ServerSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="OBO_CONSOLE_", env_file=".env", extra="ignore", populate_by_name=True
    )

    mode: Mode = "local"
    state_file: Path | None = None
    # Set by the console on the `obo-console server` it launches: the server stops when that process dies.
    parent_pid: int | None = None

    # The MCP server (its own listen address, and the URL clients use).
    mcp_host: str = "127.0.0.1"
    mcp_port: int = 8000
    mcp_url: str | None = None
    # Local services' ports; 0 picks a free port (tests), the defaults keep issuers stable across restarts.
    identity_port: int = 8443
    search_port: int = 8444
    calculator_port: int = 8445

    # Azure mode (also usable against the local stack, for tests of Azure-mode code paths).
    tenant_id: str | None = None
    authority: str | None = None
    api_client_id: str | None = None
    api_client_secret: SecretStr | None = None
    search_endpoint: str | None = None
    search_index: str = "document-permissions-push-idx"
    search_api_key: SecretStr | None = None
    # How the MCP server and `provision` authenticate to the search service: its admin key, or keyless with an
    # Entra app token and a role on the service (docs/search.md, Keyless search).
    search_auth: SearchAuthSetting = "api-key"
    # The REST api-version of search requests (default: the SDK's); one without document-level access control is
    # refused, as the server would then search untrimmed.
    search_api_version: str | None = None
    accept_v1_tokens: bool = False
    allowed_tenants: list[str] = []
    # Microsoft Graph, for group memberships a token does not carry (no groups claim, or the overage claims).
    graph_endpoint: str = "https://graph.microsoft.com"
    ca_cert: Path | None = None  # extra CA to trust (local stack only; never loaded in Azure mode by default)
    # The MCP server's JWKS cache: how long keys are trusted without re-reading, and the minimum seconds between
    # re-reads on an unknown key id (rate limit against the authority).
    jwks_cache_ttl: float = 3600.0
    jwks_refresh_interval: float = 30.0

    # The OBO token cache: per process in memory, or shared by all workers and replicas in Redis (REDIS_URL),
    # its entries encrypted with OBO_CONSOLE_OBO_CACHE_KEY (32 random bytes, base64url). docs/server.md.
    obo_cache: Literal["memory", "redis"] = "memory"
    obo_cache_key: SecretStr | None = None
    redis_url: str = Field(
        default="redis://localhost:6379/0",
        validation_alias=AliasChoices("OBO_CONSOLE_REDIS_URL", "REDIS_URL"),
    )

    def effective_state_file(self) -> Path:
        return self.state_file or default_state_file()

    def effective_mcp_url(self) -> str:
        return self.mcp_url or f"http://{self.mcp_host}:{self.mcp_port}/mcp"

    def effective_authority(self) -> str | None:
        if self.authority:
            return self.authority.rstrip("/")
        if self.tenant_id:
            return f"https://login.microsoftonline.com/{self.tenant_id}"
        return None
