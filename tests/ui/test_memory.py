"""What a long session keeps (issue 18, item 6): the chat mounts a bounded window of messages, the events pane keeps a
bounded number of rows, a streamed answer keeps the block widgets it was streamed into, and between turns the panes
forget the lines they drew for nobody. The long-session figures themselves: benchmarks/bench_console_soak.py."""

from __future__ import annotations

import pytest
from textual.pilot import Pilot
from textual.widgets import Markdown, Static

from console.core.events import ToolEnded, ToolStarted
from console.ui.app import HEAP_SETTLE_DELAY, OboConsoleApp
from console.ui.widgets.chat_pane import ChatPane
from console.ui.widgets.events_pane import EventsPane
from tests.ui.fake_workspace import FakeWorkspace
from tests.ui.helpers import timers_fired, until

SIZE = (160, 45)
USER = "alice@contoso.example"
LIST_ANSWER = "Here they are:\n\n" + "\n".join(f"- **Document {i}**: what it holds" for i in range(8))


async def _turn(pilot: Pilot, question: str) -> None:
    """One turn through the prompt, up to its end and the pause between turns that follows it."""
    app: OboConsoleApp = pilot.app  # type: ignore[assignment]
    screen = app.main_screen
    screen.query_one("#prompt").focus()
    await pilot.press(*question, "enter")
    await until(pilot, lambda: not screen.turn_running and not screen.workers, 30, f"the turn {question!r}")
    await timers_fired(pilot, HEAP_SETTLE_DELAY * 1.5)


async def test_many_turns_keep_twelve_messages_mounted_and_say_how_many_are_earlier() -> None:
    app = OboConsoleApp(workspace=FakeWorkspace())
    async with app.run_test(size=SIZE) as pilot:
        chat = app.main_screen.query_one(ChatPane)
        await until(pilot, lambda: bool(chat.query("#prompt")), what="the prompt")
        for n in range(10):
            await _turn(pilot, "show my documents" if n % 2 == 0 else f"what time is it {n}")
        assert len(chat.entries) == 20
        mounted = chat.mounted_messages
        assert len(mounted) == 12 and len(app.main_screen.query(Markdown)) == 6
        assert [m.entry for m in mounted] == chat.entries[8:]
        earlier = chat.query_one("#chat-earlier", Static)
        assert earlier.display and "↑ 8 earlier messages" in str(earlier.render())


async def test_the_events_pane_keeps_the_latest_500_rows_and_1000_log_lines() -> None:
    app = OboConsoleApp(workspace=FakeWorkspace())
    async with app.run_test(size=SIZE) as pilot:
        events = app.main_screen.query_one(EventsPane)
        await until(pilot, lambda: events.built, what="the events table")
        events.clear()
        for i in range(600):  # a call's end completes its start's row: one row per call
            events.add_event(ToolStarted(account=USER, agent="Documents agent", tool="get_documents",
                                         call_id=f"c{i}", arguments=f'{{"call": {i}}}'))  # fmt: skip
            events.add_event(ToolEnded(account=USER, agent="Documents agent", tool="get_documents",
                                       call_id=f"c{i}", result='{"documents": []}', duration_ms=3.0))  # fmt: skip
        events.flush_rows()
        await pilot.pause()
        assert len(events.rows) == 500 and events.table.row_count == 500
        assert events.rows[0].summary == '{"call": 100}' and events.rows[-1].summary == '{"call": 599}'
        assert (events.rows[-1].status, events.rows[-1].duration_ms) == ("done", 3.0)
        events.write_server_log([f"server line {i}" for i in range(1_200)])
        assert events.server_log.line_count == 1_000 and events.server_log.lines[0] == "server line 200"


async def test_a_streamed_answer_keeps_the_blocks_it_was_streamed_into() -> None:
    app = OboConsoleApp(workspace=FakeWorkspace())
    async with app.run_test(size=SIZE) as pilot:
        chat = app.main_screen.query_one(ChatPane)
        for i in range(0, len(LIST_ANSWER), 9):
            await chat.stream_delta("conversation", LIST_ANSWER[i : i + 9])
        markdown = chat.mounted_messages[-1].query_one(Markdown)
        await until(pilot, lambda: len(markdown.query("MarkdownBullet")) == 8, what="the streamed list")
        blocks = list(markdown.children)
        await chat.end_turn(LIST_ANSWER, "conversation", None)
        await pilot.pause()
        assert all(a is b for a, b in zip(markdown.children, blocks, strict=True))
        assert chat.entries[-1].text == LIST_ANSWER and not chat.entries[-1].streaming
        # A final text that differs from what was streamed is what the answer shows in the end.
        await chat.stream_delta("conversation", "Draft answer")
        draft = chat.mounted_messages[-1].query_one(Markdown)
        await chat.end_turn("Final answer, **corrected**.", "conversation", None)
        await pilot.pause()
        shown = [str(block.render()) for block in draft.query(Static)]
        assert any("Final answer, corrected." in text for text in shown) and not any(
            "Draft" in t for t in shown
        )
        assert chat.entries[-1].text == "Final answer, **corrected**."


@pytest.mark.parametrize("settle_heap", [False, True])
async def test_between_turns_the_events_table_forgets_the_rows_it_drew(
    settle_heap: bool, request: pytest.FixtureRequest
) -> None:
    """The table's drawn rows and cells are dropped through its public ``notify_style_update`` in the pause after
    each turn, with or without the heap settling; the rows themselves stay. (glibc's ``malloc_trim`` is found on
    the Linux machines the suite runs on.)"""
    if settle_heap:
        request.getfixturevalue("unfrozen_heap")
    app = OboConsoleApp(workspace=FakeWorkspace(), settle_heap=settle_heap)
    async with app.run_test(size=SIZE) as pilot:
        events = app.main_screen.query_one(EventsPane)
        await until(pilot, lambda: events.built and bool(app.main_screen.query("#prompt")), what="the panes")
        forgotten: list[int] = []
        real = events.table.notify_style_update
        events.table.notify_style_update = lambda: (forgotten.append(events.table.row_count), real())  # type: ignore[method-assign]
        await _turn(pilot, "show my documents")
        # (Textual may call it too, on a style change: the pause after the turn is the last call)
        assert forgotten and forgotten[-1] == events.table.row_count > 0
        first, calls = forgotten[-1], len(forgotten)
        await _turn(pilot, "what time is it")
        assert len(forgotten) > calls and forgotten[-1] == events.table.row_count == len(events.rows) > first
        # With the heap settling (as obo-console runs), the free memory goes back to the system after each turn.
        assert app.heap.released == (2 if settle_heap else 0)
