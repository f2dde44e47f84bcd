"""`obo-console` with no sub-command: the full-screen console.

Only textual and light modules are imported before the first frame; the workspace (agents, fastmcp, msal,
azure) is built by the factory below in a thread after it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

from console.commands import settings_overrides
from console.ui.app import OboConsoleApp, load_keymap
from mcp_server.errors import UserError
from mcp_server.paths import data_dir

if TYPE_CHECKING:
    from console.core.workspace import Workspace


def _workspace_factory(args: argparse.Namespace) -> Callable[[], Workspace]:
    def make() -> Workspace:
        # Run in a thread after the first frame: the core (the Agents SDK, msal, fastmcp, pydantic) loads here.
        from console.core.sessions import keep_conversations_in_memory  # deferred: past the first frame
        from console.core.settings import load_settings  # deferred: past the first frame
        from console.core.workspace import Workspace  # deferred: past the first frame

        settings = load_settings(**settings_overrides(args))
        if settings.conversations == "memory":  # a web tab: its conversations end with it
            keep_conversations_in_memory()
        return Workspace(settings, connect=getattr(args, "connect", None))

    return make


def run(args: argparse.Namespace) -> int:
    try:
        keymap = load_keymap(data_dir() / "keymap.json")
    except ValueError as exc:
        raise UserError(
            str(exc), hint="Fix or delete the keymap file; `obo-console` lists binding ids on F1."
        ) from exc
    app = OboConsoleApp(workspace_factory=_workspace_factory(args), keymap=keymap, settle_heap=True)
    try:
        result = app.run()
    finally:
        # ctrl+q closes the workspace itself; after a crash this still stops a server the console launched.
        if app.workspace is not None:
            app.workspace.close()
    return int(result or 0)
