"""``OBO_CONSOLE_CONVERSATIONS=memory`` (each web tab's console): conversations in an in-memory SQLite database, no
file anywhere, not seen by another store of the same account; the full-screen console turns it on only when the
setting says so, and the terminal console (the default) still saves and resumes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from console.cli import build_parser
from console.commands.tui import _workspace_factory
from console.core import sessions
from console.core.events import TurnEnded, TurnStarted
from console.core.sessions import SessionStore, keep_conversations_in_memory, sessions_dir
from console.core.settings import load_settings
from mcp_server.errors import UserError

ALICE = "alice@contoso.example"


@pytest.fixture(autouse=True)
def saved_by_default() -> Iterator[None]:
    yield
    keep_conversations_in_memory(False)  # the process-wide choice must not leak into other tests


def _converse(store: SessionStore, question: str) -> str:
    session = store.new_session("main")
    store.record(TurnStarted(account=ALICE, turn_id="t1", text=question))
    store.record(TurnEnded(account=ALICE, turn_id="t1", agent="A", output="an answer"))
    return session


def test_an_in_memory_store_keeps_conversations_without_any_file() -> None:
    with SessionStore(ALICE, in_memory=True) as store:
        assert store.path is None
        session = _converse(store, "show my documents")
        assert [(m.role, m.text) for m in store.load(session).messages] == [
            ("user", "show my documents"),
            ("assistant", "an answer"),
        ]
        assert [s.id for s in store.list_sessions()] == [session]
        with SessionStore(ALICE, in_memory=True) as other:  # another tab of the same account
            assert other.latest() is None
    assert list(sessions_dir().iterdir()) == []


def test_the_process_wide_choice_and_the_saved_default() -> None:
    with SessionStore(ALICE) as saved:  # the default: a file that the next console resumes
        _converse(saved, "kept")
        assert saved.path is not None and saved.path.parent == sessions_dir()
    keep_conversations_in_memory()
    with SessionStore(ALICE) as tab:
        assert tab.path is None and tab.latest() is None  # neither reads nor writes the saved one
        _converse(tab, "not kept")
    keep_conversations_in_memory(False)
    with SessionStore(ALICE) as resumed:
        latest = resumed.latest()
        assert latest is not None and latest.title == "kept" and len(resumed.list_sessions()) == 1


def test_the_console_keeps_conversations_in_memory_only_when_the_setting_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    make = _workspace_factory(build_parser().parse_args([]))
    make().close()  # the terminal console: saved, as before
    assert sessions._in_memory is False
    monkeypatch.setenv("OBO_CONSOLE_CONVERSATIONS", "memory")
    make().close()
    assert sessions._in_memory is True
    monkeypatch.setenv("OBO_CONSOLE_CONVERSATIONS", "tab")
    with pytest.raises(UserError) as refused:
        load_settings()
    assert refused.value.message == (
        "Invalid settings:\n  OBO_CONSOLE_CONVERSATIONS: Input should be 'saved' or 'memory'"
    )
