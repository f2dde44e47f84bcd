"""A reference evaluation of search requests in plain Python, independent of the service's parser and SQL.

Filters are built as :class:`F` values: the OData text sent to the service together with the predicate it means,
so a test compares the service's answer with what the predicate selects from the documents it wrote. Text queries
use the analyzer's documented rule (lowercase, split on everything but letters and digits), written out here again.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Doc = Mapping[str, Any]
_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def visible(
    doc: Doc, oid: str | None, groups: Iterable[str] = (), *, users: str = "uids", groups_field: str = "gids"
) -> bool:
    """Azure's permission rule: ``all`` in any permission field, the user's oid in the userIds field, or one of
    the user's groups in the groupIds field (no user: ``all`` only)."""
    user_values = doc.get(users) or []
    group_values = doc.get(groups_field) or []
    if "all" in user_values or "all" in group_values:
        return True
    if oid is None:
        return False
    return oid in user_values or any(g in group_values for g in groups)


def has_any_word(doc: Doc, tokens: Sequence[str], fields: Sequence[str]) -> bool:
    doc_words = {w for f in fields for w in words(_text(doc.get(f)))}
    return any(t in doc_words for t in tokens)


def has_phrase(doc: Doc, tokens: Sequence[str], fields: Sequence[str]) -> bool:
    n = len(tokens)
    for f in fields:
        ws = words(_text(doc.get(f)))
        if any(ws[i : i + n] == list(tokens) for i in range(len(ws) - n + 1)):
            return True
    return False


def has_prefix(doc: Doc, prefix: str, fields: Sequence[str]) -> bool:
    return any(w.startswith(prefix) for f in fields for w in words(_text(doc.get(f))))


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return " ".join(v for v in value if isinstance(v, str))
    return ""


# ---- OData filters with their meaning ---------------------------------------------------------------------------

Pred = Callable[[Doc], bool]


@dataclass(frozen=True)
class F:
    """An OData filter text and the predicate it denotes (``pred`` None: the service must refuse the text)."""

    text: str
    pred: Pred | None

    @property
    def valid(self) -> bool:
        return self.pred is not None


def quote(value: str) -> str:
    """An OData string literal."""
    return "'" + value.replace("'", "''") + "'"


def _compare(op: str, left: Any, right: Any) -> bool:
    """OData comparison semantics over JSON values: null equals only null; ordering with a null is false."""
    if op == "eq":
        return bool(left == right) and (left is None) == (right is None)
    if op == "ne":
        return not _compare("eq", left, right)
    if left is None or right is None:
        return False
    return {"gt": left > right, "ge": left >= right, "lt": left < right, "le": left <= right}[op]


def cmp(field: str, op: str, literal: Any) -> F:
    if literal is None:
        text = "null"
    elif isinstance(literal, bool):
        text = "true" if literal else "false"
    elif isinstance(literal, str):
        text = quote(literal)
    else:
        text = repr(literal)
    return F(f"{field} {op} {text}", lambda d: _compare(op, d.get(field), literal))


def search_in(field: str, values: Sequence[str], delimiter: str = ",") -> F:
    raw = delimiter.join(values)
    text = f"search.in({field}, {quote(raw)}" + (f", {quote(delimiter)})" if delimiter != "," else ")")
    wanted = set(values)
    return F(text, lambda d: d.get(field) in wanted)


def any_eq(field: str, var: str, value: str) -> F:
    return F(f"{field}/any({var}: {var} eq {quote(value)})", lambda d: value in (d.get(field) or []))


def any_with(field: str, var: str, body_text: str, body: Callable[[Any, Doc], bool]) -> F:
    """``field/any(var: body)``, where ``body(value, doc)`` is the body's meaning for one element."""
    return F(f"{field}/any({var}: {body_text})", lambda d: any(body(v, d) for v in d.get(field) or []))


def all_with(field: str, var: str, body_text: str, body: Callable[[Any, Doc], bool]) -> F:
    return F(f"{field}/all({var}: {body_text})", lambda d: all(body(v, d) for v in d.get(field) or []))


def and_(*parts: F) -> F:
    return _join("and", parts, all)


def or_(*parts: F) -> F:
    return _join("or", parts, any)


def _join(op: str, parts: Sequence[F], combine: Callable[[Iterable[bool]], bool]) -> F:
    text = f" {op} ".join(f"({p.text})" for p in parts)
    if any(p.pred is None for p in parts):
        return F(text, None)
    preds = [p.pred for p in parts]
    return F(text, lambda d: combine(p(d) for p in preds))  # type: ignore[misc]


def chain(op: str, parts: Sequence[F]) -> F:
    """``a op b op c …`` without parentheses around the operands (one flat chain in the text)."""
    joined = _join(op, parts, all if op == "and" else any)
    return F(f" {op} ".join(p.text for p in parts), joined.pred)


def not_(part: F, *, parens: bool = True) -> F:
    text = f"not ({part.text})" if parens else f"not {part.text}"
    return F(text, None if part.pred is None else (lambda d, p=part.pred: not p(d)))


def expected_ids(docs: Iterable[Doc], flt: F, oid: str | None = None, groups: Iterable[str] = ()) -> set[str]:
    assert flt.pred is not None
    groups = tuple(groups)
    return {d["id"] for d in docs if visible(d, oid, groups) and flt.pred(d)}
