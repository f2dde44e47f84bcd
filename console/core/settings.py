"""The console's settings: the server's (``mcp_server.settings``: mode, state file, ports, Azure ids, search)
plus the console's own, from the environment, a ``.env`` file and CLI flags (pydantic-settings).

``USE_REDIS``, ``REDIS_URL`` and ``OPENAI_API_KEY`` are also read without the ``OBO_CONSOLE_`` prefix, under
the names people already use for them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import NoDecode

from console.core.mcp_urls import parse_trusted_urls
from mcp_server.errors import UserError
from mcp_server.settings import ServerSettings

ModelProvider = Literal["offline", "openai", "azure-openai", "openai-compatible"]


def _alias(name: str, *extra: str) -> AliasChoices:
    return AliasChoices(f"OBO_CONSOLE_{name}", *extra)


class Settings(ServerSettings):
    """The server's settings plus the console's own: sign-in, token cache, configs, MCP servers and models."""

    # Sign-in (Azure mode; in local mode the state file names them).
    console_client_id: str | None = None
    api_scope: str | None = None

    # Token cache: in the keyring (shared by this user's consoles and commands, kept at rest), or only in this
    # process's memory (a web tab: its sign-in dies with it and never reaches the keyring).
    token_cache: Literal["keyring", "memory"] = "keyring"
    allow_file_keyring: bool = False
    keyring_backend: str = "auto"  # auto | file | a keyring backend class path
    keyring_chunk_size: int = 1200  # characters per keyring entry (Windows Credential Manager: ~2.5 KB)
    token_cache_lock_timeout: float = 10.0

    # Conversations: saved per account in the data dir (resumed by the next console), or only in this process's
    # memory (a web tab: gone when the tab closes or the account signs out).
    conversations: Literal["saved", "memory"] = "saved"

    # Config store (docs/contracts.md, config store settings): USE_REDIS and REDIS_URL also read unprefixed.
    configs_dir: Path = Path("configs")
    use_redis: bool = Field(default=False, validation_alias=_alias("USE_REDIS", "USE_REDIS"))
    redis_url: str = Field(
        default="redis://localhost:6379/0", validation_alias=_alias("REDIS_URL", "REDIS_URL")
    )
    # MCP servers agent configs may name (configs hold names, never URLs): name -> "local", the bundled server
    # at effective_mcp_url() / the state file's mcp_url. Env: OBO_CONSOLE_MCP_SERVERS='{"documents": "local"}'.
    mcp_servers: dict[str, str] = {"documents": "local"}
    # MCP servers `--connect` may send the user's token to, besides the one above (JSON list of URLs; trust is
    # per origin). Env: OBO_CONSOLE_TRUSTED_MCP_URLS='["https://mcp.example.com/mcp"]'. See mcp_trust.py.
    trusted_mcp_urls: Annotated[list[str], NoDecode] = []
    # Redis pub/sub channel `configs push` publishes changed keys on (live reload where keyspace
    # notifications cannot be enabled).
    redis_channel: str = "obo-console:configs"

    # Models.
    model_provider: ModelProvider | None = None
    model: str | None = None
    openai_api_key: SecretStr | None = Field(
        default=None, validation_alias=_alias("OPENAI_API_KEY", "OPENAI_API_KEY")
    )
    openai_base_url: str | None = None
    azure_openai_endpoint: str | None = None
    azure_openai_api_key: SecretStr | None = None
    azure_openai_api_version: str = "2025-04-01-preview"
    export_traces_to_openai: bool = False

    @field_validator("trusted_mcp_urls", mode="before")
    @classmethod
    def _trusted_urls(cls, value: Any) -> list[str]:
        return parse_trusted_urls(value)

    def effective_api_scope(self) -> str | None:
        if self.api_scope:
            return self.api_scope
        if self.api_client_id:
            return f"api://{self.api_client_id}/execute"
        return None


def load_settings(**overrides: Any) -> Settings:
    """Settings from env/.env, with CLI flags (non-None values) taking precedence. Invalid values raise a
    ``UserError`` naming each setting and what is wrong (never the value: it may be a secret)."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = "\n".join(
            f"  {_env_name(e['loc'])}: {e['msg'].removeprefix('Value error, ')}" for e in exc.errors()
        )
        raise UserError(
            f"Invalid settings:\n{problems}", hint="Fix them in the environment or the .env file."
        ) from None


def _env_name(loc: tuple[Any, ...]) -> str:
    name = ".".join(map(str, loc)).upper()
    return name if name.startswith("OBO_CONSOLE_") else f"OBO_CONSOLE_{name}"
