"""The screen as plain text lines, as a person reads it (for assertions and the secret scan)."""

from __future__ import annotations

from textual.app import App


def screen_text(app: App) -> str:
    strips = app.screen._compositor.render_strips()  # no public text export in Textual 8
    return "\n".join(strip.text.rstrip() for strip in strips)
