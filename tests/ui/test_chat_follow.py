"""Pilot tests of the chat following new messages: a resumed conversation in the tabbed 80×24
layout keeps the newest answer in view, also when it arrived while another tab showed; a person who scrolled up
keeps their place and is told that new messages are below (a bar they can click, or ctrl+end)."""

from __future__ import annotations

import asyncio

import pytest
from textual.pilot import Pilot

from console.core.workspace_views import ChatEntry, Role
from console.ui.app import OboConsoleApp
from console.ui.commands import ActionCommands
from console.ui.widgets.chat_pane import NEW_BELOW, ChatLog, ChatPane
from tests.ui.fake_workspace import FakeWorkspace
from tests.ui.helpers import help_rows, until

SMALL = (80, 24)
QUESTION = "what date is it today"
ANSWER = (
    "Today is **Monday 2 June 2025**.\n\n"
    + "\n".join(f"- point {i}: one more detail" for i in range(5))
    + "\n\nAnything else?"
)


def _resumable(turns: int = 4) -> FakeWorkspace:
    """A workspace whose current conversation is a saved one with ``turns`` questions and answers, as after a
    restart of the console."""
    workspace = FakeWorkspace()
    entries: list[ChatEntry] = []
    for i in range(turns):
        entries += [
            ChatEntry(Role.USER, f"question {i}"),
            ChatEntry(Role.ASSISTANT, f"Answer {i}:\n\n- first thing\n- second thing", "conversation"),
        ]
    workspace.save_session("s0", entries)
    workspace.resume_session("s0")
    workspace.answers[QUESTION] = ANSWER
    return workspace


async def _started(pilot: Pilot, entries: int) -> ChatPane:
    chat = pilot.app.main_screen.query_one(ChatPane)  # type: ignore[attr-defined]
    await until(
        pilot,
        lambda: len(chat.entries) == entries and len(chat.mounted_messages) == entries,
        what="the resumed conversation",
    )
    await pilot.pause()
    return chat


async def _send(pilot: Pilot, text: str) -> None:
    pilot.app.main_screen.query_one("#prompt").focus()  # type: ignore[attr-defined]
    await pilot.press(*text, "enter")


async def _answered(pilot: Pilot, chat: ChatPane, count: int) -> None:
    screen = pilot.app.main_screen  # type: ignore[attr-defined]
    await until(
        pilot,
        lambda: len(chat.entries) == count and not screen.turn_running and not chat.entries[-1].streaming,
        what="the answer",
    )
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.pause()


def _in_view(chat: ChatPane) -> bool:
    """The newest message is wholly inside the log's visible region."""
    view = chat.log_view.content_region
    last = chat.mounted_messages[-1].region
    return view.y <= last.y and last.bottom <= view.bottom and last.height > 0


async def test_resumed_conversation_at_80x24_shows_an_answer_that_arrived_on_another_tab() -> None:
    workspace = _resumable()
    app = OboConsoleApp(workspace=workspace)
    async with app.run_test(size=SMALL) as pilot:
        chat = await _started(pilot, 8)
        log = chat.log_view
        assert app.main_screen.layout_name == "narrow" and log.max_scroll_y > 0
        assert log.scroll_y == log.max_scroll_y  # the resumed conversation opens at its end
        workspace.hold = asyncio.Event()
        await _send(pilot, QUESTION)
        await until(pilot, lambda: app.main_screen.turn_running and chat.entries[-1].text == QUESTION)
        # While the agent works the person looks at the events tab; the answer arrives there.
        await pilot.click("#tab-events")
        await until(
            pilot,
            lambda: app.main_screen.current_pane == "events" and chat.region.height == 0,
            what="the events tab",
        )
        workspace.hold.set()
        await _answered(pilot, chat, 10)
        assert chat.entries[-1].text == ANSWER
        await pilot.click("#tab-chat")
        await until(pilot, lambda: chat.region.height > 0, what="the chat tab")
        await until(
            pilot,
            lambda: log.max_scroll_y > 0 and log.scroll_y == log.max_scroll_y,
            what="the latest message in view",
        )
        assert _in_view(chat), (chat.mounted_messages[-1].region, log.content_region)
        assert not chat.new_below


