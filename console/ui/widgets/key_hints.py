"""A one-line stand-in for the footer in the console's first frame: the same keys as plain text.

Textual's Footer is a widget per key; drawing it in the first frame costs start-up time, so this light line shows
the keys until the real footer replaces it right after the first frame.
"""

from __future__ import annotations

from collections.abc import Iterable

from textual.app import App
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.widgets import Static


class KeyHints(Static):
    DEFAULT_CSS = """
    KeyHints {
        dock: bottom;
        height: 1;
        color: $footer-foreground;
        background: $footer-background;
    }
    """

    def __init__(self, app: App, bindings: Iterable[BindingType], *, id: str | None = None) -> None:
        # Rendered here, not on mount: the first frame must already hold the keys. One hint per key, as the
        # Footer shows them (make_bindings also turns the tuple forms into bindings).
        shown = (binding for binding in Binding.make_bindings(bindings) if binding.show)
        line = Content.assemble(
            *(
                part
                for binding in shown
                for part in ((f" {app.get_key_display(binding)} ", "bold"), f"{binding.description} ")
            )
        )
        super().__init__(line, id=id)
