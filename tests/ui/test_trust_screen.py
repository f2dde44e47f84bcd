"""The --connect confirmation screen on its own: what it shows, its keys, and the answer it hands the core."""

from __future__ import annotations

from concurrent.futures import Future

import pytest
from textual.app import App
from textual.widgets import Static

from console.core.mcp_trust import TrustRequest
from console.ui.bindings import all_bindings
from console.ui.screens.trust import TrustScreen

REQUEST = TrustRequest(
    url="https://mcp.example.test/mcp",
    origin="https://mcp.example.test",
    audience="api://aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
    authority="https://login.example.test/t",
)


class Host(App[None]):
    def __init__(self, answer: Future[bool | None]) -> None:
        super().__init__()
        self.answer = answer
        self.dismissed: list[bool | None] = []

    def on_mount(self) -> None:
        self.push_screen(TrustScreen(REQUEST, self.answer), callback=self.dismissed.append)


@pytest.mark.parametrize(("key", "trusted"), [("y", True), ("n", False), ("escape", False), ("enter", False)])
async def test_keys_answer_and_the_core_receives_the_answer(key: str, trusted: bool) -> None:
    answer: Future[bool | None] = Future()
    app = Host(answer)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, TrustScreen)
        shown = "\n".join(str(w.render()) for w in screen.query(Static))
        assert REQUEST.origin in shown and REQUEST.url in shown and REQUEST.audience in shown
        assert "anyone can copy it" in shown and "remembered for this origin" in shown
        await pilot.press(key)  # enter: the focused button is "Refuse"
        await pilot.pause()
        assert not isinstance(app.screen, TrustScreen)
    assert answer.result(timeout=0) is trusted and app.dismissed == [trusted]


async def test_closing_unanswered_hands_the_core_no_answer() -> None:
    answer: Future[bool | None] = Future()
    app = Host(answer)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, TrustScreen)
    assert answer.result(timeout=0) is None  # not a refusal to remember


def test_its_keys_are_listed_with_ids() -> None:
    ids = {binding.id: (where, binding.key) for where, binding in all_bindings()}
    assert ids["trust.accept"] == ("trust", "y") and ids["trust.refuse"] == ("trust", "n,escape")
