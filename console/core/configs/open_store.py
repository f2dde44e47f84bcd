"""Choosing and opening the active config store from settings (files by default, Redis with USE_REDIS)."""

from __future__ import annotations

from pathlib import Path

from console.core.agents.providers import resolve_provider
from console.core.agents.tools import REGISTRY
from console.core.configs.file_store import FileStore
from console.core.configs.live import LiveConfigs
from console.core.configs.schema import SHIPPED_CONFIGS_DIR
from console.core.configs.store import ConfigStore
from console.core.configs.user_folder import checkout_configs, ensure_user_configs
from console.core.configs.validation import ValidationContext
from console.core.events import EventBus
from console.core.settings import Settings
from mcp_server.paths import data_dir


def configs_dir(settings: Settings) -> Path:
    """The folder of agent configs: OBO_CONSOLE_CONFIGS_DIR when set; else ./configs when it exists; else, running
    from a source checkout, the checkout's configs/; else (installed) ``configs/`` in the data directory, copied
    from the packaged defaults on first use."""
    if "configs_dir" in settings.model_fields_set:
        return settings.configs_dir.expanduser().resolve()
    local = settings.configs_dir.expanduser()
    if local.is_dir():
        return local.resolve()
    checkout = checkout_configs()
    if checkout is not None:
        return checkout
    return ensure_user_configs(data_dir() / "configs", SHIPPED_CONFIGS_DIR)


def validation_context(settings: Settings) -> ValidationContext:
    """Tool names from the runtime's registry, MCP server names from settings, the provider from settings."""

    provider = resolve_provider(settings)
    hosted = frozenset(name for name, spec in REGISTRY.items() if not spec.offline)
    return ValidationContext(
        known_tools=frozenset(REGISTRY),
        known_mcp_servers=frozenset(settings.mcp_servers),
        offline_model=provider != "openai",  # only OpenAI's Responses API runs hosted tools
        hosted_tools=hosted,
        provider=provider,
    )


def open_store(settings: Settings, ctx: ValidationContext | None = None) -> ConfigStore:
    ctx = ctx or validation_context(settings)
    if settings.use_redis:
        from console.core.configs.redis_store import RedisStore  # deferred: redis, only with USE_REDIS

        return RedisStore(settings.redis_url, ctx, channel=settings.redis_channel)

    return FileStore(configs_dir(settings), ctx)


def open_live_configs(
    settings: Settings, bus: EventBus | None = None, ctx: ValidationContext | None = None
) -> LiveConfigs:
    """A started ``LiveConfigs`` over the active store."""

    live = LiveConfigs(open_store(settings, ctx), bus=bus)
    live.start()
    return live
