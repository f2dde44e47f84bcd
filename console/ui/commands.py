"""Command-palette providers (ctrl+p): every action by name, accounts, and agent configs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

from console.core.plural import plural
from console.ui.host import ConsoleHost
from console.ui.protocols import ScenarioControl

if TYPE_CHECKING:
    from console.ui.screens.main import MainScreen

Command = tuple[str, Callable[[], Any], str]


class PaletteHost(ConsoleHost, Protocol):
    """The app as the palette sees it: its actions and its main screen (``OboConsoleApp`` implements it)."""

    @property
    def main_screen(self) -> MainScreen: ...

    def action_help(self) -> None: ...

    def action_presenter(self) -> None: ...

    def action_sign_in(self) -> None: ...

    async def action_sign_out(self) -> None: ...

    async def action_switch_account(self, username: str | None = None) -> None: ...

    def action_configs(self) -> None: ...

    async def use_main_agent(self, key: str) -> None: ...

    async def action_scenarios(self) -> None: ...

    async def apply_scenario(self, name: str | None) -> None: ...

    def scenario_control(self) -> ScenarioControl: ...


class _ListProvider(Provider):
    """A provider over a list of (title, callback, help) computed when the palette opens."""

    def commands(self) -> list[Command]:
        raise NotImplementedError

    @property
    def console_app(self) -> PaletteHost:
        return cast(PaletteHost, self.app)

    async def discover(self) -> Hits:
        for title, callback, help_text in self.commands():
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, callback, help_text in self.commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_text)


class ActionCommands(_ListProvider):
    """The console's actions, so every binding is also reachable by name."""

    def commands(self) -> list[Command]:
        app = self.console_app
        screen = app.main_screen
        return [
            ("console: help — keys and actions", app.action_help, "Every binding with its id"),
            ("view: presenter — the flow as numbered steps", app.action_presenter, "F7; esc returns"),
            ("account: sign in", app.action_sign_in, "Device-code sign-in (F2)"),
            ("account: sign out", app.action_sign_out, "Sign out the current account (F4)"),
            ("configs: show agents and validation", app.action_configs, "The configs screen (F5)"),
            (
                "chat: new conversation",
                screen.action_reset_conversation,
                "ctrl+n: a new saved session (the current one stays saved)",
            ),
            (
                "session: export the conversation (Markdown + JSON-lines trace)",
                screen.action_export,
                "ctrl+e: claims masked, never a token",
            ),
            ("session: list saved conversations", screen.action_sessions, "F8: enter resumes one"),
            ("chat: stop the running turn", screen.action_stop_turn, "esc"),
            ("agent: back to the main agent", screen.action_back_to_main, "After a handoff (ctrl+b)"),
            ("chat: load earlier messages", screen.action_load_earlier, "ctrl+g"),
            (
                "chat: jump to the latest message",
                screen.action_jump_to_latest,
                "ctrl+end: and follow new messages again",
            ),
            ("pane: next", screen.action_next_pane, "F6 (shift+F6: previous)"),
            ("account: switch to the next signed-in account", app.action_switch_account, "F3"),
            ("events: filter", screen.action_filter_events, "ctrl+f"),
            ("events: show the server log", screen.action_server_log, "ctrl+l"),
            ("scenario: show the local stack's scenarios", app.action_scenarios, "F9: apply or reset one"),
            ("scenario: reset", partial(app.apply_scenario, None), "Undo the active scenario"),
        ]


class AccountCommands(_ListProvider):
    def commands(self) -> list[Command]:
        app = self.console_app
        workspace = app.workspace
        if workspace is None:
            return []
        current = workspace.current_account.username if workspace.current_account else None
        return [
            (
                f"account: switch to {account.username}",
                partial(app.action_switch_account, account.username),
                account.name,
            )
            for account in workspace.accounts()
            if account.username != current
        ]


class ConfigCommands(_ListProvider):
    def commands(self) -> list[Command]:
        app = self.console_app
        workspace = app.workspace
        if workspace is None:
            return []
        found: list[Command] = []
        for config in workspace.configs():
            status = "valid" if config.valid else f"INVALID ({plural(len(config.errors), 'error')})"
            if config.valid or config.serving:
                found.append(
                    (
                        f"agent: use {config.key} as the main agent",
                        partial(app.use_main_agent, config.key),
                        f"{config.source} — {status}",
                    )
                )
        return found


class SessionCommands(_ListProvider):
    """One "resume" command per saved conversation of the current account (read when the palette opens)."""

    _found: tuple[Command, ...] = ()

    async def startup(self) -> None:
        app = self.console_app
        workspace = app.workspace
        if workspace is None or workspace.current_account is None:
            return
        try:
            summaries = await asyncio.to_thread(workspace.sessions)  # SQLite: off the UI's loop
            current = await asyncio.to_thread(workspace.current_session_id)
        except Exception:  # the palette still opens; F8 shows the error
            return
        screen = app.main_screen
        self._found = tuple(
            (
                f'session: resume "{summary.title or "untitled"}"',
                partial(screen.resume_session, summary.id),
                f"{summary.messages} messages" + (", interrupted" if summary.interrupted else ""),
            )
            for summary in summaries
            if summary.id != current
        )

    def commands(self) -> list[Command]:
        return list(self._found)


class ScenarioCommands(_ListProvider):
    """One "apply" command per scenario of the running local stack (read when the palette opens; none without)."""

    _found: tuple[Command, ...] = ()

    async def startup(self) -> None:
        app = self.console_app
        try:
            status = await asyncio.to_thread(lambda: app.scenario_control().status())
        except Exception:  # no stack, Azure mode: no scenario commands (F9 says why)
            return
        self._found = tuple(
            (f"scenario: apply {info.name}", partial(app.apply_scenario, info.name), info.title)
            for info in status.scenarios
        )

    def commands(self) -> list[Command]:
        return list(self._found)
