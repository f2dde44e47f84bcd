"""The user's access token and the latest OBO token side by side, jwt.ms style: each claim, its value in both
tokens and its plain-language meaning. The audience before and after the exchange is highlighted; expiry claims
count down. Only decoded claims ever reach this widget — never a raw token."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.widget import Widget
from textual.widgets import Static

if TYPE_CHECKING:
    from textual.widgets import DataTable

from console.core.clock import Clock, format_countdown
from console.ui.widgets.staged_pane import StagedPane, lazy_widget

# Claims that matter most for this flow come first, in this order; the rest follow alphabetically.
_ORDER = [
    "aud",
    "scp",
    "roles",
    "iss",
    "tid",
    "oid",
    "name",
    "preferred_username",
    "groups",
    "azp",
    "appid",
    "ver",
    "exp",
    "iat",
    "nbf",
]
_TIME = {"exp", "iat", "nbf", "auth_time"}
_HIGHLIGHT = "bold black on yellow"
_VALUE_WIDTH = 24
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def compact(value: str) -> str:
    """Ids shortened to their first 8 digits so both tokens fit side by side (the full value is shown for the
    selected claim below the table)."""
    return _UUID.sub(lambda m: m.group(0)[:8] + "…", value)


def _meaning(name: str) -> str:
    from console.core.claims import claim_meaning  # deferred: PyJWT and cryptography, past the first frame

    return claim_meaning(name)


def _format_time(value: Any, name: str, clock: Clock) -> str:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return str(value)
    when = datetime.fromtimestamp(seconds, UTC).strftime("%H:%M:%S UTC")
    if name == "exp":
        left = seconds - clock.time()
        return f"{when} ({'in ' + format_countdown(left) if left > 0 else 'expired'})"
    return when


def _format(name: str, value: Any, clock: Clock) -> str:
    if value is None:
        return "—"
    if name in _TIME:
        return _format_time(value, name, clock)
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) if value else "(none)"
    return str(value)


class ClaimsPane(StagedPane):
    def __init__(self, clock: Clock, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.border_title = "Claims"
        self.clock = clock
        self.user: dict[str, Any] = {}
        self.obo: dict[str, Any] = {}
        self.step_up: tuple[str, str] | None = None  # the sign-in's amr/acrs before and after a step-up

    def contents(self) -> list[Widget]:
        return [
            Static("Sign in to see your token's claims.", id="claims-summary"),
            lazy_widget("DataTable")(id="claims-table", cursor_type="row", zebra_stripes=True),
            Static("", id="claims-detail"),
        ]

    def after_build(self) -> None:
        table = self.query_one("#claims-table", lazy_widget("DataTable"))
        table.add_column("claim", key="claim")
        table.add_column("user token → MCP API", key="user", width=_VALUE_WIDTH)
        table.add_column("OBO token → Search", key="obo", width=_VALUE_WIDTH)
        table.add_column("meaning", key="meaning")
        self.set_interval(1.0, self.refresh_countdowns, name="claims-countdown")

    def show(self, user: dict[str, Any] | None, obo: dict[str, Any] | None) -> None:
        self.user, self.obo = dict(user or {}), dict(obo or {})
        table = self.query_one("#claims-table", lazy_widget("DataTable"))
        table.clear()
        names = [n for n in _ORDER if n in self.user or n in self.obo]
        names += sorted((set(self.user) | set(self.obo)) - set(names))
        for name in names:
            table.add_row(*self._cells(name), key=name)
        self._update_summary()

    def show_step_up(self, before: str | None, after: str | None = None) -> None:
        """A step-up signed the user in again: show how the sign-in was done before and after (None: clear)."""
        self.step_up = (before, after or "") if before is not None else None
        self._update_summary()

    def _cells(self, name: str) -> tuple[Text, Text, Text, Text]:
        user = _format(name, self.user.get(name), self.clock) if self.user else ""
        obo = _format(name, self.obo.get(name), self.clock) if self.obo else ""
        changed = name == "aud" and bool(self.user) and bool(self.obo)
        style = _HIGHLIGHT if changed else ""
        return (
            Text(name, style="bold"),
            Text(compact(user), style=style),
            Text(compact(obo), style=style),
            Text(_meaning(name), style="dim"),
        )

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail(str(event.row_key.value) if event.row_key is not None else None)

    def _show_detail(self, name: str | None) -> None:
        detail = self.query_one("#claims-detail", Static)
        if not name or not (self.user or self.obo):
            detail.update("")
            return
        text = Text()
        text.append(name, style="bold")
        text.append(f"  {_meaning(name)}", style="italic")
        for label, claims in (("user", self.user), ("OBO", self.obo)):
            if claims:
                text.append(f"\n  {label}: ", style="dim")
                text.append(_format(name, claims.get(name), self.clock))
        detail.update(text)

    def _update_summary(self) -> None:
        summary = self.query_one("#claims-summary", Static)
        if not self.user:
            summary.update("Sign in to see your token's claims.")
            return
        text = Text()
        text.append("audience ", style="dim")
        text.append(str(self.user.get("aud", "?")), style=_HIGHLIGHT)
        if self.obo:
            text.append(" → ", style="bold")
            text.append(str(self.obo.get("aud", "?")), style=_HIGHLIGHT)
            text.append("  (on-behalf-of exchange)", style="dim")
        else:
            text.append("  no OBO token yet: ask for documents", style="dim italic")
        if self.step_up is not None:
            text.append("\nstep-up ", style="dim")
            text.append(self.step_up[0])
            if self.step_up[1]:
                text.append(" → ", style="bold")
                text.append(self.step_up[1], style=_HIGHLIGHT)
            text.append("  (Conditional Access claims challenge)", style="dim")
        for label, claims in (("user", self.user), ("OBO", self.obo)):
            if "exp" in claims:
                left = float(claims["exp"]) - self.clock.time()
                text.append(f"  │ {label} token ", style="dim")
                text.append(
                    "expires in " + format_countdown(left) if left > 0 else "expired",
                    style="bold" if left > 300 else "bold red",
                )
        summary.update(text)

    def refresh_countdowns(self) -> None:
        if not (self.user or self.obo):
            return
        table = self.query_one("#claims-table", lazy_widget("DataTable"))
        if "exp" in table.rows:
            _, user, obo, _ = self._cells("exp")
            table.update_cell("exp", "user", user)
            table.update_cell("exp", "obo", obo)
        self._update_summary()
