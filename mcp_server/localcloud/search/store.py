"""The index store: SQLite in WAL mode, one set of tables per index.

Per index ``N`` (tables.py):
- ``docs_N(rid, key, body)``: each document as JSON, keyed by its index key;
- ``fts_N``: an FTS5 table over the searchable fields, filled with pre-analyzed text (see analyzer.py), ranked with
  FTS5's ``bm25()`` (k1 1.2, b 0.75, as Azure's default BM25);
- ``acl_N(doc, principal)``: who may read each document, one row per permission value, clustered by document, with
  an index by principal ``acl_N_by_doc(principal, doc)``;
- ``aclkey_N(principal, key, doc)``: the same rows clustered by principal and document key (each principal's
  documents in key order). A separate table, so the per-document probes keep their small rows (measured:
  carrying the key in ``acl_N`` made ranked queries ~10% slower).

How a search becomes SQL, and the two routes of permission trimming, is in query_plan.py; document writes are in
documents.py. Every batch of document actions is one transaction: after a crash the index holds the batch entirely
or not at all. Databases written before ``acl_N_by_doc`` and ``aclkey_N`` existed are migrated when the store opens.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .documents import DocumentWriter, validate_action
from .errors import SearchError, bad_request
from .odata import parse_select
from .query_plan import SearchPlan, acl_clause, parse_query, plan_search
from .request import DEFAULT_PAGE, MAX_PAGE, SearchParams
from .schema import Field, IndexSchema, check_update, parse_index
from .sql import Sql
from .tables import ALL, PrincipalIds, StoredIndex, create_tables, derived_layout, is_current, migrate

SERVICE_NAME = "localsearch"
MAX_RBAC_SCOPES = 5  # unique rbacScope values per index (documented Azure limit)
# SQLite's words for a statement beyond its parser or expression limits.
_TOO_COMPLEX = ("parser stack overflow", "Expression tree is too large", "too many SQL variables")


@dataclass(frozen=True)
class QueryIdentity:
    """The end user a query runs as, resolved from a validated token and the directory."""

    tenant_id: str
    oid: str
    groups: tuple[str, ...]


@dataclass
class SearchPage:
    rows: list[dict[str, Any]]
    count: int | None
    next_params: SearchParams | None


def _not_found(name: str) -> SearchError:
    return SearchError(404, f"No index with the name '{name}' was found in a service named '{SERVICE_NAME}'.")


class SearchStore:
    """All indexes of one service, in ``data_dir/search.sqlite3``. Thread-safe: one writer, many readers."""

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / "search.sqlite3"
        self._write_lock = threading.Lock()
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._writer = self._connect()
        self._writer.execute("PRAGMA journal_mode=WAL")
        self._writer.executescript(
            """
            CREATE TABLE IF NOT EXISTS indexes(
                id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, definition TEXT NOT NULL, etag TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS principals(
                id INTEGER PRIMARY KEY, kind TEXT NOT NULL, value TEXT NOT NULL, UNIQUE(kind, value));
            INSERT OR IGNORE INTO principals(kind, value) VALUES ('*', 'all');
            """
        )
        self._indexes: dict[str, StoredIndex] = {}
        self._principals = PrincipalIds()
        self._reload()
        self._migrate()

    # ---- connections -------------------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=OFF")
        conn.execute("PRAGMA cache_size=-65536")
        with self._conns_lock:
            self._conns.append(conn)
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
        return conn

    def close(self) -> None:
        with self._conns_lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            conn.close()

    def _reload(self) -> None:
        rows = self._writer.execute("SELECT id, name, definition, etag FROM indexes").fetchall()
        self._indexes = {
            name: StoredIndex(id_, parse_index(json.loads(definition)), etag)
            for id_, name, definition, etag in rows
        }
        self._principals.reload(self._writer)

    def _migrate(self) -> None:
        """Bring indexes written by older versions (``acl_N`` only) to the current layout, one transaction each."""
        for index in list(self._indexes.values()):
            if is_current(self._writer, index):
                continue
            with self._write() as conn:
                if not is_current(conn, index):  # another process may have migrated it meanwhile
                    migrate(conn, index)

    def _write(self) -> _WriteTxn:
        return _WriteTxn(self)

    def _index(self, name: str) -> StoredIndex:
        index = self._indexes.get(name)
        if index is None:
            raise _not_found(name)
        return index

    # ---- indexes -----------------------------------------------------------------------------------------------

    def _representation(self, index: StoredIndex) -> dict[str, Any]:
        return {"@odata.etag": index.etag, **index.schema.definition}

    def create_index(self, raw: Any) -> dict[str, Any]:
        schema = parse_index(raw)
        with self._write() as conn:
            if schema.name in self._indexes:
                raise SearchError(409, f"Cannot create index '{schema.name}' because it already exists.")
            index = self._insert_index(conn, schema)
        return self._representation(index)

    def create_or_update_index(self, name: str, raw: Any) -> tuple[dict[str, Any], bool]:
        schema = parse_index(raw, name_from_url=name)
        with self._write() as conn:
            old = self._indexes.get(name)
            if old is None:
                index = self._insert_index(conn, schema)
                created = True
            else:
                check_update(old.schema, schema)
                index = StoredIndex(old.id, schema, f'"{uuid.uuid4().hex}"')
                conn.execute(
                    "UPDATE indexes SET definition = ?, etag = ? WHERE id = ?",
                    (json.dumps(schema.definition), index.etag, index.id),
                )
                if derived_layout(old.schema) != derived_layout(schema):
                    DocumentWriter(conn, index, self._principals).rebuild_derived()
                self._indexes[name] = index
                created = False
        return self._representation(index), created

    def _insert_index(self, conn: sqlite3.Connection, schema: IndexSchema) -> StoredIndex:
        etag = f'"{uuid.uuid4().hex}"'
        cur = conn.execute(
            "INSERT INTO indexes(name, definition, etag) VALUES (?, ?, ?)",
            (schema.name, json.dumps(schema.definition), etag),
        )
        index = StoredIndex(int(cur.lastrowid or 0), schema, etag)
        create_tables(conn, index)
        self._indexes[schema.name] = index
        return index

    def get_index(self, name: str) -> dict[str, Any]:
        return self._representation(self._index(name))

    def list_indexes(self) -> list[dict[str, Any]]:
        return [self._representation(i) for i in sorted(self._indexes.values(), key=lambda i: i.schema.name)]

    def delete_index(self, name: str) -> None:
        with self._write() as conn:
            index = self._index(name)
            conn.execute("DELETE FROM indexes WHERE id = ?", (index.id,))
            for table in index.tables:
                conn.execute(f"DROP TABLE {table}")
            del self._indexes[name]

    def stats(self, name: str) -> dict[str, Any]:
        count = self.count(name)
        size = self.path.stat().st_size if self.path.exists() else 0
        return {"documentCount": count, "storageSize": size, "vectorIndexSize": 0}

    # ---- documents ---------------------------------------------------------------------------------------------

    def index_documents(self, name: str, actions: Sequence[Any]) -> list[dict[str, Any]]:
        """Apply a batch of ``@search.action`` documents atomically; per-document results as Azure returns them."""
        index = self._index(name)
        prepared = [validate_action(index.schema, a) for a in actions]
        with self._write() as conn:
            if self._indexes.get(name) is not index:  # changed while validating
                if name not in self._indexes:
                    raise _not_found(name)
                raise SearchError(409, "The index changed; retry.")
            writer = DocumentWriter(conn, index, self._principals)
            results = [writer.apply(item) for item in prepared]
            _check_rbac_scopes(conn, index)  # raising rolls the whole batch back
            return results

    def count(self, name: str) -> int:
        index = self._index(name)
        return int(self._reader().execute(f"SELECT COUNT(*) FROM {index.docs}").fetchone()[0])

    # ---- queries -----------------------------------------------------------------------------------------------

    def _principal_ids(self, identity: QueryIdentity | None) -> list[int]:
        wanted = [ALL]
        if identity is not None:
            wanted.append(("u", identity.oid))
            wanted.extend(("g", g) for g in identity.groups)
        return self._principals.known(wanted)

    def search(self, name: str, params: SearchParams, identity: QueryIdentity | None) -> SearchPage:
        index = self._index(name)
        query = parse_query(params, index.schema)
        principals = self._principal_ids(identity) if index.schema.trims else []
        page = min(DEFAULT_PAGE if params.top is None else params.top, MAX_PAGE)
        # One row beyond the page tells whether there is a next one.
        plan = plan_search(index, query, principals, limit=page + 1, skip=params.skip, count=params.count)
        conn = self._reader()
        hits, count = self._run(conn, plan)
        more = len(hits) > page
        hits = hits[:page]
        bodies = self._bodies(conn, index, [rid for rid, _ in hits])
        rows = [_project(bodies[rid], query.select, score) for rid, score in hits]
        truncated = more and (params.top is None or params.top > page)
        return SearchPage(rows=rows, count=count, next_params=params.next_page(page) if truncated else None)

    @staticmethod
    def _run(conn: sqlite3.Connection, plan: SearchPlan) -> tuple[list[tuple[int, float]], int | None]:
        """The page's (document id, score) rows and the total (None: not asked for)."""
        try:
            rows = conn.execute(plan.hits.text, plan.hits.params).fetchall()
            # Merged rows are (doc) or (key, doc); a match-all query scores 1.0.
            hits = [(row[-1], 1.0) for row in rows] if plan.merged else [(row[0], row[1]) for row in rows]
            count = None
            if plan.count is not None:
                count = int(conn.execute(plan.count.text, plan.count.params).fetchone()[0])
        except sqlite3.OperationalError as exc:
            # The parser limits keep compiled SQL within SQLite's; should one still be hit, or FTS5 reject an
            # expression we cannot foresee, the caller gets a 400 that says so, never a 500.
            if any(sign in str(exc) for sign in _TOO_COMPLEX):
                raise bad_request(
                    "The search request is too complex to run: simplify the filter or the search text "
                    "(fewer clauses, fewer nesting levels)."
                ) from exc
            raise bad_request(f"The search request could not be processed: {exc}.") from exc
        return hits, count

    @staticmethod
    def _bodies(conn: sqlite3.Connection, index: StoredIndex, rids: list[int]) -> dict[int, dict[str, Any]]:
        if not rids:
            return {}
        marks = ", ".join("?" for _ in rids)
        return {
            rid: json.loads(body)
            for rid, body in conn.execute(f"SELECT rid, body FROM {index.docs} WHERE rid IN ({marks})", rids)
        }

    def get_document(
        self, name: str, key: str, select: str | None, identity: QueryIdentity | None
    ) -> dict[str, Any]:
        index = self._index(name)
        fields = parse_select(select, index.schema)
        sql = Sql(f"SELECT d.rid, d.body FROM {index.docs} d WHERE d.key = ?", (key,))
        if index.schema.trims:
            sql += " AND " + acl_clause(index, "d.rid", self._principal_ids(identity))
        row = self._reader().execute(sql.text, sql.params).fetchone()
        if row is None:
            raise SearchError(404, f"No document with the key '{key}' was found in index '{name}'.")
        return _project(json.loads(row[1]), fields, None)


def _check_rbac_scopes(conn: sqlite3.Connection, index: StoredIndex) -> None:
    """Azure allows at most ``MAX_RBAC_SCOPES`` unique rbacScope values across a whole index."""
    if not any(f.permission_filter == "rbacScope" for f in index.schema.permission_fields):
        return
    scopes = int(
        conn.execute(
            f"SELECT COUNT(DISTINCT a.principal) FROM {index.acl} a JOIN principals p ON p.id = a.principal "
            "WHERE p.kind = 'r'"
        ).fetchone()[0]
    )
    if scopes > MAX_RBAC_SCOPES:
        raise bad_request(
            f"The request is invalid. Details: the index '{index.schema.name}' would hold {scopes} unique "
            f"rbacScope values; at most {MAX_RBAC_SCOPES} are allowed per index. Reuse existing container scopes "
            "or grant access through userIds/groupIds."
        )


class _WriteTxn:
    """One write transaction under the store's writer lock; on failure it rolls back and resyncs the caches."""

    def __init__(self, store: SearchStore) -> None:
        self.store = store

    def __enter__(self) -> sqlite3.Connection:
        self.store._write_lock.acquire()
        try:
            self.store._writer.execute("BEGIN IMMEDIATE")
        except BaseException:
            self.store._write_lock.release()
            raise
        return self.store._writer

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        writer = self.store._writer
        try:
            if exc_type is None:
                try:
                    writer.execute("COMMIT")
                    return
                except sqlite3.Error:
                    self._rollback()
                    raise
            self._rollback()
        finally:
            self.store._write_lock.release()

    def _rollback(self) -> None:
        """Undo the batch, and the in-memory caches it touched (index schemas, principal ids)."""
        if self.store._writer.in_transaction:
            self.store._writer.execute("ROLLBACK")
        self.store._reload()


def _project(body: dict[str, Any], fields: Iterable[Field], score: float | None) -> dict[str, Any]:
    out: dict[str, Any] = {} if score is None else {"@search.score": float(score)}
    for field in fields:
        out[field.name] = body.get(field.name)
    return out
