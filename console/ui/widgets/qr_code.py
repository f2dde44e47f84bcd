"""A QR code drawn with half-block characters (two modules per character cell), dark on light so phones read it."""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.widgets import Static

_DARK, _LIGHT = "black", "white"


def qr_text(data: str, border: int = 2) -> Text:
    import segno  # deferred: only when a QR code is shown (the sign-in screen loads with the app)

    rows = [list(row) for row in segno.make(data, error="l").matrix_iter(scale=1, border=border)]
    if len(rows) % 2:
        rows.append([0] * len(rows[0]))
    text = Text(no_wrap=True)
    for top, bottom in zip(rows[0::2], rows[1::2], strict=True):
        for upper, lower in zip(top, bottom, strict=True):
            text.append("▀", Style(color=_DARK if upper else _LIGHT, bgcolor=_DARK if lower else _LIGHT))
        text.append("\n")
    text.rstrip()
    return text


class QRCode(Static):
    def __init__(self, data: str = "", *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.data = data

    def on_mount(self) -> None:
        if self.data:
            self.set_data(self.data)

    def set_data(self, data: str) -> None:
        self.data = data
        self.update(qr_text(data) if data else "")
