"""The agent pane's and the configs screen's views, built from the live agent configs (no I/O)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from console.core.settings import Settings
from console.core.workspace_views import AgentInfo, ConfigInfo

if TYPE_CHECKING:
    from console.core.configs.live import LiveConfigs


def main_agent_key(configs: LiveConfigs | None, chosen: str | None) -> str | None:
    """The main agent's config key: the chosen one while it serves, else the configs' default."""
    if configs is None:
        return None
    if chosen and configs.get(chosen) is not None:
        return chosen
    if not configs.current.configs:
        return None
    from console.core.agents.factory import default_main_key  # deferred: the Agents SDK, after the link

    return default_main_key(configs.current.configs)


def agent_info(configs: LiveConfigs, settings: Settings, key: str) -> AgentInfo | None:
    """The agent ``key`` as the agent pane shows it (None when no such config serves)."""
    config = configs.current.get(key)
    if config is None:
        return None
    from console.core.agents.providers import resolve_provider  # deferred: the Agents SDK, after the link

    provider = resolve_provider(settings)
    model = settings.model or config.model
    if provider == "offline":
        # deferred: the Agents SDK, after the link
        from console.core.agents.offline_model import OFFLINE_MODEL_NAME

        model = OFFLINE_MODEL_NAME
    return AgentInfo(
        key=config.key,
        name=config.name,
        model=model,
        provider=provider,
        tools=tuple(config.tools),
        agents_as_tools=tuple(ref.agent for ref in config.agents_as_tools),
        handoffs=tuple(ref.agent for ref in config.handoffs),
        mcp_servers=tuple(config.mcp_servers),
        description=config.description or "",
    )


def handoff_chain(main_name: str, handoffs: Iterable[str]) -> list[str]:
    """Agent names from the main agent to the active one, through the handoffs that led there."""
    chain: list[str] = [main_name]
    for name in handoffs:
        if name == main_name:
            chain = [main_name]  # back at the main agent: the chain starts over
        elif name not in chain:
            chain.append(name)
        else:
            chain = chain[: chain.index(name) + 1]
    return chain


def config_infos(configs: LiveConfigs | None) -> list[ConfigInfo]:
    """Every config's validation status, by key."""
    if configs is None:
        return []
    out = []
    for key, entry in sorted(configs.current.entries.items()):
        shown = entry.serving or entry.config
        out.append(
            ConfigInfo(
                key=key,
                name=shown.name if shown else key,
                source=entry.source,
                valid=entry.status != "invalid",
                serving=entry.serving is not None,
                serving_last_good=entry.serving_last_good,
                errors=tuple(str(i) for i in entry.issues if i.severity == "error"),
                warnings=tuple(str(i) for i in entry.issues if i.severity == "warning"),
            )
        )
    return out
