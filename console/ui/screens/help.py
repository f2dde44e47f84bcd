"""Every key and what it does, with the binding id users remap in their keymap file."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label, Static

from console.ui import bindings


class HelpScreen(ModalScreen[None]):
    CSS_PATH = "help.tcss"
    BINDINGS = bindings.HELP

    def __init__(self, keymap: dict[str, str] | None = None) -> None:
        """``keymap``: the user's remapping (binding id → keys), shown instead of the default keys."""
        super().__init__()
        self.keymap = dict(keymap or {})

    def compose(self) -> ComposeResult:
        yield Label("Keys — every action, its id and key", id="help-title")
        yield DataTable(id="help-table", cursor_type="row", zebra_stripes=True)
        yield Static(
            'Remap any key in keymap.json in the data directory, e.g. {"chat.reset": "ctrl+r"}.  '
            "ctrl+p opens the command palette (every action by name, themes, accounts, agents).  esc closes.",
            id="help-footer",
        )

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("where", "key", "action", "id")
        for where, binding in bindings.all_bindings():
            keys = self.keymap.get(binding.id or "", binding.key)
            table.add_row(where, keys, binding.description or binding.action, binding.id)
        table.focus()

    def action_close(self) -> None:
        self.dismiss(None)
