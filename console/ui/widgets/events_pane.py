"""Live events from the bus, one line each (time, agent, what, short arguments, status, duration), expandable
and filterable; the MCP server's log in a tab beside it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from rich.text import Text
from textual.widget import Widget
from textual.widgets import Static

if TYPE_CHECKING:
    from textual.widgets import DataTable, Input, Log, TabbedContent

from console.core.events import (
    AccountChanged,
    AgentEnded,
    AgentStarted,
    Event,
    HandoffOccurred,
    ModelCalled,
    Notice,
    SearchResults,
    ServerStatusChanged,
    ServerStep,
    TextDelta,
    ToolEnded,
    ToolStarted,
    TurnEnded,
    TurnStarted,
)
from console.core.link_state import LinkState
from console.core.plural import plural
from console.ui.widgets.staged_pane import StagedPane, lazy_widget

MAX_EVENTS = 10_000
# New rows reach the table at most this often. Each added row grows the table's virtual size, and Textual answers
# that with a layout of the whole screen: a turn's burst of a dozen events, one layout each, kept the interpreter
# busy enough to double the time to the search results (benchmarks/bench_console.py). Ten updates a second still
# reads as live.
ROWS_EVERY = 0.1
_STATUS_STYLE = {"ok": "green", "error": "bold red", "running": "yellow", "cache_hit": "cyan", "warning": "yellow"}


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


def _short(text: str, width: int = 48) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _pretty(text: str) -> str:
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except (ValueError, TypeError):
        return text


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
        from textual.widgets import DataTable, Input, Log, TabPane

        tabs = self.tabs
        await tabs.add_pane(TabPane("Events", Input(placeholder="filter events (esc clears)", id="events-filter"),
                                    DataTable(id="events-table", cursor_type="row", zebra_stripes=True),
                                    Static("", id="events-detail"), id="events-tab"))
        await tabs.add_pane(TabPane("Server log", Log(id="server-log", max_lines=5000), id="server-log-tab"))
        tabs.active = "events-tab"

    def after_build(self) -> None:
        table = self.table
        for label, key, width in (("time", "time", 8), ("agent", "agent", 16), ("event", "what", 18),
                                  ("details", "summary", 30), ("status", "status", 8), ("ms", "ms", 5)):
            table.add_column(label, key=key, width=width)
        self.query_one("#events-filter").display = False
        self.query_one("#events-detail").display = False

    @property
    def table(self) -> DataTable:
        return self.query_one("#events-table")  # type: ignore[return-value]

    @property
    def tabs(self) -> TabbedContent:
        return self.query_one("#events-tabs")  # type: ignore[return-value]

    @property
    def filter_box(self) -> Input:
        return self.query_one("#events-filter")  # type: ignore[return-value]

    @property
    def server_log(self) -> Log:
        return self.query_one("#server-log")  # type: ignore[return-value]

    # ---- events -> rows
    def add_event(self, event: Event) -> None:
        row = self._row_for(event)
        if row is None:
            return
        self._add_row(row)

    def _row_for(self, event: Event) -> EventRow | None:
        agent = event.agent or ""
        self._seq += 1
        key = f"e{self._seq}"
        match event:
            case TextDelta() | AccountChanged():
                return None
            case ServerStatusChanged():
                summary = event.url or ""
                if event.detail:
                    summary = f"{summary} {event.detail}".strip()
                status = "ok" if event.state == LinkState.READY else ("warning" if event.state != LinkState.DOWN else "error")
                return EventRow(key, event.ts, "console", f"server {event.state}", _short(summary), status)
            case ToolEnded():
                started = self._by_call.get(event.call_id)
                if started is not None:
                    started.status = "error" if event.error else "ok"
                    started.duration_ms = event.duration_ms
                    started.details["result"] = _pretty(event.error or event.result)
                    self._refresh_row(started)
                    return None
                return EventRow(key, event.ts, agent, f"tool {event.tool}", _short(event.result),
                                "error" if event.error else "ok", event.duration_ms,
                                {"result": _pretty(event.error or event.result)})
            case ToolStarted():
                row = EventRow(key, event.ts, agent, f"{event.tool_type} {event.tool}", _short(event.arguments),
                               "running", None, {"arguments": _pretty(event.arguments)})
                if event.call_id:
                    self._by_call[event.call_id] = row
                return row
            case TurnStarted():
                return EventRow(key, event.ts, agent, "turn", _short(event.text), "started")
            case TurnEnded():
                status = "error" if event.error else "ok"
                return EventRow(key, event.ts, event.last_agent or agent, "turn end", _short(event.error or ""),
                                status, event.duration_ms, {"error": event.error or ""})
            case AgentStarted():
                summary = f"called by {event.parent}" if event.parent else ""
                return EventRow(key, event.ts, agent, "agent", summary, "started")
            case AgentEnded():
                return EventRow(key, event.ts, agent, "agent end", _short(event.output), "ok")
            case HandoffOccurred():
                return EventRow(key, event.ts, agent, "handoff", f"{event.from_agent} → {event.to_agent}", "ok")
            case ModelCalled():
                summary = f"{event.model} ({event.provider}) {event.input_tokens}→{event.output_tokens} tok"
                return EventRow(key, event.ts, agent, "model", summary, "ok", event.duration_ms)
            case ServerStep():
                detail = ", ".join(f"{k}={v}" for k, v in event.detail.items())
                return EventRow(key, event.ts, agent, f"  ↳ {event.step}", _short(detail), event.status,
                                event.duration_ms, {"detail": _pretty(json.dumps(event.detail, default=str))})
            case SearchResults():
                who = event.ran_as.get("name") or event.ran_as.get("oid") or "?"
                summary = event.error or f"{plural(len(event.documents), 'document')} as {who}"
                return EventRow(key, event.ts, agent, "search", _short(summary),
                                "error" if event.error else ("cache_hit" if event.cache_hit else "ok"))
            case Notice():
                return EventRow(key, event.ts, agent or event.source, event.level, _short(event.message, 80),
                                event.level if event.level != "info" else "ok", None, {"message": event.message})
        return EventRow(key, event.ts, agent, event.kind, "", "ok")

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

    def on_key(self, event) -> None:  # noqa: ANN001 - textual.events.Key
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
