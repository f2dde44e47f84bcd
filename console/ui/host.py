"""What screens and the command palette ask of the running console app, as a structural type.

``OboConsoleApp`` implements it. Screens depend on this contract, never on the app class: the app imports the
screens, so a screen importing the app would close an import circle. Light to import (no Textual).
"""

from __future__ import annotations

from typing import Protocol

from console.core.clock import Clock
from console.ui.protocols import WorkspaceLike


class ConsoleHost(Protocol):
    """The app as its screens see it: the workspace (None until it is built), the clock, and two notifications."""

    workspace: WorkspaceLike | None
    clock: Clock

    def turn_finished(self) -> None:
        """A turn ended: settle what waited for it (the heap, the status bar)."""
        ...

    def refresh_status(self) -> None:
        """Redraw the status bar from the workspace."""
        ...
