"""A search request planned as SQL: which documents match, which the user may read, in what order, how many.

Permission trimming takes one of two routes, chosen by measurement (benchmarks/bench_search.py):
- ranked queries (FTS drives): an ``EXISTS`` probe into ``acl_N``'s primary key for each candidate document, against
  the few principal ids of the query's user (their oid, their groups, and ``all``);
- match-all queries (``*``): the ACL drives. For the natural order or ``id`` order, the user's per-principal posting
  lists (already in ``rid`` or key order in the indexes, see store.py) are merged by SQLite's ordered ``UNION`` and
  stop at ``skip + top``, instead of walking every document and probing its ACL (a user sees a few percent of
  them); for other orders the user's documents are looked up by id and sorted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from .fulltext import FullTextQuery, TextMatch
from .odata import Expr, OrderItem, SqlBuilder, parse_filter, parse_orderby, parse_search_fields, parse_select
from .request import SearchParams
from .schema import Field, IndexSchema
from .simple_query import MatchAll, Node, parse_simple
from .sql import Sql, join, value_list
from .tables import StoredIndex

# Above this many principals (a user in very many groups) the merge tree gets deep, while such a user reads so many
# documents that walking them and probing the ACL finds a page quickly: the probe route is used instead.
MAX_MERGED_PRINCIPALS = 64
# SQLite allows 32,766 bound parameters per statement; the merged route binds the filter's once per principal.
MAX_MERGED_PARAMS = 30_000
# Up to this many principal ids are bound one placeholder each; more go as one JSON array.
MAX_LISTED_PRINCIPALS = 500


@dataclass(frozen=True)
class ParsedQuery:
    """A request's parameters, parsed against the index schema (each parser raises the service's 400)."""

    select: list[Field]
    search_fields: list[Field]
    order: list[OrderItem]
    filter: Expr | None
    text: Node


def parse_query(params: SearchParams, schema: IndexSchema) -> ParsedQuery:
    select = parse_select(params.select, schema)
    search_fields = parse_search_fields(params.search_fields, schema)
    order = parse_orderby(params.orderby, schema)
    filter_expr = parse_filter(params.filter, schema) if params.filter and params.filter.strip() else None
    return ParsedQuery(
        select, search_fields, order, filter_expr, parse_simple(params.search, params.search_mode)
    )


@dataclass(frozen=True)
class SearchPlan:
    """The statements of one search page."""

    hits: Sql  # rows (document id, score); merged: (doc) or (key, doc), every score 1.0
    count: Sql | None  # the total, when the request asked for it
    merged: bool


@dataclass(frozen=True)
class MergeOrder:
    """The ACL column a match-all query's results are ordered by (every score is 1.0), and its direction."""

    column: Literal["doc", "key"]
    direction: Literal["ASC", "DESC"]


@dataclass(frozen=True)
class Candidates:
    """The documents that match (before paging): their source, the SQL naming a document's id, the conditions."""

    source: Sql
    rid: str
    where: Sql


def plan_search(
    index: StoredIndex, query: ParsedQuery, principals: list[int], *, limit: int, skip: int, count: bool
) -> SearchPlan:
    """``limit`` rows from ``skip`` of the documents ``query`` matches that ``principals`` may read (when the
    index trims), in the requested order."""
    trims = index.schema.trims
    match = FullTextQuery(index.fts, index.docs, index.schema.searchable, query.search_fields).build(
        query.text
    )
    filter_sql = _filter_sql(query.filter)
    # Match-all and trimmed: the user's ACL postings drive (a user reads a few percent of the documents), merged
    # in the requested order when that is the natural or key order; otherwise each candidate probes the ACL.
    acl_driven = trims and isinstance(query.text, MatchAll)
    drive = _merge_drive(query.order, principals, filter_sql) if acl_driven else None
    window = Sql(" LIMIT ? OFFSET ?", (limit, skip))
    found = _candidates(index, match, query, filter_sql, principals if trims else None, acl_driven)
    if drive is not None:
        hits = merged_acl_sql(index, principals, drive, filter_sql) + window
    else:
        order_by = join(_order_terms(query.order, found.rid, match.constant_score), ", ")
        select = Sql(f"SELECT {found.rid}, ") + match.score + " AS score"
        hits = select + " FROM " + found.source + found.where + " ORDER BY " + order_by + window
    count_sql = None
    if count and acl_driven:
        count_sql = acl_count_sql(index, principals, filter_sql)
    elif count:
        count_sql = "SELECT COUNT(*) FROM " + found.source + found.where
    return SearchPlan(hits, count_sql, drive is not None)


def _filter_sql(expr: Expr | None) -> Sql | None:
    if expr is None:
        return None
    builder = SqlBuilder("d.body")
    text = builder.compile(expr)
    return Sql(text, tuple(builder.params))


def _merge_drive(order: list[OrderItem], principals: list[int], filter_sql: Sql | None) -> MergeOrder | None:
    if not 0 < len(principals) <= MAX_MERGED_PRINCIPALS:
        return None
    filter_params = len(filter_sql.params) if filter_sql is not None else 0
    if len(principals) * (filter_params + 1) > MAX_MERGED_PARAMS:
        return None  # each merge arm repeats the filter: a long filter for many principals probes instead
    return merge_order(order)


