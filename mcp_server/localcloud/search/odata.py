"""The OData subset of ``$filter``, ``$orderby`` and ``$select``, parsed into an AST and compiled to SQL.

Values never reach SQL text: every literal, field path and list becomes a bound parameter; only fixed SQL
fragments are emitted. Field references are checked against the index schema (existence, filterable, sortable,
type compatibility), with Azure's "Invalid expression: …" messages.

Size limits (Azure documents none exactly; it refuses filters of "hundreds of clauses" with "Recursion depth
exceeded allowed limit"): at most ``MAX_FILTER_LENGTH`` characters, ``MAX_CLAUSES`` clauses, ``MAX_DEPTH`` levels
of parentheses / ``not`` / lambdas, of which at most ``MAX_LAMBDA_DEPTH`` nested ``any``/``all``. ``and``/``or``
chains become one n-ary node and ``not not x`` is ``x``, so the SQL stays shallow: SQLite's parser overflows at
~90 nested parentheses or 12 nested sub-selects, and its expression tree at a depth of 1000.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from .errors import invalid_expression
from .schema import Field, IndexSchema
from .sql import group_sql

MAX_DEPTH = 32
MAX_LAMBDA_DEPTH = 4
MAX_CLAUSES = 500
MAX_FILTER_LENGTH = 100_000
_INT64 = 2**63
_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^']|'')*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2}))
  | (?P<number>-?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<punct>[(),:/])
    """,
    re.VERBOSE,
)
COMPARISONS = {"eq": "=", "ne": "<>", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}


@dataclass(frozen=True)
class Tok:
    kind: str
    text: str
    pos: int


def _lex(text: str, parameter: str) -> list[Tok]:
    toks: list[Tok] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise invalid_expression(f"Syntax error at position {pos} in '{text}'.", parameter)
        kind = m.lastgroup or ""
        if kind != "ws":
            toks.append(Tok(kind, m.group(), pos))
        pos = m.end()
    return toks


# ---- AST -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Literal:
    value: Any  # str | int | float | bool | None
    kind: str  # "string" | "number" | "bool" | "null" | "datetime"


@dataclass(frozen=True)
class FieldRef:
    field: Field


@dataclass(frozen=True)
class VarRef:
    name: str
    element_type: str


@dataclass(frozen=True)
class Compare:
    op: str
    left: FieldRef | VarRef | Literal
    right: FieldRef | VarRef | Literal


@dataclass(frozen=True)
class Logical:
    op: str  # "and" | "or"
    children: tuple[Expr, ...]  # two or more, none itself a Logical of the same op


@dataclass(frozen=True)
class Negation:
    child: Expr


@dataclass(frozen=True)
class SearchIn:
    target: FieldRef | VarRef
    values: tuple[str, ...]


@dataclass(frozen=True)
class Lambda:
    field: Field
    kind: str  # "any" | "all"
    var: str | None
    body: Expr | None


@dataclass(frozen=True)
class BoolValue:
    operand: FieldRef | VarRef | Literal


Expr = Compare | Logical | Negation | SearchIn | Lambda | BoolValue


