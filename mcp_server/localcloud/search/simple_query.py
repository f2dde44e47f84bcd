"""Azure AI Search's simple query syntax, parsed into a small boolean AST.

Operators (Lucene SimpleQueryParser, as Azure documents them): ``+`` AND, ``|`` OR, ``-`` NOT, ``"…"`` phrase,
``term*`` prefix, ``( )`` grouping, ``\\`` escapes. Without an operator, clauses join with the search mode's
default: OR for ``searchMode=any``, AND for ``all``. Operators group left to right without precedence, as in Lucene.
A negated clause means "every document except …", so ``wifi -luxury`` is "wifi OR NOT luxury" in ``any`` mode and
"wifi AND NOT luxury" in ``all`` mode, as documented. Text goes through the same analyzer as the documents.
"""

from __future__ import annotations

from dataclasses import dataclass

from .analyzer import tokenize
from .errors import bad_request

MAX_DEPTH = 32  # not documented by Azure; compiled SQL stays within SQLite's parser stack (overflows near 40)
MAX_CLAUSES = 1024  # Azure's documented limit


@dataclass(frozen=True)
class MatchAll:
    pass


@dataclass(frozen=True)
class Leaf:
    kind: str  # "term" | "phrase" | "prefix"
    tokens: tuple[str, ...]


@dataclass(frozen=True)
class Bool:
    op: str  # "and" | "or"
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    child: Node


Node = MatchAll | Leaf | Bool | Not

_TERM_STOP = set(' \t\r\n()|+"')


def _combine(op: str, acc: Node | None, node: Node) -> Node:
    if acc is None:
        return node
    if isinstance(acc, Bool) and acc.op == op:
        return Bool(op, (*acc.children, node))
    return Bool(op, (acc, node))


class _Parser:
    def __init__(self, text: str, default_op: str) -> None:
        self.text = text
        self.pos = 0
        self.default_op = default_op

    def sequence(self, depth: int) -> Node | None:
        acc: Node | None = None
        pending: str | None = None
        text = self.text
        while self.pos < len(text):
            ch = text[self.pos]
            if ch.isspace():
                self.pos += 1
                continue
            if ch == ")":
                self.pos += 1
                if depth > 0:
                    return acc
                continue  # an unbalanced ')' is ignored, as Lucene's simple parser does
            if ch in "+|":
                pending = "and" if ch == "+" else "or"
                self.pos += 1
                continue
            negate = False
            while self.pos < len(text) and text[self.pos] == "-":
                negate = not negate
                self.pos += 1
            if self.pos >= len(text):
                break
            ch = text[self.pos]
            node: Node | None
            if ch == "(":
                self.pos += 1
                if depth + 1 > MAX_DEPTH:
                    raise bad_request(
                        f"The search query nests parentheses more than {MAX_DEPTH} levels deep; "
                        "write it with fewer levels."
                    )
                node = self.sequence(depth + 1)
            elif ch == '"':
                node = self.phrase()
            elif ch.isspace() or ch in "+|)":
                continue
            else:
                node = self.term()
            if node is None:
                continue
            if negate:
                node = Not(node)
            acc = _combine(pending or self.default_op, acc, node)
            pending = None
        return acc

    def phrase(self) -> Node | None:
        self.pos += 1  # opening quote
        out: list[str] = []
        text = self.text
        while self.pos < len(text):
            ch = text[self.pos]
            if ch == "\\" and self.pos + 1 < len(text):
                out.append(text[self.pos + 1])
                self.pos += 2
                continue
            self.pos += 1
            if ch == '"':
                break
            out.append(ch)
        tokens = tuple(tokenize("".join(out)))
        if not tokens:
            return None
        return Leaf("term" if len(tokens) == 1 else "phrase", tokens)

    def term(self) -> Node | None:
        out: list[str] = []
        text = self.text
        prefix = False
        while self.pos < len(text):
            ch = text[self.pos]
            if ch == "\\" and self.pos + 1 < len(text):
                out.append(text[self.pos + 1])
                self.pos += 2
                continue
            if ch in _TERM_STOP:
                break
            self.pos += 1
            if ch == "*" and (self.pos >= len(text) or text[self.pos] in _TERM_STOP):
                prefix = True
                break
            out.append(ch)
        raw = "".join(out)
        tokens = tokenize(raw)
        if not tokens:
            return MatchAll() if prefix and not raw.strip() else None
        leaves: list[Node] = [Leaf("term", (t,)) for t in tokens]
        if prefix:
            leaves[-1] = Leaf("prefix", (tokens[-1],))
        if len(leaves) == 1:
            return leaves[0]
        return Bool(self.default_op, tuple(leaves))


def parse_simple(search: str | None, search_mode: str = "any") -> Node:
    """The query's AST; ``*``, blank or no text is :class:`MatchAll`."""
    if search is None or not search.strip() or search.strip() == "*":
        return MatchAll()
    parser = _Parser(search, "and" if search_mode == "all" else "or")
    node = parser.sequence(0)
    if node is None:
        return MatchAll()
    if _count_leaves(node) > MAX_CLAUSES:
        raise bad_request(f"The search query has more than {MAX_CLAUSES} clauses.")
    return node


def _count_leaves(node: Node) -> int:
    if isinstance(node, Bool):
        return sum(_count_leaves(c) for c in node.children)
    if isinstance(node, Not):
        return _count_leaves(node.child)
    return 1


def has_negation(node: Node) -> bool:
    if isinstance(node, Not):
        return True
    if isinstance(node, Bool):
        return any(has_negation(c) for c in node.children)
    return False


def contains_match_all(node: Node) -> bool:
    if isinstance(node, MatchAll):
        return True
    if isinstance(node, Bool):
        return any(contains_match_all(c) for c in node.children)
    if isinstance(node, Not):
        return contains_match_all(node.child)
    return False


def positive_leaves(node: Node) -> list[Leaf]:
    """Leaves that can make a document match (not under a NOT): the ones that score."""
    if isinstance(node, Leaf):
        return [node]
    if isinstance(node, Bool):
        return [leaf for c in node.children for leaf in positive_leaves(c)]
    return []
