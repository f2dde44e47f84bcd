"""The local stack's scenarios (docs/scenarios.md): enter applies the selected one, r resets, esc closes."""

from __future__ import annotations

import asyncio

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.coordinate import Coordinate
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Label, Static

from console.core.scenario_client import ScenarioStatus
from console.ui import bindings
from console.ui.protocols import ScenarioControl
from mcp_server.errors import UserError


class ScenariosScreen(ModalScreen[None]):
    CSS_PATH = "scenarios.tcss"
    BINDINGS = bindings.SCENARIOS

    def __init__(self, control: ScenarioControl) -> None:
        super().__init__(id="scenarios")
        self.control = control
        self.status: ScenarioStatus | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="scenarios-box"):
            yield Label("Scenarios — enter: apply · r: reset · esc: back", id="scenarios-title")
            yield DataTable(id="scenarios-table", cursor_type="row", zebra_stripes=True)
            yield Static("", id="scenarios-detail")
        yield Footer()

    async def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for label, key in (
            ("", "active"),
            ("scenario", "name"),
            ("what breaks", "title"),
            ("doctor", "check"),
        ):
            table.add_column(label, key=key)
        table.focus()
        await self._run(self.control.status)

    async def _run(self, call: object, *args: str) -> None:
        """A blocking call of the control (HTTP), off the UI's loop; its result redraws the table."""
        assert callable(call)
        try:
            self.status = await asyncio.to_thread(call, *args)
        except UserError as exc:
            self.query_one("#scenarios-detail", Static).update(Text(exc.message, style="bold red"))
            return
        self._fill()

    def _fill(self) -> None:
        assert self.status is not None
        table = self.query_one(DataTable)
        row = table.cursor_row
        table.clear()
        for info in self.status.scenarios:
            table.add_row(
                Text("● active", style="bold red") if info.name == self.status.active else "",
                Text(info.name, style="bold"),
                info.title,
                info.check,
                key=info.name,
            )
        table.move_cursor(row=max(0, row))
        active = next((s for s in self.status.scenarios if s.name == self.status.active), None)
        self.query_one("#scenarios-detail", Static).update(
            f"Active: {active.name}. The console shows it at {active.where}; `obo-console doctor` names "
            f"'{active.check}'. r resets."
            if active
            else "No scenario is active: everything works. enter applies the selected one."
        )

    def selected(self) -> str | None:
        table = self.query_one(DataTable)
        if self.status is None or not self.status.scenarios or table.cursor_row < 0:
            return None
        return str(table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key.value)

    async def action_apply(self) -> None:
        name = self.selected()
        if name is not None:
            await self._run(self.control.apply, name)
            self.notify(f"Scenario {name} applied.", severity="warning")

    async def action_reset(self) -> None:
        await self._run(self.control.reset)
        self.notify("Scenario reset: everything is back.")

    def action_close(self) -> None:
        self.dismiss(None)