class _FilterParser:
    def __init__(self, text: str, schema: IndexSchema) -> None:
        self.text = text
        self.schema = schema
        self.toks = _lex(text, "$filter")
        self.i = 0
        self.vars: dict[str, str] = {}
        self.clauses = 0
        self.lambdas = 0  # lambdas open around the current position

    def error(self, message: str) -> Exception:
        return invalid_expression(message, "$filter")

    def peek(self, offset: int = 0) -> Tok | None:
        j = self.i + offset
        return self.toks[j] if j < len(self.toks) else None

    def take(self) -> Tok:
        tok = self.peek()
        if tok is None:
            raise self.error(f"Unexpected end of the filter expression '{self.text}'.")
        self.i += 1
        return tok

    def expect(self, text: str) -> None:
        tok = self.take()
        if tok.text != text:
            raise self.error(f"Expected '{text}' at position {tok.pos} but found '{tok.text}'.")

    def keyword(self, word: str) -> bool:
        tok = self.peek()
        if tok is not None and tok.kind == "name" and tok.text == word:
            self.i += 1
            return True
        return False

    def parse(self) -> Expr:
        if not self.toks:
            raise self.error("The filter expression is empty.")
        expr = self.or_expr(0)
        tok = self.peek()
        if tok is not None:
            raise self.error(f"Syntax error at position {tok.pos}: unexpected '{tok.text}'.")
        return expr

    def too_deep(self, why: str) -> Exception:
        return self.error(f"Recursion depth exceeded allowed limit. {why}")

    def clause(self) -> None:
        """Counts one predicate (comparison, search.in, boolean, lambda) against the limit."""
        self.clauses += 1
        if self.clauses > MAX_CLAUSES:
            raise self.too_deep(
                f"The filter has more than {MAX_CLAUSES} clauses; to test one field against many values, "
                "use search.in(field, 'value1,value2,...') instead of a chain of 'or'."
            )

    @staticmethod
    def logical(op: str, operands: list[Expr]) -> Expr:
        """One n-ary node for a chain: a nested node of the same op (from parentheses) is spliced in."""
        if len(operands) == 1:
            return operands[0]
        flat: list[Expr] = []
        for operand in operands:
            if isinstance(operand, Logical) and operand.op == op:
                flat.extend(operand.children)
            else:
                flat.append(operand)
        return Logical(op, tuple(flat))

    def or_expr(self, depth: int) -> Expr:
        operands = [self.and_expr(depth)]
        while self.keyword("or"):
            operands.append(self.and_expr(depth))
        return self.logical("or", operands)

    def and_expr(self, depth: int) -> Expr:
        operands = [self.unary(depth)]
        while self.keyword("and"):
            operands.append(self.unary(depth))
        return self.logical("and", operands)

    def unary(self, depth: int) -> Expr:
        if depth > MAX_DEPTH:
            raise self.too_deep(
                f"The filter nests parentheses, 'not' and any/all more than {MAX_DEPTH} levels deep; "
                "write it with fewer levels."
            )
        if self.keyword("not"):
            child = self.unary(depth + 1)
            # not not x is x: every compiled predicate is 0 or 1, never NULL.
            return child.child if isinstance(child, Negation) else Negation(child)
        tok = self.peek()
        if tok is not None and tok.text == "(":
            self.i += 1
            inner = self.or_expr(depth + 1)
            self.expect(")")
            return self.maybe_compare(inner)
        return self.comparison(depth)

    def maybe_compare(self, inner: Expr) -> Expr:
        tok = self.peek()
        if tok is not None and tok.kind == "name" and tok.text in COMPARISONS:
            raise self.error(f"A comparison needs a field or a constant on each side (position {tok.pos}).")
        return inner

    def operand(self, depth: int) -> FieldRef | VarRef | Literal | Expr:
        tok = self.take()
        if tok.kind == "string":
            return Literal(tok.text[1:-1].replace("''", "'"), "string")
        if tok.kind == "number":
            return Literal(_number(tok.text), "number")
        if tok.kind == "datetime":
            return Literal(tok.text, "datetime")
        if tok.kind != "name":
            raise self.error(f"Syntax error at position {tok.pos}: unexpected '{tok.text}'.")
        if tok.text in ("true", "false"):
            return Literal(tok.text == "true", "bool")
        if tok.text == "null":
            return Literal(None, "null")
        if tok.text == "search.in":
            return self.search_in()
        if tok.text in ("search.ismatch", "search.ismatchscoring", "search.score", "geo.distance"):
            raise self.error(
                f"The function '{tok.text}' is not supported in $filter by the local search service."
            )
        if tok.text in self.vars:
            return VarRef(tok.text, self.vars[tok.text])
        field = self.schema.field(tok.text)
        if field is None:
            raise self.error(f"Could not find a property named '{tok.text}' on type 'search.document'.")
        nxt = self.peek()
        if nxt is not None and nxt.text == "/":
            self.i += 1
            return self.lambda_(field, depth)
        if not field.filterable:
            raise self.error(
                f"The field '{field.name}' is not filterable; only filterable fields can be used in filters."
            )
        return FieldRef(field)

    def lambda_(self, field: Field, depth: int) -> Lambda:
        kind = self.take()
        if kind.text not in ("any", "all"):
            raise self.error(f"Expected 'any' or 'all' after '{field.name}/' at position {kind.pos}.")
        if not field.is_collection:
            raise self.error(
                f"'{kind.text}' can only be used on a collection field; '{field.name}' is not one."
            )
        if not field.filterable:
            raise self.error(
                f"The field '{field.name}' is not filterable; only filterable fields can be used in filters."
            )
        self.expect("(")
        nxt = self.peek()
        if nxt is not None and nxt.text == ")":
            self.i += 1
            if kind.text == "all":
                raise self.error("'all' requires a lambda expression.")
            return Lambda(field, "any", None, None)
        var = self.take()
        if var.kind != "name" or var.text in self.vars:
            raise self.error(f"Expected a range variable name at position {var.pos}.")
        self.expect(":")
        if self.lambdas >= MAX_LAMBDA_DEPTH:
            raise self.too_deep(f"The filter nests any/all more than {MAX_LAMBDA_DEPTH} levels deep.")
        self.vars[var.text] = field.element_type
        self.lambdas += 1
        try:
            body = self.or_expr(depth + 1)
        finally:
            del self.vars[var.text]
            self.lambdas -= 1
        self.expect(")")
        return Lambda(field, kind.text, var.text, body)

    def search_in(self) -> SearchIn:
        self.expect("(")
        target = self.operand(0)
        if not isinstance(target, FieldRef | VarRef):
            raise self.error("The first argument of search.in must be a field or a range variable.")
        if (target.field.type if isinstance(target, FieldRef) else target.element_type) != "Edm.String":
            raise self.error("search.in can only be used with string fields.")
        self.expect(",")
        values = self.take()
        if values.kind != "string":
            raise self.error("The second argument of search.in must be a string literal.")
        delimiters = " ,"
        nxt = self.peek()
        if nxt is not None and nxt.text == ",":
            self.i += 1
            delim_tok = self.take()
            if delim_tok.kind != "string" or len(delim_tok.text) < 3:
                raise self.error(
                    "The third argument of search.in must be a non-empty string literal of delimiters."
                )
            delimiters = delim_tok.text[1:-1].replace("''", "'")
        self.expect(")")
        raw = values.text[1:-1].replace("''", "'")
        parts = re.split("[" + re.escape(delimiters) + "]", raw)
        return SearchIn(target, tuple(p for p in parts if p != ""))

    def comparison(self, depth: int) -> Expr:
        self.clause()
        left = self.operand(depth)
        if isinstance(left, Lambda | SearchIn):
            return left
        if isinstance(
            left, Compare | Logical | Negation | BoolValue
        ):  # pragma: no cover - operand() never returns these
            return left
        tok = self.peek()
        if tok is None or tok.kind != "name" or tok.text not in COMPARISONS:
            if isinstance(left, Literal) and left.kind == "bool" or _type_of(left) == "Edm.Boolean":
                return BoolValue(left)
            where = f"position {tok.pos}" if tok else "the end"
            raise self.error(f"Expected a comparison operator (eq, ne, gt, ge, lt, le) at {where}.")
        self.i += 1
        right = self.operand(depth)
        if not isinstance(right, FieldRef | VarRef | Literal):
            raise self.error("The right side of a comparison must be a field or a constant.")
        _check_types(tok.text, left, right, self.error)
        return Compare(tok.text, left, right)


