"""The index store: SQLite in WAL mode, one set of tables per index.

Per index ``N``:
- ``docs_N(rid, key, body)``: each document as JSON, keyed by its index key;
- ``fts_N``: an FTS5 table over the searchable fields, filled with pre-analyzed text (see analyzer.py), ranked with
  FTS5's ``bm25()`` (k1 1.2, b 0.75, as Azure's default BM25);
- ``acl_N(doc, principal)``: who may read each document, one row per permission value, clustered by document, with
  an index by principal ``acl_N_by_doc(principal, doc)``;
- ``aclkey_N(principal, key, doc)``: the same rows clustered by principal and document key (each principal's
  documents in key order). A separate table, so the per-document probes below keep their small rows (measured:
  carrying the key in ``acl_N`` made ranked queries ~10% slower).

Permission trimming takes one of two routes, chosen by measurement (benchmarks/bench_search.py):
- ranked queries (FTS drives): an ``EXISTS`` probe into ``acl_N``'s primary key for each candidate document, against
  the few principal ids of the query's user (their oid, their groups, and ``all``);
- match-all queries (``*``): the ACL drives. For the natural order or ``id`` order, the user's per-principal posting
  lists (already in ``rid`` or key order in the indexes above) are merged by SQLite's ordered ``UNION`` and stop at
  ``skip + top``, instead of walking every document and probing its ACL (a user sees a few percent of them); for
  other orders the user's documents are looked up by id and sorted.
Every batch of document actions is one transaction: after a crash the index holds the batch entirely or not at all.
Databases written before ``acl_N_by_doc`` and ``aclkey_N`` existed are migrated when the store opens.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import odata
from .analyzer import analyzed_text
from .errors import SearchError, bad_request
from .fulltext import FullTextQuery
from .request import DEFAULT_PAGE, MAX_PAGE, SearchParams
from .schema import PERMISSION_KINDS, Field, IndexSchema, check_update, parse_index
from .simple_query import MatchAll, parse_simple

KEY_CHARS = re.compile(r"^[A-Za-z0-9_\-=]{1,1024}$")
ALL = ("*", "all")
# Above this many principals (a user in very many groups) the merge tree gets deep, while such a user reads so many
# documents that walking them and probing the ACL finds a page quickly: the probe route is used instead.
MAX_MERGED_PRINCIPALS = 64
SERVICE_NAME = "localsearch"
# SQLite allows 32,766 bound parameters per statement; the merged route binds the filter's once per principal.
MAX_MERGED_PARAMS = 30_000
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


@dataclass(frozen=True)
class _Index:
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
        self._indexes: dict[str, _Index] = {}
        self._principals: dict[tuple[str, str], int] = {}
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
            name: _Index(id_, parse_index(json.loads(definition)), etag)
            for id_, name, definition, etag in rows
        }
        self._principals = {
            (kind, value): pid
            for pid, kind, value in self._writer.execute("SELECT id, kind, value FROM principals")
        }

    def _migrate(self) -> None:
        """Bring indexes written by older versions (``acl_N`` only) to the current layout, one transaction each."""

        def acl_columns(conn: sqlite3.Connection, index: _Index) -> list[str]:
            return [row[1] for row in conn.execute(f"PRAGMA table_info({index.acl})")]

        def current(conn: sqlite3.Connection, index: _Index) -> bool:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
            return {index.acl_by_doc, index.acl_keys} <= tables and acl_columns(conn, index) == [
                "doc",
                "principal",
            ]

        for index in list(self._indexes.values()):
            if current(self._writer, index):
                continue
            with self._write() as conn:
                if current(conn, index):  # another process migrated it meanwhile
                    continue
                if acl_columns(conn, index) != [
                    "doc",
                    "principal",
                ]:  # a development layout: keep (doc, principal)
                    self._create_acl_table(conn, f"{index.acl}_new")
                    conn.execute(f"INSERT INTO {index.acl}_new SELECT doc, principal FROM {index.acl}")
                    conn.execute(f"DROP TABLE {index.acl}")
                    conn.execute(f"ALTER TABLE {index.acl}_new RENAME TO {index.acl}")
                conn.execute(f"DROP TABLE IF EXISTS {index.acl_keys}")
                self._create_acl_views(conn, index)
                conn.execute(
                    f"INSERT INTO {index.acl_keys}(principal, key, doc) "
                    f"SELECT a.principal, d.key, a.doc FROM {index.acl} a JOIN {index.docs} d ON d.rid = a.doc"
                )

    def _write(self) -> _WriteTxn:
        return _WriteTxn(self)

    def _index(self, name: str) -> _Index:
        index = self._indexes.get(name)
        if index is None:
            raise _not_found(name)
        return index

    # ---- indexes -----------------------------------------------------------------------------------------------

    def _representation(self, index: _Index) -> dict[str, Any]:
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
                index = _Index(old.id, schema, f'"{uuid.uuid4().hex}"')
                conn.execute(
                    "UPDATE indexes SET definition = ?, etag = ? WHERE id = ?",
                    (json.dumps(schema.definition), index.etag, index.id),
                )
                if _derived_layout(old.schema) != _derived_layout(schema):
                    self._rebuild_derived(conn, index)
                self._indexes[name] = index
                created = False
        return self._representation(index), created

    def _insert_index(self, conn: sqlite3.Connection, schema: IndexSchema) -> _Index:
        etag = f'"{uuid.uuid4().hex}"'
        cur = conn.execute(
            "INSERT INTO indexes(name, definition, etag) VALUES (?, ?, ?)",
            (schema.name, json.dumps(schema.definition), etag),
        )
        index = _Index(int(cur.lastrowid or 0), schema, etag)
        conn.execute(
            f"CREATE TABLE {index.docs}(rid INTEGER PRIMARY KEY, key TEXT UNIQUE NOT NULL, body TEXT NOT NULL)"
        )
        self._create_acl_table(conn, index.acl)
        self._create_acl_views(conn, index)
        self._create_fts(conn, index)
        self._indexes[schema.name] = index
        return index

    @staticmethod
    def _create_acl_table(conn: sqlite3.Connection, table: str) -> None:
        conn.execute(
            f"CREATE TABLE {table}(doc INTEGER NOT NULL, principal INTEGER NOT NULL, "
            "PRIMARY KEY(doc, principal)) WITHOUT ROWID"
        )

    @staticmethod
    def _create_acl_views(conn: sqlite3.Connection, index: _Index) -> None:
        """The ACL by principal: in document-id order (an index) and in key order (a table keyed by it)."""
        conn.execute(f"CREATE INDEX IF NOT EXISTS {index.acl_by_doc} ON {index.acl}(principal, doc)")
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {index.acl_keys}(principal INTEGER NOT NULL, key TEXT NOT NULL, "
            "doc INTEGER NOT NULL, PRIMARY KEY(principal, key)) WITHOUT ROWID"
        )

    def _create_fts(self, conn: sqlite3.Connection, index: _Index) -> None:
        columns = ", ".join(f"c{i}" for i in range(max(1, len(index.schema.searchable))))
        conn.execute(
            f"CREATE VIRTUAL TABLE {index.fts} USING fts5({columns}, tokenize='unicode61 remove_diacritics 0')"
        )

    def _rebuild_derived(self, conn: sqlite3.Connection, index: _Index) -> None:
        """After a schema update: re-derive the full-text and ACL tables from the stored documents."""
        conn.execute(f"DROP TABLE {index.fts}")
        self._create_fts(conn, index)
        conn.execute(f"DELETE FROM {index.acl}")
        conn.execute(f"DELETE FROM {index.acl_keys}")
        for rid, body in conn.execute(f"SELECT rid, body FROM {index.docs}").fetchall():
            self._write_derived(conn, index, rid, json.loads(body))

    def get_index(self, name: str) -> dict[str, Any]:
        return self._representation(self._index(name))

    def list_indexes(self) -> list[dict[str, Any]]:
        return [self._representation(i) for i in sorted(self._indexes.values(), key=lambda i: i.schema.name)]

    def delete_index(self, name: str) -> None:
        with self._write() as conn:
            index = self._index(name)
            conn.execute("DELETE FROM indexes WHERE id = ?", (index.id,))
            for table in (index.docs, index.fts, index.acl, index.acl_keys):
                conn.execute(f"DROP TABLE {table}")
            del self._indexes[name]

    def stats(self, name: str) -> dict[str, Any]:
        count = self.count(name)
        size = self.path.stat().st_size if self.path.exists() else 0
        return {"documentCount": count, "storageSize": size, "vectorIndexSize": 0}

    # ---- documents ---------------------------------------------------------------------------------------------

    def _principal(self, conn: sqlite3.Connection, kind: str, value: str) -> int:
        key = (kind, value)
        pid = self._principals.get(key)
        if pid is None:
            conn.execute("INSERT OR IGNORE INTO principals(kind, value) VALUES (?, ?)", key)
            pid = conn.execute("SELECT id FROM principals WHERE kind = ? AND value = ?", key).fetchone()[0]
            self._principals[key] = pid
        return pid

    def _acl_of(self, conn: sqlite3.Connection, schema: IndexSchema, body: dict[str, Any]) -> set[int]:
        out: set[int] = set()
        for field in schema.permission_fields:
            value = body.get(field.name)
            values = [value] if isinstance(value, str) else value or []
            kind = PERMISSION_KINDS[field.permission_filter or ""]
            for v in values:
                # Only the exact special values: a look-alike ("ALL", " all") must not make a document public.
                if v == "all":
                    out.add(self._principal(conn, *ALL))
                elif v and v != "none":
                    out.add(self._principal(conn, kind, v))
        return out

    def _write_derived(self, conn: sqlite3.Connection, index: _Index, rid: int, body: dict[str, Any]) -> None:
        searchable = index.schema.searchable
        texts = [analyzed_text(body.get(f.name)) for f in searchable] or [""]
        placeholders = ", ".join("?" for _ in texts)
        conn.execute(
            f"INSERT INTO {index.fts}(rowid, {', '.join(f'c{i}' for i in range(len(texts)))}) VALUES (?, {placeholders})",
            (rid, *texts),
        )
        key = body[index.schema.key.name]
        principals = self._acl_of(conn, index.schema, body)
        conn.executemany(
            f"INSERT INTO {index.acl}(doc, principal) VALUES (?, ?)", [(rid, p) for p in principals]
        )
        conn.executemany(
            f"INSERT INTO {index.acl_keys}(principal, key, doc) VALUES (?, ?, ?)",
            [(p, key, rid) for p in principals],
        )

    def _delete_derived(self, conn: sqlite3.Connection, index: _Index, rid: int, key: str) -> None:
        conn.execute(f"DELETE FROM {index.fts} WHERE rowid = ?", (rid,))
        conn.execute(
            f"DELETE FROM {index.acl_keys} WHERE key = ? AND principal IN (SELECT principal FROM {index.acl} WHERE doc = ?)",
            (key, rid),
        )
        conn.execute(f"DELETE FROM {index.acl} WHERE doc = ?", (rid,))

    def index_documents(self, name: str, actions: Sequence[Any]) -> list[dict[str, Any]]:
        """Apply a batch of ``@search.action`` documents atomically; per-document results as Azure returns them."""
        index = self._index(name)
        schema = index.schema
        prepared = [_validate_action(schema, a) for a in actions]
        results: list[dict[str, Any]] = []
        with self._write() as conn:
            if self._indexes.get(name) is not index:  # changed while validating
                raise (
                    _not_found(name)
                    if name not in self._indexes
                    else SearchError(409, "The index changed; retry.")
                )
            for action, key, fields in prepared:
                results.append(self._apply(conn, index, action, key, fields))
        return results

    def _apply(
        self, conn: sqlite3.Connection, index: _Index, action: str, key: str, fields: dict[str, Any]
    ) -> dict[str, Any]:
        def result(status: bool, code: int, message: str | None = None) -> dict[str, Any]:
            return {"key": key, "status": status, "errorMessage": message, "statusCode": code}

        if not KEY_CHARS.match(key):
            return result(
                False,
                400,
                f"Invalid document key: '{key}'. Keys can only contain letters, digits, underscore (_), dash (-), "
                "or equal sign (=).",
            )
        row = conn.execute(f"SELECT rid, body FROM {index.docs} WHERE key = ?", (key,)).fetchone()
        if action == "delete":
            if row is not None:
                self._delete_derived(conn, index, row[0], key)
                conn.execute(f"DELETE FROM {index.docs} WHERE rid = ?", (row[0],))
            return result(True, 200)
        if action == "merge" and row is None:
            return result(False, 404, "Document not found.")
        if action in ("merge", "mergeOrUpload") and row is not None:
            body = json.loads(row[1])
            body.update(fields)
        else:
            body = fields
        if row is None:
            cur = conn.execute(f"INSERT INTO {index.docs}(key, body) VALUES (?, ?)", (key, json.dumps(body)))
            self._write_derived(conn, index, int(cur.lastrowid or 0), body)
            return result(True, 201)
        self._delete_derived(conn, index, row[0], key)
        conn.execute(f"UPDATE {index.docs} SET body = ? WHERE rid = ?", (json.dumps(body), row[0]))
        self._write_derived(conn, index, row[0], body)
        return result(True, 200)

    def count(self, name: str) -> int:
        index = self._index(name)
        return int(self._reader().execute(f"SELECT COUNT(*) FROM {index.docs}").fetchone()[0])

    # ---- queries -----------------------------------------------------------------------------------------------

    def _principal_ids(self, identity: QueryIdentity | None) -> list[int]:
        wanted = [ALL]
        if identity is not None:
            wanted.append(("u", identity.oid))
            wanted.extend(("g", g) for g in identity.groups)
        return sorted({self._principals[w] for w in wanted if w in self._principals})

    @staticmethod
    def _principal_list(principals: list[int], params: list[Any]) -> str:
        """``(?, ?, …)`` for the principal ids, or one JSON parameter when there are too many for placeholders."""
        if len(principals) <= 500:
            params.extend(principals)
            return "(" + (", ".join("?" for _ in principals) or "NULL") + ")"
        params.append(json.dumps(principals))
        return "(SELECT value FROM json_each(?))"

    @classmethod
    def _acl_clause(cls, index: _Index, rid_sql: str, principals: list[int], params: list[Any]) -> str:
        """An EXISTS probe: may the candidate document be read by any of ``principals``?"""
        # The unary + keeps SQLite from seeking (doc, principal) once per principal: a document has only a few ACL
        # rows, so one range scan on ``doc`` tested against the (small) principal list is ~4x cheaper (measured).
        inner = cls._principal_list(principals, params)
        return f"EXISTS (SELECT 1 FROM {index.acl} a WHERE a.doc = {rid_sql} AND +a.principal IN {inner})"

    @classmethod
    def _acl_set_clause(cls, index: _Index, rid_sql: str, principals: list[int], params: list[Any]) -> str:
        """``rid IN`` the principals' documents: SQLite then reads the documents by id from that (small) set."""
        inner = cls._principal_list(principals, params)
        return f"{rid_sql} IN (SELECT doc FROM {index.acl} INDEXED BY {index.acl_by_doc} WHERE principal IN {inner})"

    @staticmethod
    def _merged_acl_sql(
        index: _Index,
        principals: list[int],
        drive: tuple[str, str],
        filter_sql: str,
        filter_params: list[Any],
    ) -> tuple[str, list[Any]]:
        """The principals' posting lists merged in ``drive`` order (column, direction), each document once.

        One arm per principal, each read in order from a covering index; SQLite merges ordered compound selects
        with co-routines (``MERGE (UNION)``), so a ``LIMIT`` stops the walk after ``skip + top`` documents."""
        column, direction = drive
        source = (
            f"SELECT a.key, a.doc FROM {index.acl_keys} a"
            if column == "key"
            else f"SELECT a.doc FROM {index.acl} a INDEXED BY {index.acl_by_doc}"
        )
        join = f" JOIN {index.docs} d ON d.rid = a.doc" if filter_sql else ""
        condition = f" AND {filter_sql}" if filter_sql else ""
        arm = f"{source}{join} WHERE a.principal = ?{condition}"
        params: list[Any] = []
        for principal in principals:
            params.extend([principal, *filter_params])
        return " UNION ".join(arm for _ in principals) + f" ORDER BY 1 {direction}", params

    @classmethod
    def _acl_count_sql(
        cls, index: _Index, principals: list[int], filter_sql: str, filter_params: list[Any]
    ) -> tuple[str, list[Any]]:
        """How many documents the principals may read (and the filter admits), counted from the ACL side."""
        params: list[Any] = []
        inner = cls._principal_list(principals, params)
        join = f" JOIN {index.docs} d ON d.rid = a.doc" if filter_sql else ""
        condition = f" AND {filter_sql}" if filter_sql else ""
        params.extend(filter_params)
        return (
            f"SELECT COUNT(DISTINCT a.doc) FROM {index.acl} a INDEXED BY {index.acl_by_doc}{join} "
            f"WHERE a.principal IN {inner}{condition}",
            params,
        )

    def search(self, name: str, params: SearchParams, identity: QueryIdentity | None) -> SearchPage:
        index = self._index(name)
        schema = index.schema
        select = odata.parse_select(params.select, schema)
        search_fields = odata.parse_search_fields(params.search_fields, schema)
        order = odata.parse_orderby(params.orderby, schema)
        filter_expr = (
            odata.parse_filter(params.filter, schema) if params.filter and params.filter.strip() else None
        )
        ast = parse_simple(params.search, params.search_mode)
        query = FullTextQuery(index.fts, index.docs, schema.searchable, search_fields)
        from_sql, where, score_sql, select_params, from_params, where_params, constant_score = query.build(
            ast
        )
        needs_docs_join = (
            filter_expr is not None or any(o.field is not None for o in order) or "d." in from_sql
        )
        if not needs_docs_join and from_sql.startswith(index.fts):
            rid_sql = f"{index.fts}.rowid"
        else:
            if from_sql.startswith(index.fts):
                from_sql = f"{from_sql} JOIN {index.docs} d ON d.rid = {index.fts}.rowid"
            rid_sql = "d.rid"
        score_sql = score_sql.replace("{rid}", rid_sql)
        where = [w.replace("{rid}", rid_sql) for w in where]
        filter_sql, filter_params = "", []
        if filter_expr is not None:
            builder = odata.SqlBuilder("d.body")
            filter_sql, filter_params = builder.compile(filter_expr), builder.params
            where.append(filter_sql)
            where_params.extend(filter_params)
        principals = self._principal_ids(identity) if schema.trims else []
        # Match-all and trimmed: the user's ACL postings drive (a user reads a few percent of the documents), merged
        # in the requested order when that is the natural or key order; otherwise each candidate probes the ACL.
        acl_driven = schema.trims and isinstance(ast, MatchAll)
        drive = _merge_order(order) if acl_driven and 0 < len(principals) <= MAX_MERGED_PRINCIPALS else None
        if drive is not None and len(principals) * (len(filter_params) + 1) > MAX_MERGED_PARAMS:
            drive = None  # each merge arm repeats the filter: a long filter for many principals probes instead
        if schema.trims:
            clause = self._acl_set_clause if acl_driven else self._acl_clause
            where.append(clause(index, rid_sql, principals, where_params))
        where_sql = (" WHERE " + " AND ".join(where)) if where else ""

        order_params: list[Any] = []
        order_terms: list[str] = []
        for item in order:
            direction = "DESC" if item.descending else "ASC"
            if item.field is None:
                if not constant_score:
                    order_terms.append(f"score {direction}")
            elif item.field.key:
                order_terms.append(f"d.key {direction}")
            else:
                order_params.append("$." + json.dumps(item.field.name))
                order_terms.append(f"json_extract(d.body, ?) {direction}")
        if not constant_score:
            order_terms.append("score DESC")
        order_terms.append(f"{rid_sql} ASC")

        page = min(DEFAULT_PAGE if params.top is None else params.top, MAX_PAGE)
        conn = self._reader()
        if drive is not None:
            merged_sql, merged_params = self._merged_acl_sql(
                index, principals, drive, filter_sql, filter_params
            )
            sql = f"{merged_sql} LIMIT ? OFFSET ?"
            all_params = [*merged_params, page + 1, params.skip]
        else:
            sql = (
                f"SELECT {rid_sql}, {score_sql} AS score FROM {from_sql}{where_sql} "
                f"ORDER BY {', '.join(order_terms)} LIMIT ? OFFSET ?"
            )
            all_params = [*select_params, *from_params, *where_params, *order_params, page + 1, params.skip]
        try:
            hits = conn.execute(sql, all_params).fetchall()
            if drive is not None:  # rows are (doc) or (key, doc); a match-all query scores 1.0
                hits = [(row[-1], 1.0) for row in hits]
            count = None
            if params.count and acl_driven:
                count_sql, count_params = self._acl_count_sql(index, principals, filter_sql, filter_params)
                count = int(conn.execute(count_sql, count_params).fetchone()[0])
            elif params.count:
                count_sql = f"SELECT COUNT(*) FROM {from_sql}{where_sql}"
                count = int(conn.execute(count_sql, [*from_params, *where_params]).fetchone()[0])
        except sqlite3.OperationalError as exc:
            # The parser limits keep compiled SQL within SQLite's; should one still be hit, or FTS5 reject an
            # expression we cannot foresee, the caller gets a 400 that says so, never a 500.
            if any(sign in str(exc) for sign in _TOO_COMPLEX):
                raise bad_request(
                    "The search request is too complex to run: simplify the filter or the search text "
                    "(fewer clauses, fewer nesting levels)."
                ) from exc
            raise bad_request(f"The search request could not be processed: {exc}.") from exc
        more = len(hits) > page
        hits = hits[:page]
        bodies = self._bodies(conn, index, [h[0] for h in hits])
        rows = [_project(bodies[rid], select, score) for rid, score in hits]
        truncated = more and (params.top is None or params.top > page)
        return SearchPage(rows=rows, count=count, next_params=params.next_page(page) if truncated else None)

    @staticmethod
    def _bodies(conn: sqlite3.Connection, index: _Index, rids: list[int]) -> dict[int, dict[str, Any]]:
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
        fields = odata.parse_select(select, index.schema)
        params: list[Any] = [key]
        sql = f"SELECT d.rid, d.body FROM {index.docs} d WHERE d.key = ?"
        if index.schema.trims:
            sql += " AND " + self._acl_clause(index, "d.rid", self._principal_ids(identity), params)
        row = self._reader().execute(sql, params).fetchone()
        if row is None:
            raise SearchError(404, f"No document with the key '{key}' was found in index '{name}'.")
        doc = _project(json.loads(row[1]), fields, None)
        return doc


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


