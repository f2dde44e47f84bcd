"""The current account's saved conversations, most recent first; enter resumes the selected one."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.coordinate import Coordinate
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Label, Static

from console.core.sessions import SessionSummary
from console.ui import bindings
from console.ui.protocols import WorkspaceLike


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC") if ts else ""


class SessionsScreen(ModalScreen[str | None]):
    """Dismissed with the id of the session to resume (None: closed)."""

    CSS_PATH = "sessions.tcss"
    BINDINGS = bindings.SESSIONS

    def __init__(self, workspace: WorkspaceLike) -> None:
        super().__init__(id="sessions")
        self.workspace = workspace
        self.sessions: list[SessionSummary] = []
        self.loaded = False

    def compose(self) -> ComposeResult:
        with Vertical(id="sessions-box"):
            yield Label("Saved conversations — enter: resume · esc: back", id="sessions-title")
            yield DataTable(id="sessions-table", cursor_type="row", zebra_stripes=True)
            yield Static("", id="sessions-detail")
        yield Footer()

    async def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_column("", key="current")
        table.add_column("conversation", key="title")
        table.add_column("messages", key="messages")
        table.add_column("last active", key="updated")
        table.add_column("main agent", key="agent")
        table.add_column("", key="state")
        table.focus()
        # SQLite reads: off the UI's loop.
        self.sessions = await asyncio.to_thread(self.workspace.sessions)
        current = await asyncio.to_thread(self.workspace.current_session_id)
        for summary in self.sessions:
            table.add_row(
                "▶" if summary.id == current else "",
                Text(summary.title or "untitled", style="bold"),
                str(summary.messages),
                _when(summary.updated),
                summary.main_agent or "",
                Text("⚠ interrupted", style="bold yellow") if summary.interrupted else "",
                key=summary.id,
            )
        detail = self.query_one("#sessions-detail", Static)
        detail.update(
            "No saved conversation for this account yet."
            if not self.sessions
            else f"{len(self.sessions)} saved · ▶ the one on screen · ctrl+n starts a new one"
        )
        self.loaded = True

    def selected_id(self) -> str | None:
        table = self.query_one(DataTable)
        if not self.sessions or table.cursor_row < 0:
            return None
        return table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key.value

    def action_resume(self) -> None:
        session_id = self.selected_id()
        if session_id is not None:
            self.dismiss(session_id)

    def action_close(self) -> None:
        self.dismiss(None)
