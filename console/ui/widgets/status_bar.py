"""The status line at the top: mode, account, server status, main agent and the time (always visible)."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from console.core.link_state import LinkState

_SERVER_STYLES = {
    LinkState.READY: ("●", "bold green"),
    LinkState.DEGRADED: ("◐", "bold yellow"),
    LinkState.CONNECTING: ("◌", "bold yellow"),
    LinkState.RECONNECTING: ("◌", "bold yellow"),
    LinkState.DOWN: ("○", "bold red"),
    LinkState.STOPPED: ("○", "bold red"),
}


class StatusBar(Static):
    """One line; the app updates its reactives from the workspace once a second and on events."""

    mode: reactive[str] = reactive("local")
    account: reactive[str] = reactive("")
    server_state: reactive[LinkState] = reactive(LinkState.CONNECTING)
    server_url: reactive[str] = reactive("")
    server_detail: reactive[str] = reactive("")
    server_launched: reactive[bool] = reactive(False)
    main_agent: reactive[str] = reactive("")
    clock_text: reactive[str] = reactive("")

    def render(self) -> Text:
        glyph, style = _SERVER_STYLES[self.server_state]
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(" OBO Console ", style="bold reverse")
        text.append(f" {self.mode} ")
        text.append("│ ")
        if self.account:
            text.append(self.account, style="bold")
        else:
            text.append("not signed in (F2)", style="italic")
        text.append("  │ server ")
        text.append(f"{glyph} {self.server_state}", style=style)
        if self.server_url:
            text.append(f" {self.server_url}")
        if self.server_launched:
            text.append(" (launched)", style="dim")
        if self.server_detail:
            text.append(f" — {self.server_detail}", style="dim")
        if self.main_agent:
            text.append("  │ main agent ")
            text.append(self.main_agent, style="bold")
        if self.clock_text:
            text.append(f"  │ {self.clock_text}")
        return text