def merge_order(order: list[OrderItem]) -> MergeOrder | None:
    """For a match-all query (every score 1.0): the ACL column and direction its results are ordered by — the
    document id (``rid``, the tie-break) or the key — or None when another field orders them."""
    for item in order:
        if item.field is None:  # search.score(): constant
            continue
        if item.field.key:  # keys are unique: nothing after the key matters
            return MergeOrder("key", "DESC" if item.descending else "ASC")
        return None
    return MergeOrder("doc", "ASC")


def _candidates(
    index: StoredIndex,
    match: TextMatch,
    query: ParsedQuery,
    filter_sql: Sql | None,
    principals: list[int] | None,
    acl_driven: bool,
) -> Candidates:
    """Where the matching documents come from; ``principals`` None: the index does not trim."""
    needs_body = filter_sql is not None or any(o.field is not None for o in query.order)
    if match.fts_driven and not needs_body:
        rid, source = f"{index.fts}.rowid", match.source
    elif match.fts_driven:
        rid, source = "d.rid", match.source + f" JOIN {index.docs} d ON d.rid = {index.fts}.rowid"
    else:
        rid, source = "d.rid", match.source
    conditions = list(match.where)
    if filter_sql is not None:
        conditions.append(filter_sql)
    if principals is not None:
        readable = acl_set_clause if acl_driven else acl_clause
        conditions.append(readable(index, rid, principals))
    where = " WHERE " + join(conditions, " AND ") if conditions else Sql("")
    return Candidates(source, rid, where)


def _order_terms(order: list[OrderItem], rid: str, constant_score: bool) -> list[Sql]:
    terms: list[Sql] = []
    for item in order:
        direction = "DESC" if item.descending else "ASC"
        if item.field is None:
            if not constant_score:
                terms.append(Sql(f"score {direction}"))
        elif item.field.key:
            terms.append(Sql(f"d.key {direction}"))
        else:
            terms.append(Sql(f"json_extract(d.body, ?) {direction}", ("$." + json.dumps(item.field.name),)))
    if not constant_score:
        terms.append(Sql("score DESC"))
    terms.append(Sql(f"{rid} ASC"))
    return terms


# ---- the ACL -------------------------------------------------------------------------------------------------


def principal_list(principals: list[int]) -> Sql:
    """``(?, ?, …)`` for the principal ids, or one JSON parameter when there are too many for placeholders."""
    if len(principals) <= MAX_LISTED_PRINCIPALS:
        return value_list(principals)
    return Sql("(SELECT value FROM json_each(?))", (json.dumps(principals),))


def acl_clause(index: StoredIndex, rid: str, principals: list[int]) -> Sql:
    """An EXISTS probe: may the candidate document ``rid`` be read by any of ``principals``?"""
    # The unary + keeps SQLite from seeking (doc, principal) once per principal: a document has only a few ACL
    # rows, so one range scan on ``doc`` tested against the (small) principal list is ~4x cheaper (measured).
    probe = f"EXISTS (SELECT 1 FROM {index.acl} a WHERE a.doc = {rid} AND +a.principal IN "
    return probe + principal_list(principals) + ")"


def acl_set_clause(index: StoredIndex, rid: str, principals: list[int]) -> Sql:
    """``rid IN`` the principals' documents: SQLite then reads the documents by id from that (small) set."""
    documents = f"{rid} IN (SELECT doc FROM {index.acl} INDEXED BY {index.acl_by_doc} WHERE principal IN "
    return documents + principal_list(principals) + ")"


def merged_acl_sql(
    index: StoredIndex, principals: list[int], drive: MergeOrder, filter_sql: Sql | None
) -> Sql:
    """The principals' posting lists merged in ``drive`` order, each document once.

    One arm per principal, each read in order from a covering index; SQLite merges ordered compound selects
    with co-routines (``MERGE (UNION)``), so a ``LIMIT`` stops the walk after ``skip + top`` documents."""
    source = (
        f"SELECT a.key, a.doc FROM {index.acl_keys} a"
        if drive.column == "key"
        else f"SELECT a.doc FROM {index.acl} a INDEXED BY {index.acl_by_doc}"
    )
    body_join = f" JOIN {index.docs} d ON d.rid = a.doc" if filter_sql is not None else ""
    condition = " AND " + filter_sql if filter_sql is not None else Sql("")
    arms = [Sql(f"{source}{body_join} WHERE a.principal = ?", (p,)) + condition for p in principals]
    return join(arms, " UNION ") + f" ORDER BY 1 {drive.direction}"


def acl_count_sql(index: StoredIndex, principals: list[int], filter_sql: Sql | None) -> Sql:
    """How many documents the principals may read (and the filter admits), counted from the ACL side."""
    body_join = f" JOIN {index.docs} d ON d.rid = a.doc" if filter_sql is not None else ""
    condition = " AND " + filter_sql if filter_sql is not None else Sql("")
    count = f"SELECT COUNT(DISTINCT a.doc) FROM {index.acl} a INDEXED BY {index.acl_by_doc}{body_join} "
    return count + "WHERE a.principal IN " + principal_list(principals) + condition
