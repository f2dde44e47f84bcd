"""The documents the last ``get_documents`` returned: name, the access entries that admitted the user, score,
who the search ran as, and the reason each document is visible."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.widget import Widget
from textual.widgets import Static

if TYPE_CHECKING:
    pass

from console.core.events import SearchResults
from console.ui.widgets.staged_pane import StagedPane, lazy_widget


def _entries(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def _short_id(value: str) -> str:
    return value if len(value) <= 13 else value[:8] + "…"


def visibility_reasons(document: dict[str, Any], ran_as: dict[str, Any]) -> list[str]:
    """Why this caller may see this document, from the access entries the server returned."""
    reasons: list[str] = []
    oid = str(ran_as.get("oid") or "")
    groups = _entries(ran_as.get("groups"))
    names: dict[str, str] = ran_as.get("group_names") or {}
    for entry in _entries(document.get("oid")):
        if entry == "all":
            reasons.append("public: open to all users")
        elif oid and entry == oid:
            reasons.append("your object id is on it")
    for entry in _entries(document.get("group")):
        if entry == "all":
            reasons.append("public: open to group all")
        elif entry in groups:
            reasons.append(f"you are in group {names.get(entry) or _short_id(entry)}")
    if reasons:
        return reasons
    # The server could not learn the caller's groups (Microsoft Graph failed): it says why in visible_because.
    unknown = [
        b
        for b in document.get("visible_because") or []
        if isinstance(b, dict) and b.get("reason") == "unknown"
    ]
    if unknown:
        return [f"reason unknown: {unknown[0].get('detail') or 'the server could not learn your groups'}"]
    return ["admitted by the search service (no matching entry returned)"]


def _score(document: dict[str, Any]) -> str:
    for key in ("@search.score", "score", "search_score"):
        if key in document and document[key] is not None:
            try:
                return f"{float(document[key]):.3f}"
            except (TypeError, ValueError):
                return str(document[key])
    return ""


class ResultsPane(StagedPane):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.border_title = "Search results"
        self.results: SearchResults | None = None

    def contents(self) -> list[Widget]:
        return [
            Static("No search yet: ask for documents.", id="results-summary"),
            lazy_widget("DataTable")(id="results-table", cursor_type="row", zebra_stripes=True),
        ]

    def after_build(self) -> None:
        table = self.query_one("#results-table", lazy_widget("DataTable"))
        table.add_column("document", key="name", width=26)
        table.add_column("why you can see it", key="why", width=28)
        table.add_column("score", key="score", width=5)
        table.add_column("admitted by", key="entries")

    @property
    def document_names(self) -> list[str]:
        return [str(d.get("name", "")) for d in (self.results.documents if self.results else [])]

    def show(self, results: SearchResults | None) -> None:
        self.results = results
        table = self.query_one("#results-table", lazy_widget("DataTable"))
        table.clear()
        summary = self.query_one("#results-summary", Static)
        if results is None:
            summary.update("No search yet: ask for documents.")
            return
        summary.update(self._summary(results))
        for i, document in enumerate(results.documents):
            entries = [*_entries(document.get("oid")), *_entries(document.get("group"))]
            table.add_row(
                Text(str(document.get("name", "?")), style="bold"),
                "; ".join(visibility_reasons(document, results.ran_as)),
                _score(document),
                ", ".join(_short_id(e) for e in entries),
                key=f"doc{i}",
            )

    @staticmethod
    def _summary(results: SearchResults) -> Text:
        ran_as = results.ran_as
        text = Text()
        if results.error:
            text.append("search failed: ", style="bold red")
            text.append(results.error)
            if results.aadsts:
                text.append(f" ({results.aadsts})", style="bold red")
            text.append(" — no documents shown (fail closed)", style="dim")
            return text
        text.append("ran as ", style="dim")
        text.append(str(ran_as.get("name") or "?"), style="bold")
        if ran_as.get("oid"):
            text.append(f" (oid {_short_id(str(ran_as['oid']))})", style="dim")
        groups: Sequence[str] = _entries(ran_as.get("groups"))
        names: dict[str, str] = ran_as.get("group_names") or {}
        if groups:
            text.append(" groups ", style="dim")
            text.append(", ".join(names.get(g) or _short_id(g) for g in groups))
        text.append(f"  │ query “{results.query}”  │ {len(results.documents)} visible", style="")
        if results.cache_hit is not None:
            text.append("  │ OBO " + ("cache hit" if results.cache_hit else "exchanged"), style="dim")
        return text
