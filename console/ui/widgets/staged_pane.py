"""The base of panes whose contents (tables, tabs) mount just after the first frame, so the console's first
screen — frames, titles, the prompt, the status line — appears as fast as a minimal Textual app's."""

from __future__ import annotations

import asyncio

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import Static


def lazy_widget(name: str) -> type[Widget]:
    """A textual widget class imported when first used (tables and tabs cost start-up time otherwise)."""
    import textual.widgets

    return getattr(textual.widgets, name)


class StagedPane(Vertical):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="pane")
        self._built = asyncio.Event()
        self._building = False

    def compose(self) -> ComposeResult:
        yield Static("…", classes="pane-loading")

    def contents(self) -> list[Widget]:
        """The pane's real children."""
        raise NotImplementedError

    async def populate(self) -> None:
        """Children that must be added to mounted children (e.g. tab panes)."""

    def after_build(self) -> None:
        """Set-up that needs the children (columns, timers)."""

    @property
    def built(self) -> bool:
        return self._built.is_set()

    async def build(self) -> None:
        """Mount the contents once; concurrent callers wait for the first."""
        if self._building or self.built:
            await self._built.wait()
            return
        self._building = True
        await self.query(".pane-loading").remove()
        await self.mount_all(self.contents())
        await self.populate()
        self.after_build()
        self._built.set()
