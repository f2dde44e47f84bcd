"""Document batches: the structural checks of each action, and the writes of one action with its derived rows.

Each document is stored as JSON in ``docs_N``; its searchable fields (pre-analyzed, see analyzer.py) go to
``fts_N`` and its permission values to ``acl_N`` and ``aclkey_N`` (see store.py).
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .analyzer import analyzed_text
from .errors import bad_request
from .schema import PERMISSION_KINDS, IndexSchema
from .tables import ALL, PrincipalIds, StoredIndex, create_fts

KEY_CHARS = re.compile(r"^[A-Za-z0-9_\-=]{1,1024}$")
ACTIONS = ("upload", "merge", "mergeOrUpload", "delete")
MAX_PERMISSION_VALUES = 1000

_TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "Edm.String": lambda v: isinstance(v, str),
    "Edm.Int32": lambda v: isinstance(v, int) and not isinstance(v, bool) and -(2**31) <= v < 2**31,
    "Edm.Int64": lambda v: isinstance(v, int) and not isinstance(v, bool) and -(2**63) <= v < 2**63,
    "Edm.Double": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "Edm.Boolean": lambda v: isinstance(v, bool),
    "Edm.DateTimeOffset": lambda v: isinstance(v, str),
}


@dataclass(frozen=True)
class DocumentAction:
    """One checked entry of a batch: ``@search.action``, the document key and its fields."""

    action: str
    key: str
    fields: dict[str, Any]


def validate_action(schema: IndexSchema, raw: Any) -> DocumentAction:
    """Structural checks that fail the whole request with 400, as Azure does."""
    if not isinstance(raw, dict):
        raise bad_request("The request is invalid. Details: each entry of 'value' must be a JSON object.")
    action = raw.get("@search.action", "upload")
    if action not in ACTIONS:
        raise bad_request(
            "The request is invalid. Details: '@search.action' must be upload, merge, mergeOrUpload or delete, "
            f"not {action!r}."
        )
    key_field = schema.key.name
    key = raw.get(key_field)
    if not isinstance(key, str) or not key:
        raise bad_request(
            "The request is invalid. Details: every document must have a non-empty string key field "
            f"'{key_field}'."
        )
    fields: dict[str, Any] = {}
    for name, value in raw.items():
        if name.startswith("@search."):
            continue
        _check_field(schema, name, value)
        fields[name] = value
    return DocumentAction(action, key, fields)


def _check_field(schema: IndexSchema, name: str, value: Any) -> None:
    field = schema.field(name)
    if field is None:
        raise bad_request(
            f"The request is invalid. Details: The property '{name}' does not exist on type "
            "'search.documentFields'. Make sure to only use property names that are defined by the type."
        )
    if value is None:
        return
    check = _TYPE_CHECKS[field.element_type]
    ok = (isinstance(value, list) and all(check(v) for v in value)) if field.is_collection else check(value)
    if not ok:
        raise bad_request(
            f"The request is invalid. Details: Cannot convert the value of field '{name}' to {field.type}."
        )
    if field.element_type == "Edm.String" and "\x00" in (
        "".join(value) if isinstance(value, list) else value
    ):
        # SQLite's JSON functions end a string at U+0000, so filters would compare a truncated value.
        raise bad_request(
            f"The request is invalid. Details: the value of field '{name}' contains a NUL character "
            "(U+0000), which the local search service cannot filter on faithfully; remove it."
        )
    if field.permission_filter and isinstance(value, list) and len(value) > MAX_PERMISSION_VALUES:
        raise bad_request(
            f"The request is invalid. Details: the permission filter field '{name}' holds {len(value)} values; "
            f"at most {MAX_PERMISSION_VALUES} are allowed per field. Grant access through a group instead."
        )


def _result(key: str, status: bool, code: int, message: str | None = None) -> dict[str, Any]:
    """One entry of the batch response, as Azure returns it."""
    return {"key": key, "status": status, "errorMessage": message, "statusCode": code}


class DocumentWriter:
    """Writes documents of one index, with their full-text and ACL rows, inside the writer's transaction."""

    def __init__(self, conn: sqlite3.Connection, index: StoredIndex, principals: PrincipalIds) -> None:
        self.conn = conn
        self.index = index
        self.principals = principals

    def apply(self, item: DocumentAction) -> dict[str, Any]:
        """Apply one action; its per-document result (a bad key or a missing document fails only this one)."""
        conn, index, key = self.conn, self.index, item.key
        if not KEY_CHARS.match(key):
            return _result(
                key,
                False,
                400,
                f"Invalid document key: '{key}'. Keys can only contain letters, digits, underscore (_), dash (-), "
                "or equal sign (=).",
            )
        row = conn.execute(f"SELECT rid, body FROM {index.docs} WHERE key = ?", (key,)).fetchone()
        if item.action == "delete":
            if row is not None:
                self.delete_derived(row[0], key)
                conn.execute(f"DELETE FROM {index.docs} WHERE rid = ?", (row[0],))
            return _result(key, True, 200)
        if item.action == "merge" and row is None:
            return _result(key, False, 404, "Document not found.")
        if item.action in ("merge", "mergeOrUpload") and row is not None:
            body = json.loads(row[1])
            body.update(item.fields)
        else:
            body = item.fields
        if row is None:
            cur = conn.execute(f"INSERT INTO {index.docs}(key, body) VALUES (?, ?)", (key, json.dumps(body)))
            self.write_derived(int(cur.lastrowid or 0), body)
            return _result(key, True, 201)
        self.delete_derived(row[0], key)
        conn.execute(f"UPDATE {index.docs} SET body = ? WHERE rid = ?", (json.dumps(body), row[0]))
        self.write_derived(row[0], body)
        return _result(key, True, 200)

    def rebuild_derived(self) -> None:
        """After a schema update: re-derive the full-text and ACL tables from the stored documents."""
        conn, index = self.conn, self.index
        conn.execute(f"DROP TABLE {index.fts}")
        create_fts(conn, index)
        conn.execute(f"DELETE FROM {index.acl}")
        conn.execute(f"DELETE FROM {index.acl_keys}")
        for rid, body in conn.execute(f"SELECT rid, body FROM {index.docs}").fetchall():
            self.write_derived(rid, json.loads(body))

    def write_derived(self, rid: int, body: dict[str, Any]) -> None:
        conn, index = self.conn, self.index
        texts = [analyzed_text(body.get(f.name)) for f in index.schema.searchable] or [""]
        columns = ", ".join(f"c{i}" for i in range(len(texts)))
        placeholders = ", ".join("?" for _ in texts)
        conn.execute(f"INSERT INTO {index.fts}(rowid, {columns}) VALUES (?, {placeholders})", (rid, *texts))
        key = body[index.schema.key.name]
        principals = self._acl_of(body)
        conn.executemany(
            f"INSERT INTO {index.acl}(doc, principal) VALUES (?, ?)", [(rid, p) for p in principals]
        )
        conn.executemany(
            f"INSERT INTO {index.acl_keys}(principal, key, doc) VALUES (?, ?, ?)",
            [(p, key, rid) for p in principals],
        )

    def delete_derived(self, rid: int, key: str) -> None:
        conn, index = self.conn, self.index
        conn.execute(f"DELETE FROM {index.fts} WHERE rowid = ?", (rid,))
        conn.execute(
            f"DELETE FROM {index.acl_keys} WHERE key = ? AND principal IN "
            f"(SELECT principal FROM {index.acl} WHERE doc = ?)",
            (key, rid),
        )
        conn.execute(f"DELETE FROM {index.acl} WHERE doc = ?", (rid,))

    def _acl_of(self, body: dict[str, Any]) -> set[int]:
        out: set[int] = set()
        for field in self.index.schema.permission_fields:
            value = body.get(field.name)
            values = [value] if isinstance(value, str) else value or []
            kind = PERMISSION_KINDS[field.permission_filter or ""]
            for v in values:
                # Only the exact special values: a look-alike ("ALL", " all") must not make a document public.
                if v == "all":
                    out.add(self.principals.ensure(self.conn, *ALL))
                elif v and v != "none":
                    out.add(self.principals.ensure(self.conn, kind, v))
        return out