@pytest.mark.parametrize("size", [SMALL, (160, 45)])
@pytest.mark.parametrize("resumed", [True, False])
async def test_the_chat_follows_each_new_answer(size: tuple[int, int], resumed: bool) -> None:
    workspace = _resumable() if resumed else FakeWorkspace()
    workspace.answers[QUESTION] = ANSWER
    app = OboConsoleApp(workspace=workspace)
    async with app.run_test(size=size) as pilot:
        chat = await _started(pilot, 8 if resumed else 0)
        for n in range(3):
            await _send(pilot, QUESTION)
            await _answered(pilot, chat, (8 if resumed else 0) + 2 * (n + 1))
            assert chat.log_view.scroll_y == chat.log_view.max_scroll_y
            assert _in_view(chat), (n, chat.mounted_messages[-1].region, chat.log_view.content_region)
            assert not chat.new_below


async def test_scrolled_up_keeps_the_place_and_says_new_messages_are_below() -> None:
    workspace = _resumable(6)
    app = OboConsoleApp(workspace=workspace)
    async with app.run_test(size=SMALL) as pilot:
        chat = await _started(pilot, 12)
        log = chat.log_view
        bar = chat.query_one("#chat-new-below")
        workspace.hold = asyncio.Event()
        await _send(pilot, QUESTION)
        await until(pilot, lambda: app.main_screen.turn_running and chat.entries[-1].text == QUESTION)
        await pilot.pause()
        # The person scrolls up on purpose (page up in the chat log) while the agent works.
        log.focus()
        await pilot.press("pageup")
        await until(
            pilot, lambda: log.scroll_y == log.scroll_target_y < log.max_scroll_y, what="the scroll up"
        )
        place = log.scroll_y
        assert not chat.new_below and not log.following
        workspace.hold.set()
        await _answered(pilot, chat, 14)
        assert log.scroll_y == place and log.max_scroll_y > place  # the place is kept
        assert not _in_view(chat)
        assert chat.new_below and bar.region.height == 1 and str(bar.render()) == NEW_BELOW
        # ctrl+end jumps to the latest message and follows again.
        await pilot.press("ctrl+end")
        await until(
            pilot,
            lambda: log.scroll_y == log.max_scroll_y and _in_view(chat) and log.following,
            what="the latest in view, following",
        )
        assert not chat.new_below
        # Up again, another answer arrives: a click on the bar does the same.
        await pilot.press("pageup")
        await until(
            pilot, lambda: log.scroll_y == log.scroll_target_y < log.max_scroll_y, what="the scroll up"
        )
        await chat.add_notice("the MCP server is back")
        # Click only once the bar is laid out: a click at its old (empty) region would miss it.
        await until(pilot, lambda: chat.new_below and bar.region.height == 1, what="the new-messages bar")
        await pilot.click("#chat-new-below")
        await until(
            pilot,
            lambda: log.scroll_y == log.max_scroll_y and _in_view(chat) and not chat.new_below,
            what="the latest in view, the bar gone",
        )
        # Scrolling back down by hand also clears the bar (and follows again).
        await pilot.press("pageup")
        await until(
            pilot, lambda: log.scroll_y == log.scroll_target_y < log.max_scroll_y, what="the scroll up"
        )
        await chat.add_notice("one more")
        await until(pilot, lambda: chat.new_below, what="the new-messages bar")
        await pilot.press("end")
        await until(pilot, lambda: log.scroll_y == log.max_scroll_y, what="the end")
        await until(pilot, lambda: not chat.new_below and log.following, what="following again, the bar gone")


async def test_a_scroll_down_at_the_bottom_keeps_following() -> None:
    # Textual releases its anchor on any scroll, even one that cannot move: the chat must not count it as leaving.
    workspace = _resumable()
    app = OboConsoleApp(workspace=workspace)
    async with app.run_test(size=SMALL) as pilot:
        chat = await _started(pilot, 8)
        log: ChatLog = chat.log_view
        workspace.hold = asyncio.Event()
        await _send(pilot, QUESTION)
        await until(pilot, lambda: app.main_screen.turn_running and chat.entries[-1].text == QUESTION)
        await pilot.pause()
        log.focus()
        await pilot.press("down", "pagedown")
        await until(pilot, lambda: log.following, what="following")
        workspace.hold.set()
        await _answered(pilot, chat, 10)
        assert log.scroll_y == log.max_scroll_y and _in_view(chat) and not chat.new_below


async def test_jump_to_latest_is_a_key_in_help_and_the_palette() -> None:
    app = OboConsoleApp(workspace=FakeWorkspace())
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        titles = [title for title, _, _ in ActionCommands(app.screen).commands()]
        assert "chat: jump to the latest message" in titles
        rows = await help_rows(pilot)
        assert str(rows["chat.latest"][1]) == "ctrl+end"