def _number(text: str) -> int | float:
    """An integer literal within Int64 stays exact; a larger one (or any with a fraction/exponent) is a double,
    as OData reads it, so it compares as a number instead of overflowing SQLite's 64-bit integers."""
    if re.search(r"[.eE]", text) or len(text.lstrip("-")) > 19:
        return float(text)
    value = int(text)
    return value if -_INT64 <= value < _INT64 else float(value)


def _type_of(operand: FieldRef | VarRef | Literal) -> str | None:
    if isinstance(operand, FieldRef):
        return operand.field.type
    if isinstance(operand, VarRef):
        return operand.element_type
    return None


_LITERAL_TYPES = {
    "string": {"Edm.String"},
    "number": {"Edm.Int32", "Edm.Int64", "Edm.Double"},
    "bool": {"Edm.Boolean"},
    "datetime": {"Edm.DateTimeOffset"},
}


def _check_types(op: str, left: Any, right: Any, error: Any) -> None:
    if isinstance(left, Literal) and isinstance(right, Literal):
        raise error("A comparison must have a field or range variable on at least one side.")
    if isinstance(left, FieldRef | VarRef) and isinstance(right, FieldRef | VarRef):
        raise error("Comparing two fields is not supported; compare a field with a constant.")
    ref, lit = (left, right) if isinstance(right, Literal) else (right, left)
    ftype = _type_of(ref) or ""
    if ftype.startswith("Collection("):
        raise error(
            f"The collection field '{ref.field.name}' cannot be compared directly; use any() or all()."
        )
    if lit.kind == "null":
        if op not in ("eq", "ne"):
            raise error("null can only be compared with eq or ne.")
        return
    if ftype not in _LITERAL_TYPES[lit.kind]:
        raise error(f"The operand types {ftype} and {lit.kind} are not compatible for '{op}'.")
    if ftype == "Edm.Boolean" and op not in ("eq", "ne"):
        raise error("Boolean values can only be compared with eq or ne.")


