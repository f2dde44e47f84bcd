"""The simple-query AST compiled to SQL over one index's FTS5 and document tables.

Query text never reaches SQL text: each clause becomes an FTS5 expression bound as a parameter, its tokens quoted.
Boolean structure stays shallow, as in the filter compiler: each group is flat (at most ``sql.group_sql``'s
run per level) and holds its most nested operand first, so neither SQLite's nor FTS5's parser stack overflows
and no expression tree nears SQLite's depth limit of 1000.
"""

from __future__ import annotations

from dataclasses import dataclass

from .schema import Field
from .simple_query import Bool, Leaf, MatchAll, Node, Not, positive_leaves
from .sql import Sql, group, group_sql


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


@dataclass(frozen=True)
class TextMatch:
    """Which documents a search text selects and how it scores them, as SQL over one index's tables."""

    source: Sql  # the FROM clause
    fts_driven: bool  # the source is the FTS table alone, whose rowid is the document id; else ``docs d``
    where: tuple[Sql, ...]
    score: Sql
    constant_score: bool  # every match scores 1.0: the score orders nothing


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
        """An FTS5 query expression (bound as one parameter, never written into the SQL)."""
        if isinstance(node, Leaf):
            return self.leaf_expr(node)
        assert isinstance(node, Bool)
        joiner = " AND " if node.op == "and" else " OR "
        return group_sql([self.fts_expr(c) for c in _deepest_first(node.children)], joiner)

    def bm25(self) -> str:
        return f"-bm25({self.fts}, {self.weights})"

    def build(self, ast: Node) -> TextMatch:
        every_document = Sql(f"{self.docs} d")
        if isinstance(ast, MatchAll):
            return TextMatch(every_document, False, (), Sql("1.0"), True)
        if not self.columns:  # nothing searchable: no text query can match
            return TextMatch(every_document, False, (Sql("0"),), Sql("1.0"), True)
        if _pure_positive(ast):
            leaves = positive_leaves(ast)
            constant = all(leaf.kind == "prefix" for leaf in leaves)
            scored = not any(leaf.kind == "prefix" for leaf in leaves)
            if constant or scored:
                # FTS5 evaluates the whole expression and drives the query.
                where = Sql(f"{self.fts} MATCH ?", (self.fts_expr(ast),))
                score = Sql("1.0" if constant else self.bm25())
                return TextMatch(Sql(self.fts), True, (where,), score, constant)
        return self.general(ast)

    def general(self, ast: Node) -> TextMatch:
        """Boolean structure over per-leaf matches; BM25 from the scoring leaves, plus 1.0 for each matched
        constant-score clause (prefix, negation), as Lucene adds a constant-score query's score."""
        source = Sql(f"{self.docs} d")
        parts: list[Sql] = []
        scoring = [leaf for leaf in positive_leaves(ast) if leaf.kind != "prefix"]
        if scoring:
            matches = " OR ".join(self.leaf_expr(leaf) for leaf in scoring)
            source += Sql(
                f" LEFT JOIN (SELECT rowid AS rid, {self.bm25()} AS s FROM {self.fts} WHERE {self.fts} MATCH ?) sc "
                "ON sc.rid = d.rid",
                (matches,),
            )
            parts.append(Sql("COALESCE(sc.s, 0.0)"))
        parts.extend(self.constant_clauses(ast))
        score = group(parts, " + ") if parts else Sql("1.0")
        return TextMatch(source, False, (self.bool_sql(ast),), score, False)

    def leaf_sql(self, leaf: Leaf) -> Sql:
        # The source is ``docs d`` here: a leaf tests the candidate's id against its FTS matches.
        return Sql(
            f"d.rid IN (SELECT rowid FROM {self.fts} WHERE {self.fts} MATCH ?)", (self.leaf_expr(leaf),)
        )

    def bool_sql(self, node: Node) -> Sql:
        if isinstance(node, MatchAll):
            return Sql("1")
        if isinstance(node, Leaf):
            return self.leaf_sql(node)
        if isinstance(node, Not):
            # NOT binds tighter than AND/OR and its operand is self-delimited: no parentheses (parser stack).
            return "NOT " + self.bool_sql(node.child)
        joiner = " AND " if node.op == "and" else " OR "
        return group([self.bool_sql(c) for c in _deepest_first(node.children)], joiner)

    def constant_clauses(self, node: Node) -> list[Sql]:
        """``(clause)`` for each constant-score clause, in text order: each adds 1.0 to the score when it holds."""
        if isinstance(node, Leaf) and node.kind == "prefix":
            return ["(" + self.leaf_sql(node) + ")"]
        if isinstance(node, Not | MatchAll):
            return ["(" + self.bool_sql(node) + ")"]
        if isinstance(node, Bool):
            return [clause for child in node.children for clause in self.constant_clauses(child)]
        return []
