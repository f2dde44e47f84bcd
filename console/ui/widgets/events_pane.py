"""Live events from the bus, one line each (time, agent, what, short arguments, status, duration), expandable
and filterable; the MCP server's log in a tab beside it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from rich.text import Text
from textual.widget import Widget
from textual.widgets import Static

if TYPE_CHECKING:
    from textual.events import Key
    from textual.widgets import DataTable, Input, Log, TabbedContent

from console.core.describe import describe, flat
from console.core.events import AccountChanged, Event, Notice, TextDelta, ToolEnded, ToolStarted
from console.ui.widgets.staged_pane import Cell, StagedPane, lazy_widget

# Rows kept (some 40 turns of a documents agent), and lines of the server log; older events stay in the saved
# conversation and its export. Both bound what a long session holds (benchmarks/bench_console_soak.py).
MAX_EVENTS = 500
MAX_LOG_LINES = 1_000
# New rows reach the table at most this often. Each added row grows the table's virtual size, and Textual answers
# that with a layout of the whole screen: a turn's burst of a dozen events, one layout each, kept the interpreter
# busy enough to double the time to the search results (benchmarks/bench_console.py). Ten updates a second still
# reads as live.
ROWS_EVERY = 0.1
# Colours of the state words (console.core.describe): what went well, what failed, what is under way.
_STATUS_STYLE = {
    "done": "green", "ok": "green", "ready": "green", "answered": "green",
    "failed": "bold red", "error": "bold red", "down": "bold red",
    "started": "yellow", "warning": "yellow", "connecting": "yellow", "reconnecting": "yellow",
    "cache_hit": "cyan",
}  # fmt: skip


@dataclass
class EventRow:
    key: str
    ts: float
    agent: str
    what: str
    summary: str
    status: str
    duration_ms: float | None = None
    details: dict[str, str] = field(default_factory=dict)

    def matches(self, needle: str) -> bool:
        haystack = " ".join((self.agent, self.what, self.summary, self.status)).lower()
        return needle.lower() in haystack


class EventsPane(StagedPane):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.border_title = "Events"
        self.rows: list[EventRow] = []
        self._by_call: dict[str, EventRow] = {}
        self._filter = ""
        self._seq = 0
        self._pending: list[EventRow] = []  # rows kept, not yet in the table (see ROWS_EVERY)

    def contents(self) -> list[Widget]:
        return [lazy_widget("TabbedContent")(id="events-tabs")]

    async def populate(self) -> None:
        from textual.widgets import DataTable, Input, Log, TabPane  # deferred: past the first frame

        tabs = self.tabs
        await tabs.add_pane(
            TabPane(
                "Events",
                Input(placeholder="filter events (esc clears)", id="events-filter"),
                DataTable(id="events-table", cursor_type="row", zebra_stripes=True),
                Static("", id="events-detail"),
                id="events-tab",
            )
        )
        await tabs.add_pane(
            TabPane("Server log", Log(id="server-log", max_lines=MAX_LOG_LINES), id="server-log-tab")
        )
        tabs.active = "events-tab"

    def after_build(self) -> None:
        table = self.table
        for label, key, width in (
            ("time", "time", 8),
            ("agent", "agent", 16),
            ("event", "what", 22),
            ("details", "summary", 26),
            ("status", "status", 8),
            ("ms", "ms", 5),
        ):
            table.add_column(label, key=key, width=width)
        self.query_one("#events-filter").display = False
        self.query_one("#events-detail").display = False

    @property
    def table(self) -> DataTable[Cell]:
        return self.query_one("#events-table", lazy_widget("DataTable"))

    @property
    def tabs(self) -> TabbedContent:
        return self.query_one("#events-tabs", lazy_widget("TabbedContent"))

    @property
    def filter_box(self) -> Input:
        return self.query_one("#events-filter", lazy_widget("Input"))

    @property
    def server_log(self) -> Log:
        return self.query_one("#server-log", lazy_widget("Log"))

    # ---- events -> rows
    def add_event(self, event: Event) -> None:
        row = self._row_for(event)
        if row is None:
            return
        self._add_row(row)

    def _row_for(self, event: Event) -> EventRow | None:
        """A row in the shared wording (``console.core.describe``); a tool call's end completes its start's row."""
        if isinstance(event, TextDelta | AccountChanged):
            return None
        self._seq += 1
        described = describe(event)
        details = dict(described.details)
        if isinstance(event, ToolEnded) and (started := self._by_call.get(event.call_id)) is not None:
            started.status = described.status
            started.duration_ms = described.duration_ms
            started.details.update(details)
            self._refresh_row(started)
            return None
        width = 80 if isinstance(event, Notice) else 48
        row = EventRow(
            f"e{self._seq}",
            event.ts,
            described.agent or "",
            described.what,
            flat(described.summary, width),
            described.status,
            described.duration_ms,
            details,
        )
        if isinstance(event, ToolStarted) and event.call_id:
            self._by_call[event.call_id] = row
        return row

    def _add_row(self, row: EventRow) -> None:
        self.rows.append(row)
        if len(self.rows) > MAX_EVENTS:
            dropped = self.rows.pop(0)
            if dropped.key in self.table.rows:
                self.table.remove_row(dropped.key)
            elif dropped in self._pending:
                self._pending.remove(dropped)
        if row.matches(self._filter):
            self._pending.append(row)
            if len(self._pending) == 1:
                self.set_timer(ROWS_EVERY, self.flush_rows, name="events-rows")

    def flush_rows(self) -> None:
        """Put the rows kept since the last update into the table, in one go, and follow the newest."""
        pending, self._pending = self._pending, []
        if not pending:
            return
        table = self.table
        for row in pending:
            table.add_row(*self._cells(row), key=row.key)
        table.move_cursor(row=table.row_count - 1, animate=False)

    def _cells(self, row: EventRow) -> tuple[str | Text, ...]:
        when = datetime.fromtimestamp(row.ts, UTC).strftime("%H:%M:%S")
        status = Text(row.status, style=_STATUS_STYLE.get(row.status, ""))
        ms = f"{row.duration_ms:.0f}" if row.duration_ms is not None else ""
        return when, row.agent, row.what, row.summary, status, ms

    def _refresh_row(self, row: EventRow) -> None:
        if row.key not in self.table.rows:
            return
        cells = self._cells(row)
        self.table.update_cell(row.key, "status", cells[4])
        self.table.update_cell(row.key, "ms", cells[5])

    def _rebuild(self) -> None:
        self._pending.clear()
        table = self.table
        table.clear()
        for row in self.rows:
            if row.matches(self._filter):
                table.add_row(*self._cells(row), key=row.key)

    def forget_drawn_rows(self) -> None:
        """Between turns: forget the lines and cells the table drew before its latest change. The table keeps up
        to 10,000 drawn cells and 1,000 drawn rows and lines, keyed by its update count, so every added row left
        a screenful of them for nobody, several MB once full. ``notify_style_update`` is the table's public way to
        drop them (a style change makes them all stale); what is on screen is drawn again at the next refresh."""
        if self.built:
            self.table.notify_style_update()

    def clear(self) -> None:
        self._pending.clear()
        self.rows.clear()
        self._by_call.clear()
        self.table.clear()
        self.query_one("#events-detail", Static).display = False

    # ---- actions
    def action_filter(self) -> None:
        self.tabs.active = "events-tab"
        box = self.filter_box
        box.display = True
        box.focus()

    def action_toggle_log(self) -> None:
        tabs = self.tabs
        tabs.active = "server-log-tab" if tabs.active == "events-tab" else "events-tab"

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "events-filter":
            self._filter = event.value.strip()
            self._rebuild()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "events-filter":
            self.table.focus()

    def on_key(self, event: Key) -> None:
        box = self.filter_box
        if event.key == "escape" and box.has_focus:
            event.stop()
            box.value = ""
            box.display = False
            self.table.focus()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on a row expands it: its full arguments, result or detail below the table."""
        key = event.row_key.value
        row = next((r for r in self.rows if r.key == key), None)
        detail = self.query_one("#events-detail", Static)
        if row is None or not row.details:
            detail.display = False
            return
        text = Text()
        text.append(f"{row.what} — {row.agent}\n", style="bold")
        for name, value in row.details.items():
            text.append(f"{name}:\n", style="dim")
            text.append(value + "\n")
        detail.update(text)
        detail.display = True

    # ---- server log
    def write_server_log(self, lines: list[str]) -> None:
        if lines:
            self.server_log.write_lines(lines)
