"""The per-run application context handed to the Agents SDK (``Runner.run(..., context=...)``).

Hooks, tools and MCP callbacks read the bus and labels from here, so nothing about a run lives in module
state: each account's runner passes its own context, and concurrent runs never see each other's events.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from console.core.events import EventBus


@dataclass
class AgentContext:
    """What every hook and tool of one turn may need. Holds no token: MCP auth fetches its own per request."""

    bus: EventBus
    turn_id: str | None = None
    account: str | None = None
    calculator_url: str | None = None  # the remote calculator agent (``ask_calculator``)
    # call_id -> agent label, so server steps (MCP progress) are labelled with the agent that called the tool.
    tool_agents: dict[str, str] = field(default_factory=dict)
