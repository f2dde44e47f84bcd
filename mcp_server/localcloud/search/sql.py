"""SQL fragments: text with ``?`` placeholders together with the values they bind, composed in text order.

Only identifiers the store itself names (``docs_3``, ``d.rid``) and fixed keywords are ever written into the text;
every value — search text, filter literals, principal ids, page bounds — is a bound parameter. Because a fragment
carries its own parameters, concatenating fragments in text order keeps text and parameters aligned.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

# Each SQL group joins at most this many operands, so a long chain is a shallow tree of flat groups.
GROUP_SIZE = 64


@dataclass(frozen=True)
class Sql:
    """A piece of SQL and the parameters of its placeholders, in order."""

    text: str
    params: tuple[Any, ...] = ()

    def __add__(self, other: Sql | str) -> Sql:
        if isinstance(other, str):
            return Sql(self.text + other, self.params)
        return Sql(self.text + other.text, self.params + other.params)

    def __radd__(self, other: str) -> Sql:
        return Sql(other + self.text, self.params)


def join(parts: Iterable[Sql], separator: str) -> Sql:
    """``a SEP b SEP …`` with the parameters of each part in turn."""
    parts = list(parts)
    return Sql(separator.join(p.text for p in parts), tuple(v for p in parts for v in p.params))


def group_sql(parts: list[str], joiner: str) -> str:
    """``(a AND b AND …)``, as groups of at most ``GROUP_SIZE`` operands: a flat run keeps SQLite's parser stack
    shallow, and grouping keeps its expression tree (one level per operand of a run) far below 1000."""
    while len(parts) > GROUP_SIZE:
        parts = ["(" + joiner.join(parts[i : i + GROUP_SIZE]) + ")" for i in range(0, len(parts), GROUP_SIZE)]
    return "(" + joiner.join(parts) + ")"


def group(parts: Sequence[Sql], joiner: str) -> Sql:
    """``group_sql`` over fragments: grouping keeps the operands' order, so their parameters stay in order."""
    return Sql(group_sql([p.text for p in parts], joiner), tuple(v for p in parts for v in p.params))


def value_list(values: Sequence[Any]) -> Sql:
    """``(?, ?, …)`` for ``values`` (``(NULL)`` when there are none: matches nothing)."""
    return Sql("(" + (", ".join("?" for _ in values) or "NULL") + ")", tuple(values))
