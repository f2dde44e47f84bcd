"""The per-run application context handed to the Agents SDK (``Runner.run(..., context=...)``).

Hooks, tools and MCP callbacks read the bus and labels from here, so nothing about a run lives in module
state: each account's runner passes its own context, and concurrent runs never see each other's events.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from console.core.events import EventBus
from console.core.step_up import ClaimsChallenge

DEFAULT_FAILURE_HINT = "Fix what the tool reports, then ask again."


@dataclass(frozen=True)
class ToolFailure:
    """A tool whose last call in the turn failed: the answer was made without its result."""

    tool: str
    error: str  # what the tool reported (masked), without the "Tool error:" prefix
    hint: str = DEFAULT_FAILURE_HINT  # what to do about it


@dataclass(frozen=True)
class CallFailure:
    """Why one tool call failed, as data, from where it is understood (MCP transport, the server's ``_meta``);
    it becomes the fields of the call's ``ToolEnded`` (``console.core.events.ErrorCode`` / ``FailedStep``)."""

    code: str | None = None
    http_status: int | None = None
    step: str | None = None


@dataclass
class AgentContext:
    """What every hook and tool of one turn may need. Holds no token: MCP auth fetches its own per request."""

    bus: EventBus
    turn_id: str | None = None
    account: str | None = None
    calculator_url: str | None = None  # the remote calculator agent (``ask_calculator``)
    # call_id -> agent label, so server steps (MCP progress) are labelled with the agent that called the tool.
    tool_agents: dict[str, str] = field(default_factory=dict)
    # call_id -> an error the MCP server flagged on its result (isError), which the SDK passes on as plain output.
    server_errors: dict[str, str] = field(default_factory=dict)
    # call_id -> what to do about that call's failure, set where the failure is understood (MCP transport, server).
    failure_hints: dict[str, str] = field(default_factory=dict)
    # call_id -> why that call failed, as data (code, HTTP status, step), for its ToolEnded event.
    call_failures: dict[str, CallFailure] = field(default_factory=dict)
    # A claims challenge the MCP server relayed (Conditional Access): the turn stops and the console steps up.
    step_up: ClaimsChallenge | None = None
    # tool name -> the failure of its last call (None: the last call worked). A later good call clears a failure.
    tool_outcomes: dict[str, ToolFailure | None] = field(default_factory=dict)

    def record_outcome(self, tool: str, call_id: str, error: str | None) -> None:
        hint = self.failure_hints.pop(call_id, DEFAULT_FAILURE_HINT)
        self.tool_outcomes[tool] = ToolFailure(tool, _without_prefix(error), hint) if error else None

    def failed_tool(self) -> ToolFailure | None:
        """The first tool whose last call failed, if any: the turn then ended in an error."""
        return next((failure for failure in self.tool_outcomes.values() if failure is not None), None)


def _without_prefix(error: str) -> str:
    for prefix in ("Tool error:", "An error occurred while running the tool."):
        if error.startswith(prefix):
            error = error[len(prefix) :]
    return error.strip()