def parse_filter(text: str, schema: IndexSchema) -> Expr:
    if len(text) > MAX_FILTER_LENGTH:
        raise invalid_expression(
            f"The filter expression is too long: {len(text):,} characters, at most {MAX_FILTER_LENGTH:,} are "
            "allowed.",
            "$filter",
        )
    return _FilterParser(text, schema).parse()


# ---- compilation to SQL ----------------------------------------------------------------------------------------


def _path(field: Field) -> str:
    return "$." + json.dumps(field.name)


class SqlBuilder:
    """Emits fixed SQL fragments with ``?`` placeholders and collects their parameters in order."""

    def __init__(self, body_column: str) -> None:
        self.body = body_column
        self.params: list[Any] = []

    def param(self, value: Any) -> str:
        self.params.append(value)
        return "?"

    def value_of(self, operand: FieldRef | VarRef | Literal, var_sql: dict[str, str]) -> str:
        if isinstance(operand, FieldRef):
            return f"json_extract({self.body}, {self.param(_path(operand.field))})"
        if isinstance(operand, VarRef):
            return var_sql[operand.name]
        value = operand.value
        if isinstance(value, bool):
            value = 1 if value else 0
        return self.param(value)

    def compile(self, expr: Expr, var_sql: dict[str, str] | None = None) -> str:
        """A SQL expression that is 1 or 0, never NULL (so NOT behaves as OData's not)."""
        var_sql = var_sql or {}
        if isinstance(expr, Logical):
            joiner = " AND " if expr.op == "and" else " OR "
            # The most nested operand first: SQLite's parser then holds no pending "x AND" while it descends.
            # The operands are pure 0/1 predicates, so their order does not change the result.
            children = sorted(expr.children, key=_nesting, reverse=True)
            return group_sql([self.compile(child, var_sql) for child in children], joiner)
        if isinstance(expr, Negation):
            # No parentheses of its own (they cost SQLite parser stack): the operand is always self-delimited
            # (a group, a call, EXISTS (…)), and NOT binds tighter than AND/OR.
            return "NOT " + self.compile(expr.child, var_sql)
        if isinstance(expr, BoolValue):
            return f"COALESCE({self.value_of(expr.operand, var_sql)} = 1, 0)"
        if isinstance(expr, Compare):
            left = self.value_of(expr.left, var_sql)
            right = self.value_of(expr.right, var_sql)
            if (
                isinstance(expr.right, Literal)
                and expr.right.kind == "null"
                or (isinstance(expr.left, Literal) and expr.left.kind == "null")
            ):
                return f"({left} IS {right})" if expr.op == "eq" else f"({left} IS NOT {right})"
            if expr.op == "ne":
                return f"({left} IS NOT {right})"
            return f"COALESCE({left} {COMPARISONS[expr.op]} {right}, 0)"
        if isinstance(expr, SearchIn):
            target = self.value_of(expr.target, var_sql)
            values = self.param(json.dumps(list(expr.values)))
            return f"COALESCE({target} IN (SELECT value FROM json_each({values})), 0)"
        if isinstance(expr, Lambda):
            path = self.param(_path(expr.field))
            alias = f"je{len(var_sql)}"
            source = f"json_each({self.body}, {path})"
            # Only array elements have a key: json_each yields one key-less row for a null collection, which
            # any()/all() must see as empty.
            element = f"{alias}.key IS NOT NULL"
            if expr.body is None:
                return f"EXISTS (SELECT 1 FROM {source} {alias} WHERE {element})"
            inner_vars = {**var_sql, expr.var or "": f"{alias}.value"}
            # The body's parameters must follow the path parameter, in text order; the body comes first in the
            # WHERE so that no pending "x AND" sits on SQLite's parser stack while it descends.
            body = self.compile(expr.body, inner_vars)
            if expr.kind == "any":
                return f"EXISTS (SELECT 1 FROM {source} {alias} WHERE {body} AND {element})"
            return f"(NOT EXISTS (SELECT 1 FROM {source} {alias} WHERE NOT {body} AND {element}))"
        raise AssertionError(f"unknown filter node {expr!r}")  # pragma: no cover


