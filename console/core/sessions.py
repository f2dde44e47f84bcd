"""Conversations saved as they happen: one SQLite database (WAL) per account in ``data_dir()/sessions/`` — or,
in a process that must leave none behind (a web tab), in memory (``keep_conversations_in_memory``).

Each completed message is committed the moment it exists, so a killed console loses no completed message; an
answer being streamed is kept as an *incomplete* row (rewritten at most every ``PARTIAL_EVERY`` seconds) that a
later :meth:`SessionStore.load` reports as interrupted. Events are stored too (secrets masked, text deltas left
out: the final answer holds their text).

The file name is a hash of the account (tenant id + object id, or the username): it names no person and holds
no token. Nothing here stores a token: messages and events pass through :func:`mcp_server.redact.redact`.

Usage::

    store = SessionStore(account)                  # an AccountInfo-like (username, tenant_id, oid) or a username
    store.new_session("conversation")              # the current session from now on
    detach = store.attach(bus)                     # records this account's events as they arrive
    ...
    loaded = store.resume(store.latest().id)       # after a restart: messages + the input list for the runner
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from console.core.events import (
    AccountChanged,
    Event,
    EventBus,
    Notice,
    TextDelta,
    TurnEnded,
    TurnStarted,
)
from mcp_server.paths import data_dir
from mcp_server.redact import redact, redact_value

SCHEMA_VERSION = 1
PARTIAL_EVERY = 0.25  # seconds between rewrites of an answer being streamed
TITLE_CHARS = 60

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    started REAL NOT NULL,
    updated REAL NOT NULL,
    main_agent TEXT,
    title TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    agent TEXT,
    text TEXT NOT NULL,
    ts REAL NOT NULL,
    turn_id TEXT,
    complete INTEGER NOT NULL DEFAULT 1,
    error INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS messages_by_session ON messages(session_id, id);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    ts REAL NOT NULL,
    kind TEXT NOT NULL,
    turn_id TEXT,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_session ON events(session_id, id);
"""


class AccountLike(Protocol):
    @property
    def username(self) -> str: ...


@dataclass(frozen=True)
class SessionSummary:
    id: str
    started: float
    updated: float
    main_agent: str | None
    title: str
    messages: int
    interrupted: bool  # holds an answer that was cut off (the console stopped mid-stream)


@dataclass(frozen=True)
class StoredMessage:
    id: int
    role: str  # user | assistant | notice
    text: str
    agent: str | None
    ts: float
    turn_id: str | None
    complete: bool
    error: bool = False

    @property
    def interrupted(self) -> bool:
        return not self.complete


@dataclass(frozen=True)
class LoadedSession:
    summary: SessionSummary
    messages: list[StoredMessage]
    input_list: list[dict[str, Any]]  # what the agent run needs to continue (the runner's to_input_list)
    main_agent: str | None

    @property
    def interrupted(self) -> list[StoredMessage]:
        return [m for m in self.messages if not m.complete]


def account_key(account: AccountLike | str) -> str:
    """Who the database belongs to: tenant id + object id when known, else the username (lower case)."""
    if isinstance(account, str):
        return account.strip().lower()
    tenant = str(getattr(account, "tenant_id", "") or "")
    oid = str(getattr(account, "oid", "") or "")
    if tenant and oid:
        return f"{tenant}:{oid}"
    return account.username.strip().lower()


def database_name(account: AccountLike | str) -> str:
    """A file name that names nobody: a hash of the account key."""
    return hashlib.sha256(account_key(account).encode()).hexdigest()[:32] + ".db"


def sessions_dir() -> Path:
    path = data_dir() / "sessions"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


_in_memory = False  # set by keep_conversations_in_memory(): this process writes no conversation to disk


def keep_conversations_in_memory(on: bool = True) -> None:
    """From now on, this process's ``SessionStore``s keep conversations in memory only
    (``OBO_CONSOLE_CONVERSATIONS=memory``: a web tab). Nothing goes to ``sessions_dir()``, so no other console
    resumes them; an account's conversations end when it signs out or the process exits."""
    global _in_memory
    _in_memory = on


def to_input_item(message: StoredMessage) -> dict[str, Any] | None:
    """A completed user/assistant message as an Agents SDK input item (EasyInputMessage)."""
    if not message.complete or message.error or message.role not in ("user", "assistant") or not message.text:
        return None
    return {"role": message.role, "content": message.text}


def writes_message(event: Event) -> bool:
    """Whether recording ``event`` stores a message (the question, the answer or a fragment of it being streamed,
    a console-wide error), which is committed before anyone sees it."""
    if isinstance(event, TextDelta):
        return True
    if isinstance(event, TurnStarted):
        return bool(event.text) and event.retry_of is None  # a retried turn's question is stored already
    if isinstance(event, Notice):
        return event.level == "error" and event.turn_id is None
    return isinstance(event, TurnEnded)


