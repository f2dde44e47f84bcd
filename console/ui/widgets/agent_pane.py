"""The active agent: the handoff chain, its model and provider, tools, agents-as-tools and handoffs."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import Static

from console.core.workspace_views import AgentInfo


class AgentPane(Static, can_focus=True):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id, classes="pane")
        self.border_title = "Agent"
        self.agent: AgentInfo | None = None
        self.chain: list[str] = []
        self.main_agent: str | None = None
        self.running = False

    def show(self, agent: AgentInfo | None, chain: Sequence[str], main_agent: str | None) -> None:
        self.agent, self.chain, self.main_agent = agent, list(chain), main_agent
        self.update(self._text())

    def set_running(self, running: bool) -> None:
        if running == self.running:
            return  # the screen and the TurnStarted event both say so: one update (each costs a layout)
        self.running = running
        self.update(self._text())

    def _text(self) -> Text:
        text = Text()
        agent = self.agent
        if agent is None:
            text.append("No agent loaded yet.", style="italic")
            return text
        text.append("Active  ", style="dim")
        text.append(agent.name or agent.key, style="bold")
        if agent.name and agent.name != agent.key:
            text.append(f" ({agent.key})", style="dim")
        if self.running:
            text.append("  ● running", style="bold green")
        text.append("\nChain   ", style="dim")
        chain = self.chain or [agent.key]
        for i, key in enumerate(chain):
            if i:
                text.append(" → ", style="dim")
            text.append(key, style="bold" if i == len(chain) - 1 else "")
        if self.main_agent and agent.key != self.main_agent:
            text.append(f"\n        ctrl+b: back to {self.main_agent}", style="italic yellow")
        text.append("\nModel   ", style="dim")
        text.append(agent.model or "?")
        text.append(f"  via {agent.provider or '?'}", style="dim")
        for label, items in (
            ("Tools", agent.tools),
            ("As tool", agent.agents_as_tools),
            ("Handoff", agent.handoffs),
        ):
            text.append(f"\n{label:<8}", style="dim")
            text.append(", ".join(items) if items else "—")
        return text
