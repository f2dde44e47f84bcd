"""The agent configs: each agent, its source and validation status, errors of invalid edits (while the last good
version keeps serving); enter makes the selected agent the main agent from the next turn."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.coordinate import Coordinate
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Label, Static

from console.core.plural import plural
from console.core.workspace_views import ConfigInfo
from console.ui import bindings
from console.ui.protocols import WorkspaceLike


def _status(config: ConfigInfo) -> Text:
    if config.valid and config.warnings:
        return Text(f"valid, {plural(len(config.warnings), 'warning')}", style="yellow")
    if config.valid:
        return Text("valid", style="green")
    if config.serving:
        return Text(f"INVALID edit ({len(config.errors)}): last good version serving", style="bold red")
    return Text(f"INVALID ({len(config.errors)})", style="bold red")


class ConfigsScreen(ModalScreen[None]):
    CSS_PATH = "configs.tcss"
    BINDINGS = bindings.CONFIGS

    def __init__(self, workspace: WorkspaceLike, use_main_agent: Callable[[str], Awaitable[None]]) -> None:
        super().__init__(id="configs")
        self.workspace = workspace
        self._use_main_agent = use_main_agent  # the app's: it rebuilds the graph and tells the panes
        self.configs: list[ConfigInfo] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="configs-box"):
            yield Label("Agent configs — enter: use as the main agent · esc: back", id="configs-title")
            yield DataTable(id="configs-table", cursor_type="row", zebra_stripes=True)
            yield Static("", id="configs-detail")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_column("", key="main")
        table.add_column("agent", key="key")
        table.add_column("status", key="status")
        table.add_column("source", key="source")
        self.action_reload()
        table.focus()

    def action_reload(self) -> None:
        self.configs = self.workspace.configs()
        table = self.query_one(DataTable)
        table.clear()
        main = self.workspace.main_agent
        for config in self.configs:
            table.add_row(
                "★" if config.key == main else "",
                Text(config.key, style="bold"),
                _status(config),
                config.source,
                key=config.key,
            )
        self._show_detail()

    @on(DataTable.RowHighlighted)
    def _highlighted(self) -> None:
        self._show_detail()

    def _selected(self) -> ConfigInfo | None:
        table = self.query_one(DataTable)
        if not self.configs or table.cursor_row < 0:
            return None
        key = table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key.value
        return next((c for c in self.configs if c.key == key), None)

    def _show_detail(self) -> None:
        config = self._selected()
        detail = self.query_one("#configs-detail", Static)
        if config is None:
            detail.update("No agent configs found.")
            return
        text = Text()
        text.append(f"{config.key}", style="bold")
        text.append(f"  {config.source}\n", style="dim")
        for error in config.errors:
            text.append("✗ ", style="bold red")
            text.append(f"{error}\n")
        for warning in config.warnings:
            text.append("! ", style="bold yellow")
            text.append(f"{warning}\n")
        if config.valid and not config.warnings:
            text.append("✓ valid\n", style="green")
        text.append("enter: make it the main agent (from the next turn)", style="dim italic")
        detail.update(text)

    async def action_use(self) -> None:
        config = self._selected()
        if config is None:
            return
        if not (config.valid or config.serving):
            self.notify(f"{config.key} has no valid version to run.", severity="error")
            return
        await self._use_main_agent(config.key)
        self.action_reload()

    def action_close(self) -> None:
        self.dismiss(None)
