"""Asks a person whether a ``--connect`` MCP server's origin may receive their sign-in token.

Shown (before anything is sent there) when no rule trusts the origin yet: it names the origin, the URL and the
token's audience, and says why copied metadata proves nothing. The answer is remembered per origin by the core.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import Future, InvalidStateError
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Label, Static

from console.ui import bindings

if TYPE_CHECKING:
    from console.core.mcp_trust import TrustRequest


class TrustScreen(ModalScreen[bool]):
    """Dismissed with True (trust the origin) or False (refuse). ``answer`` receives the same value, or None when
    the screen goes away unanswered (the console quit: refused, not remembered); the core's thread waits on it."""

    CSS_PATH = "trust.tcss"
    AUTO_FOCUS = "#trust-no"  # enter refuses: the safe default
    BINDINGS = bindings.TRUST

    def __init__(self, request: TrustRequest, answer: Future[bool | None] | None = None) -> None:
        super().__init__(id="trust")
        self.request = request
        self.answer = answer

    def compose(self) -> ComposeResult:
        request = self.request
        with Vertical(id="trust-box"):
            yield Label("Send your sign-in token to this server?", id="trust-title")
            yield Static(Text(request.origin, style="bold"), id="trust-origin")
            details = Text()
            details.append("URL             ", style="dim").append(f"{request.url}\n")
            details.append("token audience  ", style="dim").append(f"{request.audience}\n", style="bold")
            details.append("issued by       ", style="dim").append(request.authority)
            yield Static(details, id="trust-details")
            yield Static(
                "No rule trusts this origin yet. Its metadata is public — anyone can copy it — so it proves nothing "
                "about who runs the server. Trust it only if you know them: it will receive your access token for "
                "the audience above. Your answer is remembered for this origin.",
                id="trust-why",
            )
            with Horizontal(id="trust-buttons"):
                yield Button("y  Trust and connect", id="trust-yes", variant="warning")
                yield Button("n  Refuse", id="trust-no", variant="primary")
        yield Footer()

    def action_trust(self) -> None:
        self._answer(True)

    def action_refuse(self) -> None:
        self._answer(False)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self._answer(event.button.id == "trust-yes")

    def _answer(self, trusted: bool) -> None:
        self._settle(trusted)
        self.dismiss(trusted)

    def on_unmount(self) -> None:
        self._settle(None)  # closed unanswered: nothing is sent, nothing remembered

    def _settle(self, trusted: bool | None) -> None:
        if self.answer is not None:
            with contextlib.suppress(InvalidStateError):  # answered already
                self.answer.set_result(trusted)
