"""The first frame's light stand-ins (prompt placeholder, key hints) and their swap for the real widgets."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widgets import Footer

from console.ui.app import OboConsoleApp
from console.ui.screens.main import MainScreen
from console.ui.widgets.chat_pane import ChatPane
from console.ui.widgets.key_hints import KeyHints
from console.ui.widgets.prompt_input import PromptInput
from console.ui.widgets.prompt_placeholder import PLACEHOLDER, PromptPlaceholder
from tests.ui.fake_workspace import FakeWorkspace
from tests.ui.helpers import until

SIZE = (160, 45)


class ChatOnly(App[None]):
    CSS_PATH = "../../console/ui/app.tcss"

    def __init__(self) -> None:
        super().__init__()
        self.submitted: list[str] = []

    def compose(self) -> ComposeResult:
        yield ChatPane(id="chat")

    def on_prompt_input_submitted(self, event: PromptInput.Submitted) -> None:
        self.submitted.append(event.text)


async def test_keys_typed_before_the_real_prompt_are_handed_over() -> None:
    app = ChatOnly()
    async with app.run_test(size=(80, 20)) as pilot:
        placeholder = app.query_one(PromptPlaceholder)
        assert str(placeholder.render()) == PLACEHOLDER and not app.query(PromptInput)
        placeholder.focus()
        await pilot.press(*"show my docs", "backspace", "s")
        assert placeholder.typed == "show my docs" and str(placeholder.render()) == "show my docs"
        await pilot.press("enter")
        assert placeholder.submit_pending
        await app.query_one(ChatPane).build()
        await pilot.pause()
        assert not app.query(PromptPlaceholder)
        prompt = app.query_one(PromptInput)
        assert app.submitted == ["show my docs"] and prompt.sent == ["show my docs"] and prompt.text == ""


async def test_typed_text_without_enter_stays_in_the_prompt() -> None:
    app = ChatOnly()
    async with app.run_test(size=(80, 20)) as pilot:
        app.query_one(PromptPlaceholder).focus()
        await pilot.press(*"hello")
        await app.query_one(ChatPane).build()
        await pilot.pause()
        prompt = app.query_one(PromptInput)
        assert prompt.text == "hello" and prompt.cursor_location == (0, 5) and app.submitted == []


def test_the_first_frame_has_the_key_hints_and_the_placeholder() -> None:
    screen = MainScreen()
    app = OboConsoleApp(workspace=FakeWorkspace())
    hints = KeyHints(app, [*screen.BINDINGS, *app.BINDINGS])
    text = str(hints.render())
    for key, what in (("f1", "Help"), ("^q", "Quit"), ("^e", "Export"), ("^n", "New chat")):
        assert f" {key} {what} " in text, (key, what, text)
    assert "Next pane" not in text  # bindings hidden from the footer stay hidden


async def test_the_real_footer_and_prompt_replace_the_stand_ins() -> None:
    app = OboConsoleApp(workspace=FakeWorkspace())
    async with app.run_test(size=SIZE) as pilot:
        screen = app.main_screen
        await until(
            pilot, lambda: bool(screen.query(PromptInput)) and bool(screen.query(Footer)), what="the swap"
        )
        await pilot.pause()
        assert not screen.query(KeyHints) and not screen.query(PromptPlaceholder)
        assert app.focused is screen.query_one(PromptInput)
