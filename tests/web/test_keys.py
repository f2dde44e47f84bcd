"""What the page needs from the console's keys and links, with Pilot: keys a browser keeps for itself still reach
their actions through the command palette (or the clickable footer), and the sign-in link opens with `o` or a
click (in the web console ``App.open_url`` opens it in a new tab of the page's browser: tests/web/test_web_console.py
presses `o` in Chromium)."""

from __future__ import annotations

import re

import pytest
from textual.binding import Binding
from textual.widgets import Static

from console.ui import bindings, commands
from console.ui.app import OboConsoleApp
from console.ui.screens.sign_in import SignInScreen
from tests.ui.fake_workspace import FakeWorkspace
from tests.ui.helpers import until

SIZE = (160, 45)
# Chromium hands these to the page never (it keeps them for its tabs and windows); Firefox quits on ctrl+q.
BROWSER_KEEPS = {
    "ctrl+n",
    "ctrl+t",
    "ctrl+w",
    "ctrl+shift+n",
    "ctrl+shift+t",
    "ctrl+shift+w",
    "ctrl+tab",
    "ctrl+q",
}


def _kept_by_browsers() -> list[Binding]:
    kept = []
    for _where, binding in bindings.all_bindings():
        keys = {key.strip() for key in binding.key.split(",")}
        if keys <= BROWSER_KEEPS:
            kept.append(binding)
    return kept


def test_the_bindings_browsers_keep_are_the_ones_this_test_covers() -> None:
    assert sorted(b.id or "" for b in _kept_by_browsers()) == ["app.quit", "app.theme", "chat.reset"]


async def test_every_action_on_a_key_browsers_keep_is_in_the_command_palette() -> None:
    app = OboConsoleApp(workspace=FakeWorkspace())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        provider = commands.ActionCommands(app.screen)
        callbacks = [callback for _title, callback, _help in provider.commands()]
        callbacks += [command.callback for command in app.get_system_commands(app.screen)]
        names = {getattr(callback, "__name__", "") for callback in callbacks}
        for binding in _kept_by_browsers():
            action = re.sub(r"\(.*\)$", "", binding.action)
            assert f"action_{action}" in names, f"{binding.key} ({binding.id}) has no palette command"


@pytest.mark.parametrize("how", ["key", "click"])
async def test_the_sign_in_link_opens_with_o_or_a_click(how: str, monkeypatch: pytest.MonkeyPatch) -> None:
    workspace = FakeWorkspace(signed_in=None)
    app = OboConsoleApp(workspace=workspace)
    opened: list[tuple[str, bool]] = []
    # A browser cannot run inside this test: record what Textual's driver would be asked to open.
    monkeypatch.setattr(app, "open_url", lambda url, *, new_tab=True: opened.append((url, new_tab)))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, SignInScreen), what="the sign-in screen")
        screen = app.screen
        assert isinstance(screen, SignInScreen)
        await until(pilot, lambda: screen.flow is not None, what="the device code")
        await pilot.pause()
        assert "o open URL" in str(screen.query_one("#sign-in-hint", Static).render())
        if how == "key":
            await pilot.press("o")
        else:
            await pilot.click("#sign-in-url")
        assert opened == [(workspace.flows[0].verification_uri, True)]
        assert isinstance(app.screen, SignInScreen)  # still waiting for the person to approve