def _nesting(expr: Expr) -> int:
    """How deeply ``expr`` nests (compiled SQL nests about as much)."""
    if isinstance(expr, Logical):
        return 1 + max(_nesting(child) for child in expr.children)
    if isinstance(expr, Negation):
        return 1 + _nesting(expr.child)
    if isinstance(expr, Lambda):
        return 3 + (_nesting(expr.body) if expr.body is not None else 0)
    return 0


# ---- $orderby and $select --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderItem:
    field: Field | None  # None: search.score()
    descending: bool


def _named_field(schema: IndexSchema, name: str, parameter: str) -> Field:
    """The index field ``name`` names in ``parameter``; an unknown name is the service's invalid-expression error."""
    field = schema.field(name)
    if field is None:
        raise invalid_expression(
            f"Could not find a property named '{name}' on type 'search.document'.", parameter
        )
    return field


def parse_orderby(text: str | None, schema: IndexSchema) -> list[OrderItem]:
    if text is None or not text.strip():
        return []
    items: list[OrderItem] = []
    for clause in text.split(","):
        parts = clause.split()
        if not parts or len(parts) > 2 or (len(parts) == 2 and parts[1].lower() not in ("asc", "desc")):
            raise invalid_expression(f"Syntax error in the order-by clause '{clause.strip()}'.", "$orderby")
        descending = len(parts) == 2 and parts[1].lower() == "desc"
        if parts[0] == "search.score()":
            items.append(OrderItem(None, descending))
            continue
        field = _named_field(schema, parts[0], "$orderby")
        if not field.sortable:
            raise invalid_expression(
                f"The field '{field.name}' is not sortable; only sortable fields can be used in $orderby.",
                "$orderby",
            )
        items.append(OrderItem(field, descending))
    if len(items) > 32:
        raise invalid_expression("$orderby can have at most 32 clauses.", "$orderby")
    return items


def parse_select(text: str | None, schema: IndexSchema) -> list[Field]:
    """The fields to return: retrievable ones, all of them for None / ``*``."""
    if text is None or not text.strip() or text.strip() == "*":
        return [f for f in schema.fields if f.retrievable]
    out: list[Field] = []
    for name in (n.strip() for n in text.split(",")):
        field = _named_field(schema, name, "$select")
        if field.retrievable and field not in out:
            out.append(field)
    return out


def parse_search_fields(text: str | None, schema: IndexSchema) -> list[Field]:
    if text is None or not text.strip():
        return schema.searchable
    out: list[Field] = []
    for name in (n.strip() for n in text.split(",")):
        field = _named_field(schema, name, "searchFields")
        if not field.searchable:
            raise invalid_expression(
                f"The field '{name}' in the search field list is not searchable.", "searchFields"
            )
        if field not in out:
            out.append(field)
    return out
