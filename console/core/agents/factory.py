"""Builds the whole agent graph from configs: registry tools, agents-as-tools, handoffs (with an explicit way
back to the main agent), MCP tools through one account's ``McpLink``, and a model for each agent.

``build_graph(configs, main_key=..., settings=..., mcp=...)`` is pure construction (no I/O): the runner calls it
again whenever the configs change, so a rebuilt graph is in use from the next turn on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agents import Agent, Handoff, ModelSettings, Tool, handoff
from agents.mcp import MCPServer

from console.core.agents.hooks import EventHooks
from console.core.agents.mcp_link import McpLink
from console.core.agents.providers import ModelChoice, ModelResolver
from console.core.agents.tools import REGISTRY, build_tool
from console.core.configs.model import AgentConfig
from console.core.settings import Settings
from mcp_server.errors import UserError

DEFAULT_MAIN_KEYS = ("conversation", "main")


def back_tool_name(main_key: str) -> str:
    return f"back_to_{main_key.replace('-', '_')}"


@dataclass
class AgentGraph:
    """Every agent built from one set of configs, by key, and how to find an agent's key from its name."""

    agents: dict[str, Agent[Any]]
    main_key: str
    models: dict[str, ModelChoice]  # by agent name
    hooks: EventHooks
    warnings: list[str] = field(default_factory=list)
    fingerprints: dict[str, str] = field(default_factory=dict)

    @property
    def main(self) -> Agent[Any]:
        return self.agents[self.main_key]

    def key_of(self, agent: Agent[Any]) -> str | None:
        for key, candidate in self.agents.items():
            if candidate is agent or candidate.name == agent.name:
                return key
        return None

    def model_label(self, key: str) -> str:
        agent = self.agents.get(key)
        choice = self.models.get(agent.name) if agent else None
        return choice.label if choice else "?"


def default_main_key(configs: Mapping[str, AgentConfig]) -> str:
    """``conversation`` (or ``main``) when present; else the agent no other agent refers to that refers to the
    most others (the root of the graph); ties by key."""
    for key in DEFAULT_MAIN_KEYS:
        if key in configs:
            return key
    if not configs:
        raise UserError(
            "There are no agent configs.", hint="Add configs (configs/*.json) or push some to Redis."
        )
    referenced = {ref for cfg in configs.values() for ref in cfg.referenced_agents}
    roots = [k for k in sorted(configs) if k not in referenced] or sorted(configs)
    return max(roots, key=lambda k: (len(configs[k].referenced_agents), -sorted(configs).index(k)))


def build_graph(
    configs: Mapping[str, AgentConfig],
    *,
    settings: Settings,
    main_key: str | None = None,
    mcp: McpLink | None = None,
    resolver: ModelResolver | None = None,
) -> AgentGraph:
    if not configs:
        raise UserError(
            "There are no agent configs.", hint="Add configs (configs/*.json) or push some to Redis."
        )
    main_key = main_key or default_main_key(configs)
    if main_key not in configs:
        known = ", ".join(sorted(configs))
        raise UserError(f"There is no agent {main_key!r}.", hint=f"Known agents: {known}.")
    resolver = resolver or ModelResolver(settings)
    models: dict[str, ModelChoice] = {}
    warnings: list[str] = []
    agents: dict[str, Agent[Any]] = {}

    for key, cfg in configs.items():
        choice = resolver.for_config(cfg.model)
        models[cfg.name] = choice
        tools: list[Tool] = []
        for name in cfg.tools:
            spec = REGISTRY.get(name)
            if spec is None:
                warnings.append(f"{key}: unknown tool {name!r} skipped")
                continue
            if not spec.offline and choice.provider != "openai":
                warnings.append(
                    f"{key}: tool {name!r} needs OpenAI's hosted tools; {choice.label} cannot run it"
                )
                continue
            tools.append(build_tool(name))
        servers: list[MCPServer] = []
        for server_name in cfg.mcp_servers:
            server = mcp.server_for(server_name) if mcp is not None else None
            if server is None:
                warnings.append(
                    f"{key}: MCP server {server_name!r} is not defined in settings (or nobody is signed in): "
                    "no connection, no token"
                )
                continue
            if server not in servers:
                servers.append(server)
        agents[key] = Agent(
            name=cfg.name,
            instructions=cfg.instructions,
            handoff_description=cfg.description,
            model=choice.model,
            tools=tools,
            mcp_servers=servers,
            model_settings=ModelSettings(**cfg.model_settings),
        )

    hooks = EventHooks(models={name: (choice.name, choice.provider) for name, choice in models.items()})
    main = agents[main_key]
    handed_to: set[str] = set()
    for key, cfg in configs.items():
        agent = agents[key]
        for ref in cfg.agents_as_tools:
            target = agents.get(ref.agent)
            if target is None:
                warnings.append(f"{key}: agent-as-tool {ref.agent!r} has no config; skipped")
                continue
            agent.tools.append(
                target.as_tool(
                    tool_name=ref.tool_name or ref.agent.replace("-", "_"),
                    tool_description=ref.description,
                    hooks=EventHooks(models=hooks.models, parent=agent.name),
                )
            )
        handoffs: list[Agent[Any] | Handoff[Any, Any]] = []
        for handoff_ref in cfg.handoffs:
            target = agents.get(handoff_ref.agent)
            if target is None:
                warnings.append(f"{key}: handoff to {handoff_ref.agent!r} has no config; skipped")
                continue
            description = handoff_ref.description or configs[handoff_ref.agent].description
            handoffs.append(handoff(target, tool_description_override=description))
            handed_to.add(handoff_ref.agent)
        agent.handoffs = handoffs

    # The explicit way back: every agent the conversation can be handed to can hand it back to the main agent.
    for key in sorted(handed_to - {main_key}):
        agent = agents[key]
        if any(getattr(h, "agent_name", getattr(h, "name", None)) == main.name for h in agent.handoffs):
            continue
        agent.handoffs = [
            *agent.handoffs,
            handoff(
                main,
                tool_name_override=back_tool_name(main_key),
                tool_description_override=(
                    f"Go back to the main agent, {main.name}: when the user wants to return, go back, leave or "
                    "exit, or asks for something else."
                ),
            ),
        ]
    return AgentGraph(
        agents=agents,
        main_key=main_key,
        models=models,
        hooks=hooks,
        warnings=warnings,
        fingerprints={key: cfg.fingerprint() for key, cfg in configs.items()},
    )
