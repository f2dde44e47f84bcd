"""The SQLite layout of one index (see store.py for the whole picture) and the shared principal ids.

Table names are derived from the index's row id (``docs_3``), never from its name: they are the only identifiers
written into SQL text.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .schema import IndexSchema

ALL = ("*", "all")  # the principal every document marked "all" is readable by


@dataclass(frozen=True)
class StoredIndex:
    """An index's schema, its current ETag and the names of its tables."""

    id: int
    schema: IndexSchema
    etag: str

    @property
    def docs(self) -> str:
        return f"docs_{self.id}"

    @property
    def fts(self) -> str:
        return f"fts_{self.id}"

    @property
    def acl(self) -> str:
        return f"acl_{self.id}"

    @property
    def acl_by_doc(self) -> str:
        return f"acl_{self.id}_by_doc"

    @property
    def acl_keys(self) -> str:
        return f"aclkey_{self.id}"

    @property
    def tables(self) -> tuple[str, ...]:
        return (self.docs, self.fts, self.acl, self.acl_keys)


def create_tables(conn: sqlite3.Connection, index: StoredIndex) -> None:
    conn.execute(
        f"CREATE TABLE {index.docs}(rid INTEGER PRIMARY KEY, key TEXT UNIQUE NOT NULL, body TEXT NOT NULL)"
    )
    create_acl_table(conn, index.acl)
    create_acl_views(conn, index)
    create_fts(conn, index)


def create_acl_table(conn: sqlite3.Connection, table: str) -> None:
    conn.execute(
        f"CREATE TABLE {table}(doc INTEGER NOT NULL, principal INTEGER NOT NULL, "
        "PRIMARY KEY(doc, principal)) WITHOUT ROWID"
    )


def create_acl_views(conn: sqlite3.Connection, index: StoredIndex) -> None:
    """The ACL by principal: in document-id order (an index) and in key order (a table keyed by it)."""
    conn.execute(f"CREATE INDEX IF NOT EXISTS {index.acl_by_doc} ON {index.acl}(principal, doc)")
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {index.acl_keys}(principal INTEGER NOT NULL, key TEXT NOT NULL, "
        "doc INTEGER NOT NULL, PRIMARY KEY(principal, key)) WITHOUT ROWID"
    )


def create_fts(conn: sqlite3.Connection, index: StoredIndex) -> None:
    columns = ", ".join(f"c{i}" for i in range(max(1, len(index.schema.searchable))))
    conn.execute(
        f"CREATE VIRTUAL TABLE {index.fts} USING fts5({columns}, tokenize='unicode61 remove_diacritics 0')"
    )


def derived_layout(schema: IndexSchema) -> tuple[Any, ...]:
    """What the FTS and ACL tables depend on; an update that keeps it needs no rebuild."""
    return (
        tuple(f.name for f in schema.searchable),
        tuple((f.name, f.permission_filter) for f in schema.permission_fields),
    )


# ---- migration of layouts written by older versions ------------------------------------------------------------

_ACL_COLUMNS = ["doc", "principal"]


def _acl_columns(conn: sqlite3.Connection, index: StoredIndex) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA table_info({index.acl})")]


def is_current(conn: sqlite3.Connection, index: StoredIndex) -> bool:
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    return {index.acl_by_doc, index.acl_keys} <= tables and _acl_columns(conn, index) == _ACL_COLUMNS


def migrate(conn: sqlite3.Connection, index: StoredIndex) -> None:
    """Bring an index written with ``acl_N`` only to the current layout (inside the caller's transaction)."""
    if _acl_columns(conn, index) != _ACL_COLUMNS:  # a development layout: keep (doc, principal)
        create_acl_table(conn, f"{index.acl}_new")
        conn.execute(f"INSERT INTO {index.acl}_new SELECT doc, principal FROM {index.acl}")
        conn.execute(f"DROP TABLE {index.acl}")
        conn.execute(f"ALTER TABLE {index.acl}_new RENAME TO {index.acl}")
    conn.execute(f"DROP TABLE IF EXISTS {index.acl_keys}")
    create_acl_views(conn, index)
    conn.execute(
        f"INSERT INTO {index.acl_keys}(principal, key, doc) "
        f"SELECT a.principal, d.key, a.doc FROM {index.acl} a JOIN {index.docs} d ON d.rid = a.doc"
    )


# ---- principals ------------------------------------------------------------------------------------------------


class PrincipalIds:
    """The ids of the ``principals`` table ((kind, value) -> id), cached in memory; shared by all indexes.

    Only the writer adds principals (inside its transaction); readers look ids up, and a principal no document
    names has no id (it can read nothing)."""

    def __init__(self) -> None:
        self._ids: dict[tuple[str, str], int] = {}

    def reload(self, conn: sqlite3.Connection) -> None:
        ids = {
            (kind, value): pid for pid, kind, value in conn.execute("SELECT id, kind, value FROM principals")
        }
        self._ids = ids  # one assignment: readers see the old or the new mapping, whole

    def ensure(self, conn: sqlite3.Connection, kind: str, value: str) -> int:
        """The id of (kind, value), added to the table when new (writer only)."""
        key = (kind, value)
        pid = self._ids.get(key)
        if pid is None:
            conn.execute("INSERT OR IGNORE INTO principals(kind, value) VALUES (?, ?)", key)
            pid = int(
                conn.execute("SELECT id FROM principals WHERE kind = ? AND value = ?", key).fetchone()[0]
            )
            self._ids[key] = pid
        return pid

    def known(self, wanted: Iterable[tuple[str, str]]) -> list[int]:
        """The sorted ids of those of ``wanted`` that exist."""
        ids = self._ids
        return sorted({ids[w] for w in wanted if w in ids})
