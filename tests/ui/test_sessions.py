"""Pilot tests of export and saved sessions in the console, with the fixed-data workspace (the real Workspace and
local stack: test_flow.py::test_export_new_session_and_resume_with_the_real_workspace)."""

from __future__ import annotations

import threading
from pathlib import Path

from textual.widgets import DataTable, Label, OptionList

from console.core.workspace_views import ChatEntry, Role
from console.ui.app import OboConsoleApp
from console.ui.screens.sessions import SessionsScreen
from console.ui.widgets.chat_pane import ChatPane
from console.ui.widgets.message import INTERRUPTED_MARK, MessageView
from tests.ui.fake_workspace import FakeWorkspace
from tests.ui.helpers import help_rows, open_palette, until

SIZE = (160, 45)


def _notifications(app: OboConsoleApp) -> list[str]:
    return [f"{n.title}: {n.message}" for n in app._notifications]


async def _ask(pilot, text: str) -> None:  # pilot: a textual Pilot
    await pilot.press(*text, "enter")
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def _palette_options(app: OboConsoleApp) -> list[str]:
    try:
        options = app.screen.query_one(OptionList)
    except Exception:  # the palette is not open (yet)
        return []
    return [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]


async def test_ctrl_e_exports_in_a_worker_thread_and_shows_both_paths() -> None:
    workspace = FakeWorkspace()
    threads: list[str] = []
    real_export = workspace.export

    def export(path_dir: str | Path | None = None) -> tuple[Path, Path]:
        threads.append(threading.current_thread().name)
        return real_export(path_dir)

    workspace.export = export  # type: ignore[method-assign]
    app = OboConsoleApp(workspace=workspace)
    async with app.run_test(size=SIZE) as pilot:
        await _ask(pilot, "hello")
        footer_keys = [str(key.render()) for key in app.main_screen.query("FooterKey")]
        assert any("Export" in text for text in footer_keys), footer_keys
        await pilot.press("ctrl+e")  # with the prompt focused: the binding has priority over "end of line"
        await until(pilot, lambda: app.main_screen.last_export is not None, what="the export")
        markdown, trace = app.main_screen.last_export  # type: ignore[misc]
        assert threads and threads[0] != threading.main_thread().name  # not on the UI's loop
        assert markdown.read_text() == "user: hello\nassistant: You said: hello\n" and trace.exists()
        shown = _notifications(app)
        assert any(str(markdown) in text and str(trace) in text and "exported" in text for text in shown), (
            shown
        )


async def test_export_failure_and_not_signed_in_are_said_clearly() -> None:
    workspace = FakeWorkspace()

    def broken(path_dir: object = None) -> tuple[Path, Path]:
        raise OSError("Could not write the export to /readonly: Permission denied.")

    workspace.export = broken  # type: ignore[method-assign]
    app = OboConsoleApp(workspace=workspace)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+e")
        await until(pilot, lambda: any("Export failed" in t for t in _notifications(app)), what="the error")
        assert any("Permission denied" in t for t in _notifications(app))
        assert app.main_screen.last_export is None
    app = OboConsoleApp(workspace=FakeWorkspace(signed_in=None), start_workspace=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+e")
        await pilot.pause()
        assert any("Sign in first" in t for t in _notifications(app))


async def test_f8_lists_saved_sessions_and_resumes_one_with_the_interrupted_marker() -> None:
    workspace = FakeWorkspace()
    workspace.save_session(
        "s0",
        [
            ChatEntry(Role.USER, "show my documents"),
            ChatEntry(Role.ASSISTANT, "You can see 3 doc", "Documents agent", interrupted=True),
        ],
    )
    app = OboConsoleApp(workspace=workspace)
    async with app.run_test(size=SIZE) as pilot:
        await _ask(pilot, "hello")
        await pilot.press("f8")
        await until(
            pilot, lambda: isinstance(app.screen, SessionsScreen) and app.screen.loaded, what="sessions"
        )
        table = app.screen.query_one(DataTable)
        assert [str(table.get_cell(row, "title")) for row in table.rows] == ["hello", "show my documents"]
        assert str(table.get_cell("s1", "current")) == "▶" and str(table.get_cell("s0", "current")) == ""
        assert "interrupted" in str(table.get_cell("s0", "state"))
        table.move_cursor(row=table.get_row_index("s0"))
        await pilot.press("enter")
        chat = app.main_screen.query_one(ChatPane)
        await until(pilot, lambda: [e.text for e in chat.entries][:1] == ["show my documents"], what="resume")
        assert "resume:s0" in workspace.calls and workspace.current_session_id() == "s0"
        cut = chat.mounted_messages[-1]
        assert cut.entry.interrupted and cut.has_class("-interrupted")
        assert INTERRUPTED_MARK in [str(label.render()) for label in cut.query(Label)]
        assert "⚠ interrupted" in INTERRUPTED_MARK
        complete = [m for m in chat.query(MessageView) if not m.entry.interrupted]
        assert all(not m.query(".interrupted-mark") for m in complete)
        # esc closes the list without changing the conversation.
        await pilot.press("f8")
        await until(pilot, lambda: isinstance(app.screen, SessionsScreen) and app.screen.loaded)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, SessionsScreen) and workspace.current_session_id() == "s0"


async def test_palette_resumes_a_session_exports_and_ctrl_n_starts_a_new_one() -> None:
    workspace = FakeWorkspace()
    app = OboConsoleApp(workspace=workspace)
    async with app.run_test(size=SIZE) as pilot:
        await _ask(pilot, "first question")
        await pilot.press("ctrl+n")  # a new saved session; the first stays saved
        await until(pilot, lambda: not app.main_screen.query_one(ChatPane).entries, what="the reset")
        assert [s.id for s in workspace.sessions()] == ["s2", "s1"] and workspace.current_session_id() == "s2"
        await open_palette(pilot)
        await pilot.press(*"resume")
        await until(
            pilot,
            lambda: any('resume "first question"' in o for o in _palette_options(app)),
            what="the resume command in the palette",
        )
        await pilot.press("enter")
        chat = app.main_screen.query_one(ChatPane)
        await until(pilot, lambda: [e.text for e in chat.entries][:1] == ["first question"], what="resumed")
        assert workspace.current_session_id() == "s1"

        await open_palette(pilot)
        await pilot.press(*"session: export")
        await until(pilot, lambda: any("export the conversation" in o for o in _palette_options(app)))
        await pilot.press("enter")
        await until(
            pilot, lambda: app.main_screen.last_export is not None, what="the export from the palette"
        )
        assert app.main_screen.last_export[0].read_text().startswith("user: first question")  # type: ignore[index]


async def test_help_lists_the_session_keys() -> None:
    app = OboConsoleApp(workspace=FakeWorkspace(), keymap={"session.export": "ctrl+x"})
    async with app.run_test(size=SIZE) as pilot:
        rows = await help_rows(pilot)
        for wanted in ("session.export", "session.list", "sessions.resume", "sessions.close", "chat.reset"):
            assert wanted in rows, wanted
        assert str(rows["session.export"][1]) == "ctrl+x" and str(rows["session.list"][1]) == "f8"
