"""The base of panes whose contents (tables, tabs) mount just after the first frame, so the console's first
screen — frames, titles, the prompt, the status line — appears as fast as a minimal Textual app's."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Literal, TypeAlias, overload

import textual.widgets
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import Static

if TYPE_CHECKING:
    from textual.widgets import DataTable, Input, Log, TabbedContent

# What the panes put in table cells: plain strings and styled rich Text.
Cell: TypeAlias = str | Text


@overload
def lazy_widget(name: Literal["DataTable"]) -> type[DataTable[Cell]]: ...
@overload
def lazy_widget(name: Literal["TabbedContent"]) -> type[TabbedContent]: ...
@overload
def lazy_widget(name: Literal["Input"]) -> type[Input]: ...
@overload
def lazy_widget(name: Literal["Log"]) -> type[Log]: ...
def lazy_widget(name: Literal["DataTable", "TabbedContent", "Input", "Log"]) -> type[Widget]:
    """A textual widget class imported when first used, typed as that class (so its API is checked): importing
    tables, tabs and logs with the rest would delay the first frame. (``textual.widgets`` imports each class's
    module on first attribute access.)"""
    widget: type[Widget] = getattr(textual.widgets, name)
    return widget


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
