"""The simple-query AST compiled to SQL over one index's FTS5 and document tables.

Query text never reaches SQL text: each clause becomes an FTS5 expression bound as a parameter, its tokens quoted.
Boolean structure stays shallow, as in the filter compiler: each group is flat (at most ``odata.group_sql``'s
run per level) and holds its most nested operand first, so neither SQLite's nor FTS5's parser stack overflows
and no expression tree nears SQLite's depth limit of 1000.
"""

from __future__ import annotations

from typing import Any

from .odata import group_sql
from .schema import Field
from .simple_query import Bool, Leaf, MatchAll, Node, Not, positive_leaves


def _fts_quote(token: str) -> str:
    return '"' + token.replace('"', '""') + '"'


def _nesting(node: Node) -> int:
    if isinstance(node, Bool):
        return 1 + max(_nesting(c) for c in node.children)
    if isinstance(node, Not):
        return 1 + _nesting(node.child)
    return 0


def _deepest_first(children: tuple[Node, ...]) -> list[Node]:
    """The operands of a group, most nested first (AND/OR of pure predicates: the order is free)."""
    return sorted(children, key=_nesting, reverse=True)


def _pure_positive(node: Node) -> bool:
    if isinstance(node, Leaf):
        return True
    if isinstance(node, Bool):
        return all(_pure_positive(c) for c in node.children)
    return False


class FullTextQuery:
    """FROM/WHERE/score SQL for a simple-query AST over the tables ``fts`` and ``docs``."""

    def __init__(self, fts: str, docs: str, searchable: list[Field], search_fields: list[Field]) -> None:
        self.fts = fts
        self.docs = docs
        self.columns = [f"c{searchable.index(f)}" for f in search_fields]
        self.all_columns = len(search_fields) == len(searchable)
        self.weights = ", ".join("1.0" if f in search_fields else "0.0" for f in searchable) or "1.0"

    def leaf_expr(self, leaf: Leaf) -> str:
        colset = "" if self.all_columns else "{" + " ".join(self.columns) + "} : "
        if leaf.kind == "prefix":
            return f"{colset}{_fts_quote(leaf.tokens[0])} *"
        return colset + _fts_quote(" ".join(leaf.tokens))

    def fts_expr(self, node: Node) -> str:
        if isinstance(node, Leaf):
            return self.leaf_expr(node)
        assert isinstance(node, Bool)
        joiner = " AND " if node.op == "and" else " OR "
        return group_sql([self.fts_expr(c) for c in _deepest_first(node.children)], joiner)

    def bm25(self) -> str:
        return f"-bm25({self.fts}, {self.weights})"

    def build(self, ast: Node) -> tuple[str, list[str], str, list[Any], list[Any], list[Any], bool]:
        """(from, where clauses, score expression, select params, from params, where params, constant score)."""
        fts, docs = self.fts, self.docs
        if isinstance(ast, MatchAll):
            return f"{docs} d", [], "1.0", [], [], [], True
        if not self.columns:  # nothing searchable: no text query can match
            return f"{docs} d", ["0"], "1.0", [], [], [], True
        if _pure_positive(ast):
            leaves = positive_leaves(ast)
            constant = all(leaf.kind == "prefix" for leaf in leaves)
            scored = not any(leaf.kind == "prefix" for leaf in leaves)
            if constant or scored:
                return (
                    fts,
                    [f"{fts} MATCH ?"],
                    "1.0" if constant else self.bm25(),
                    [],
                    [],
                    [self.fts_expr(ast)],
                    constant,
                )
        # General case: boolean structure over per-leaf matches; BM25 from the scoring leaves, plus 1.0 for each
        # matched constant-score clause (prefix, negation), as Lucene adds a constant-score query's score.
        where_params: list[Any] = []
        where_sql = self.bool_sql(ast, where_params)
        select_params: list[Any] = []
        constants: list[str] = []
        self.constant_clauses(ast, constants, select_params)
        scoring = [leaf for leaf in positive_leaves(ast) if leaf.kind != "prefix"]
        from_sql = f"{docs} d"
        from_params: list[Any] = []
        parts: list[str] = []
        if scoring:
            from_sql += (
                f" LEFT JOIN (SELECT rowid AS rid, {self.bm25()} AS s FROM {fts} WHERE {fts} MATCH ?) sc "
                "ON sc.rid = d.rid"
            )
            from_params.append(" OR ".join(self.leaf_expr(leaf) for leaf in scoring))
            parts.append("COALESCE(sc.s, 0.0)")
        parts.extend(constants)
        score = group_sql(parts, " + ") if parts else "1.0"
        return from_sql, [where_sql], score, select_params, from_params, where_params, False

    def leaf_sql(self, leaf: Leaf, params: list[Any]) -> str:
        params.append(self.leaf_expr(leaf))
        return f"{{rid}} IN (SELECT rowid FROM {self.fts} WHERE {self.fts} MATCH ?)"

    def bool_sql(self, node: Node, params: list[Any]) -> str:
        if isinstance(node, MatchAll):
            return "1"
        if isinstance(node, Leaf):
            return self.leaf_sql(node, params)
        if isinstance(node, Not):
            # NOT binds tighter than AND/OR and its operand is self-delimited: no parentheses (parser stack).
            return "NOT " + self.bool_sql(node.child, params)
        joiner = " AND " if node.op == "and" else " OR "
        return group_sql([self.bool_sql(c, params) for c in _deepest_first(node.children)], joiner)

    def constant_clauses(self, node: Node, out: list[str], params: list[Any]) -> None:
        if isinstance(node, Leaf) and node.kind == "prefix":
            out.append("(" + self.leaf_sql(node, params) + ")")
        elif isinstance(node, Not | MatchAll):
            out.append("(" + self.bool_sql(node, params) + ")")
        elif isinstance(node, Bool):
            for child in node.children:
                self.constant_clauses(child, out, params)