_TYPE_CHECKS = {
    "Edm.String": lambda v: isinstance(v, str),
    "Edm.Int32": lambda v: isinstance(v, int) and not isinstance(v, bool) and -(2**31) <= v < 2**31,
    "Edm.Int64": lambda v: isinstance(v, int) and not isinstance(v, bool) and -(2**63) <= v < 2**63,
    "Edm.Double": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "Edm.Boolean": lambda v: isinstance(v, bool),
    "Edm.DateTimeOffset": lambda v: isinstance(v, str),
}


def _validate_action(schema: IndexSchema, raw: Any) -> tuple[str, str, dict[str, Any]]:
    """Structural checks that fail the whole request with 400, as Azure does."""
    if not isinstance(raw, dict):
        raise bad_request("The request is invalid. Details: each entry of 'value' must be a JSON object.")
    action = raw.get("@search.action", "upload")
    if action not in ("upload", "merge", "mergeOrUpload", "delete"):
        raise bad_request(
            f"The request is invalid. Details: '@search.action' must be upload, merge, mergeOrUpload or delete, not {action!r}."
        )
    key_field = schema.key.name
    key = raw.get(key_field)
    if not isinstance(key, str) or not key:
        raise bad_request(
            f"The request is invalid. Details: every document must have a non-empty string key field '{key_field}'."
        )
    fields: dict[str, Any] = {}
    for name, value in raw.items():
        if name.startswith("@search."):
            continue
        field = schema.field(name)
        if field is None:
            raise bad_request(
                f"The request is invalid. Details: The property '{name}' does not exist on type "
                "'search.documentFields'. Make sure to only use property names that are defined by the type."
            )
        if value is not None:
            check = _TYPE_CHECKS[field.element_type]
            ok = (
                (isinstance(value, list) and all(check(v) for v in value))
                if field.is_collection
                else check(value)
            )
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
            if field.permission_filter and isinstance(value, list) and len(value) > 1000:
                raise bad_request(f"The permission field '{name}' holds more than 1000 values.")
        fields[name] = value
    return action, key, fields


def _merge_order(order: list[odata.OrderItem]) -> tuple[str, str] | None:
    """For a match-all query (every score 1.0): the ACL column and direction its results are ordered by — the
    document id (``rid``, the tie-break) or the key — or None when another field orders them."""
    for item in order:
        if item.field is None:  # search.score(): constant
            continue
        if item.field.key:  # keys are unique: nothing after the key matters
            return ("key", "DESC" if item.descending else "ASC")
        return None
    return ("doc", "ASC")


def _derived_layout(schema: IndexSchema) -> tuple[Any, ...]:
    """What the FTS and ACL tables depend on; an update that keeps it needs no rebuild."""
    return (
        tuple(f.name for f in schema.searchable),
        tuple((f.name, f.permission_filter) for f in schema.permission_fields),
    )