class SessionStore:
    """One account's conversations. Thread-safe: events arrive on the workspace's loop, the UI reads on its own."""

    def __init__(
        self, account: AccountLike | str, *, directory: Path | None = None, in_memory: bool | None = None
    ) -> None:
        """``in_memory``: an SQLite database in memory, no file (``path`` None); default: as the process says
        (``keep_conversations_in_memory``)."""
        self.username = account if isinstance(account, str) else account.username
        self.path: Path | None = None
        if not (_in_memory if in_memory is None else in_memory):
            self.path = (directory or sessions_dir()) / database_name(account)
        self._lock = threading.RLock()
        self._db = _connect(self.path)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")  # in memory SQLite keeps its "memory" journal
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a committed row survives a process kill
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)
        self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        # Streaming answers being recorded: turn_id -> [message id, text so far, agent, last write time].
        self._partial: dict[str, list[Any]] = {}
        self.current_id: str | None = None  # where append/record go unless told otherwise
        self._closed = False

    # ---- plumbing
    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._closed:
                raise RuntimeError("the session store is closed")
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._db.close()

    def __enter__(self) -> SessionStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- sessions
    def _sid(self, session_id: str | None) -> str:
        chosen = session_id or self.current_id
        if chosen is None:
            raise RuntimeError("no current session: call new_session() or resume() first")
        return chosen

    def new_session(self, main_agent: str | None = None, *, now: float | None = None) -> str:
        """Start a session (it becomes the current one) and return its id."""
        session_id = uuid.uuid4().hex
        ts = time.time() if now is None else now
        with self._tx() as db:
            db.execute(
                "INSERT INTO sessions (id, started, updated, main_agent, title) VALUES (?, ?, ?, ?, '')",
                (session_id, ts, ts, main_agent),
            )
        self.current_id = session_id
        return session_id

    def resume(self, session_id: str) -> LoadedSession:
        """Load ``session_id`` and make it the current session (new messages are appended to it)."""
        loaded = self.load(session_id)
        self.current_id = session_id
        return loaded

    def list_sessions(self) -> list[SessionSummary]:
        """Every session, the most recently updated first."""
        with self._lock:
            rows = self._db.execute(
                """SELECT s.*, COUNT(m.id) AS n, COALESCE(SUM(m.complete = 0), 0) AS partial
                   FROM sessions s LEFT JOIN messages m ON m.session_id = s.id
                   GROUP BY s.id ORDER BY s.updated DESC, s.rowid DESC"""
            ).fetchall()
        return [_summary(row) for row in rows]

    def latest(self) -> SessionSummary | None:
        sessions = self.list_sessions()
        return sessions[0] if sessions else None

    def summary(self, session_id: str) -> SessionSummary:
        found = next((s for s in self.list_sessions() if s.id == session_id), None)
        if found is None:
            raise KeyError(f"no session {session_id!r} for this account")
        return found

    def load(self, session_id: str) -> LoadedSession:
        """The session's messages (incomplete ones marked) and the input list to resume its agent run."""
        summary = self.summary(session_id)
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM messages WHERE session_id = ? ORDER BY id", (session_id,)
            ).fetchall()
        messages = [_message(row) for row in rows]
        items = [item for item in (to_input_item(m) for m in messages) if item is not None]
        return LoadedSession(summary, messages, items, summary.main_agent)

    def events(self, session_id: str) -> list[dict[str, Any]]:
        """The session's stored events (masked dicts, as recorded), oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT data FROM events WHERE session_id = ? ORDER BY id", (session_id,)
            ).fetchall()
        return [json.loads(row["data"]) for row in rows]

    # ---- messages
    def append_message(
        self,
        role: str,
        text: str,
        *,
        session_id: str | None = None,
        agent: str | None = None,
        ts: float | None = None,
        turn_id: str | None = None,
        complete: bool = True,
        error: bool = False,
    ) -> int:
        """Store one message (committed before this returns); its id."""
        session_id = self._sid(session_id)
        ts = time.time() if ts is None else ts
        clean = redact(text)
        with self._tx() as db:
            cursor = db.execute(
                """INSERT INTO messages (session_id, role, agent, text, ts, turn_id, complete, error)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
                (session_id, role, agent, clean, ts, turn_id, int(complete), int(error)),
            )
            db.execute(
                "UPDATE sessions SET updated = ?, title = CASE WHEN title = '' AND ? = 'user' THEN ? ELSE title END "
                "WHERE id = ?",
                (ts, role, _title(clean), session_id),
            )
        return int(cursor.lastrowid or 0)

    def update_message(
        self,
        message_id: int,
        text: str,
        *,
        complete: bool,
        agent: str | None = None,
        error: bool = False,
        ts: float | None = None,
    ) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE messages SET text = ?, complete = ?, error = ?, agent = COALESCE(?, agent), "
                "ts = COALESCE(?, ts) WHERE id = ?",
                (redact(text), int(complete), int(error), agent, ts, message_id),
            )
            if ts is not None:
                db.execute(
                    "UPDATE sessions SET updated = MAX(updated, ?) "
                    "WHERE id = (SELECT session_id FROM messages WHERE id = ?)",
                    (ts, message_id),
                )

    # ---- events
    def append_event(self, event: Event | dict[str, Any], *, session_id: str | None = None) -> None:
        session_id = self._sid(session_id)
        data = event.to_dict() if isinstance(event, Event) else dict(event)
        clean = redact_value(data)
        with self._tx() as db:
            db.execute(
                "INSERT INTO events (session_id, ts, kind, turn_id, data) VALUES (?, ?, ?, ?, ?)",
                (
                    session_id,
                    float(clean.get("ts") or time.time()),
                    str(clean.get("kind", "event")),
                    clean.get("turn_id"),
                    json.dumps(clean, sort_keys=True, default=str, ensure_ascii=False),
                ),
            )

    # ---- recording from the bus
    def attach(self, bus: EventBus, session_id: str | None = None) -> Callable[[], None]:
        """Record this account's events into ``session_id`` (the current session by default) as they are published
        on ``bus``; returns the unsubscribe. Events of other accounts and console-wide ones are ignored."""
        chosen = self._sid(session_id)
        return bus.subscribe(lambda event: self.record(event, session_id=chosen))

    def record(self, event: Event, *, session_id: str | None = None) -> None:
        """What one event means for the stored conversation (events of other accounts are ignored)."""
        if event.account is None or event.account.lower() != self.username.lower():
            return
        if isinstance(event, AccountChanged):
            return
        session_id = self._sid(session_id)
        if isinstance(event, TextDelta):
            self._on_delta(session_id, event)
            return
        self.append_event(event, session_id=session_id)
        if not writes_message(event):
            return  # an event only: nothing of the conversation's messages changes
        if isinstance(event, TurnStarted):
            self.append_message("user", event.text, session_id=session_id, ts=event.ts, turn_id=event.turn_id)
        elif isinstance(event, TurnEnded):
            self._on_turn_ended(session_id, event)
        elif isinstance(event, Notice):
            self.append_message("notice", event.message, session_id=session_id, ts=event.ts, error=True)

    def _on_delta(self, session_id: str, event: TextDelta) -> None:
        key = event.turn_id or ""
        now = time.monotonic()
        with self._lock:
            partial = self._partial.get(key)
            if partial is None:
                message_id = self.append_message(
                    "assistant",
                    event.delta,
                    session_id=session_id,
                    agent=event.agent,
                    ts=event.ts,
                    turn_id=event.turn_id,
                    complete=False,
                )
                self._partial[key] = [message_id, event.delta, event.agent, now]
                return
            partial[1] += event.delta
            partial[2] = event.agent or partial[2]
            if now - partial[3] >= PARTIAL_EVERY:
                partial[3] = now
                self.update_message(partial[0], partial[1], complete=False, agent=partial[2])

    def flush_partial(self) -> None:
        """Write every answer being streamed as it stands (still incomplete)."""
        with self._lock:
            for message_id, text, agent, _ in self._partial.values():
                self.update_message(message_id, text, complete=False, agent=agent)

    def _on_turn_ended(self, session_id: str, event: TurnEnded) -> None:
        with self._lock:
            partial = self._partial.pop(event.turn_id or "", None)
        agent = event.last_agent or event.agent
        if event.error is None and event.output:
            if partial is not None:
                self.update_message(partial[0], event.output, complete=True, agent=agent, ts=event.ts)
            else:
                self.append_message(
                    "assistant",
                    event.output,
                    session_id=session_id,
                    agent=agent,
                    ts=event.ts,
                    turn_id=event.turn_id,
                )
            return
        if partial is not None:
            # Stopped or failed mid-answer: keep what streamed, marked incomplete (the runner drops it too).
            self.update_message(partial[0], partial[1], complete=False, agent=partial[2])
        if event.error:
            self.append_message(
                "notice",
                event.error,
                session_id=session_id,
                agent=agent,
                ts=event.ts,
                turn_id=event.turn_id,
                error=True,
            )


def _connect(path: Path | None) -> sqlite3.Connection:
    """The database at ``path`` (created 0600 before SQLite opens it: nobody else may read a conversation), or one
    in memory."""
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    where = ":memory:" if path is None else path
    return sqlite3.connect(where, check_same_thread=False, isolation_level=None, timeout=10.0)


def _title(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1] + "…"


def _summary(row: sqlite3.Row) -> SessionSummary:
    return SessionSummary(
        id=row["id"],
        started=row["started"],
        updated=row["updated"],
        main_agent=row["main_agent"],
        title=row["title"],
        messages=int(row["n"]),
        interrupted=bool(row["partial"]),
    )


def _message(row: sqlite3.Row) -> StoredMessage:
    return StoredMessage(
        id=int(row["id"]),
        role=row["role"],
        text=row["text"],
        agent=row["agent"],
        ts=float(row["ts"]),
        turn_id=row["turn_id"],
        complete=bool(row["complete"]),
        error=bool(row["error"]),
    )
