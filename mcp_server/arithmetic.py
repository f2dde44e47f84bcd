"""Bounded arithmetic: the calculator's evaluator (``ast``, never ``eval``) with limits on the input length, the
number of operators, the nesting of parentheses and the size of every number — intermediate results included,
estimated *before* a power or a product is computed — so no expression costs more than a few milliseconds.

Standard library only, on purpose: this file is also the calculator's worker process (``python -I -S
arithmetic.py``, started by ``mcp_server.workers``). The worker reads one JSON request per line on stdin and
answers one JSON line on stdout, so even an evaluation that escaped these limits would burn a child process the
server kills at its time limit, never the server's own interpreter (all local services share one GIL).
"""

from __future__ import annotations

import ast
import json
import math
import operator
import sys
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

Number = int | float

_OPS: dict[type, Callable[..., Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}
# Written forms people use for the operators Python spells differently.
_SPELLINGS = {"×": "*", "÷": "/", "−": "-", "^": "**"}
WORKER_MEMORY_BYTES = 512 * 1024 * 1024  # address space of a worker process (where the OS can enforce it)


@dataclass(frozen=True)
class Limits:
    """What one expression may cost. Every refusal names the limit it hit."""

    max_chars: int = 1000  # characters of the expression
    max_operators: int = 100  # + - * / // % ** and unary signs
    max_depth: int = 30  # parentheses nested inside each other
    max_digits: int = 300  # digits of any integer, intermediate results included


class CalculationRefused(ValueError):
    """An expression over one of the limits: refused before the costly step runs. ``code`` says which limit."""

    def __init__(self, code: str, message: str, limit: dict[str, float] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.limit = limit or {}

    def body(self) -> dict[str, Any]:
        """The JSON error body the calculator answers with (HTTP 400)."""
        return {"error": str(self), "code": self.code, "limit": self.limit}


def evaluate(expression: str, limits: Limits | None = None) -> Number:
    """Evaluate + - * / // % ** and parentheses on numbers; anything else is a ``ValueError`` saying what is
    wrong, and anything over ``limits`` is a ``CalculationRefused`` naming the limit."""
    limits = limits or Limits()
    text = _normalized(expression, limits)
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"not an arithmetic expression: {expression.strip()[:80]!r}") from exc
    except (RecursionError, MemoryError) as exc:  # the parser's own stack: nesting far beyond our limits
        raise _too_deep(limits) from exc
    operators = sum(isinstance(n, ast.BinOp | ast.UnaryOp) for n in ast.walk(tree))
    if operators > limits.max_operators:
        raise CalculationRefused(
            "too_many_operators",
            f"the expression has {operators} operators; the limit is {limits.max_operators}. "
            "Split the calculation into smaller steps.",
            {"max_operators": limits.max_operators},
        )
    value = _Evaluator(text, limits).walk(tree.body)
    # A whole float shows as an integer only where floats hold every integer exactly (1e308 is not 10**308).
    exact = isinstance(value, float) and value.is_integer() and abs(value) <= 2**53
    return int(value) if exact else value


def _normalized(expression: str, limits: Limits) -> str:
    """The expression in Python's spelling, after the checks that need no parsing (length, characters, nesting)."""
    if len(expression) > limits.max_chars:
        raise CalculationRefused(
            "expression_too_long",
            f"the expression has {len(expression)} characters; the limit is {limits.max_chars}.",
            {"max_chars": limits.max_chars},
        )
    text = expression.replace(",", "").replace(" x ", " * ")
    for written, python in _SPELLINGS.items():
        text = text.replace(written, python)
    for position, char in enumerate(text):
        if not (char.isascii() and (char.isprintable() or char in " \t")):
            name = unicodedata.name(char, "a control character")
            raise ValueError(
                f"only ASCII digits 0-9, operators and parentheses may be used: found {char!r} "
                f"(U+{ord(char):04X} {name}) at position {position}"
            )
    depth = deepest = 0
    for char in text:
        depth += (char == "(") - (char == ")")
        deepest = max(deepest, depth)
    if deepest > limits.max_depth:
        raise _too_deep(limits, deepest)
    return text.strip()


def _too_deep(limits: Limits, depth: int | None = None) -> CalculationRefused:
    nested = f"parentheses nest {depth} deep" if depth is not None else "the expression nests too deeply"
    return CalculationRefused(
        "too_deeply_nested", f"{nested}; the limit is {limits.max_depth}.", {"max_depth": limits.max_depth}
    )


class _Evaluator:
    """Walks the tree bottom-up; checks each result's size as soon as it exists, and a power's or a product's
    size before computing it (the one step whose cost grows with the size of its result)."""

    def __init__(self, text: str, limits: Limits) -> None:
        self.text = text
        self.limits = limits

    def walk(self, node: ast.AST) -> Number:
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            return self.checked(node, node.value)
        if isinstance(node, ast.UnaryOp) and type(node.op) in _OPS:
            return self.checked(node, _OPS[type(node.op)](self.walk(node.operand)))
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            left, right = self.walk(node.left), self.walk(node.right)
            self.estimate(node, left, right)
            try:
                value = _OPS[type(node.op)](left, right)
            except ZeroDivisionError as exc:
                raise ValueError(f"division by zero in {self.source(node)}") from exc
            except OverflowError as exc:
                raise self.too_large(
                    node, "is beyond the range of a floating-point number (about 1.8e308)"
                ) from exc
            return self.checked(node, value)
        raise ValueError(
            f"not allowed in a calculation: {self.source(node)!r} (only numbers and + - * / // % **)"
        )

    def estimate(self, node: ast.BinOp, left: Number, right: Number) -> None:
        """Refuse an integer power or product whose result would be over the digit limit, before computing it."""
        if not (isinstance(left, int) and isinstance(right, int)):
            return  # a float result costs the same whatever its size; ``checked`` rejects inf
        if isinstance(node.op, ast.Pow) and right > 0 and abs(left) > 1:
            digits = right * math.log10(abs(left))
        elif isinstance(node.op, ast.Mult) and left and right:
            digits = math.log10(abs(left)) + math.log10(abs(right))
        else:
            return
        if digits >= self.limits.max_digits + 1:  # certainly over (the exact check follows the computation)
            raise self.too_large(node, f"would have about {_approx(digits)} digits")

    def checked(self, node: ast.AST, value: Any) -> Number:
        if isinstance(value, complex):
            raise ValueError(f"{self.source(node)} has no real value")
        if isinstance(value, float) and not math.isfinite(value):
            raise self.too_large(node, "is beyond the range of a floating-point number (about 1.8e308)")
        if isinstance(value, int) and _digits(value) > self.limits.max_digits:
            raise self.too_large(node, f"has {_digits(value):,} digits")
        return value

    def too_large(self, node: ast.AST, what: str) -> CalculationRefused:
        return CalculationRefused(
            "number_too_large",
            f"{self.source(node)} {what}; numbers are limited to {self.limits.max_digits} digits. "
            "Use smaller numbers or exponents.",
            {"max_digits": self.limits.max_digits},
        )

    def source(self, node: ast.AST) -> str:
        segment = ast.get_source_segment(self.text, node) or ast.dump(node)
        return segment if len(segment) <= 60 else segment[:57] + "..."


def _digits(value: int) -> int:
    """Decimal digits of ``value``: exact where printing it is cheap, else from its bit length (never 10**n)."""
    bits = abs(value).bit_length()
    if bits <= 14_000:  # under Python's 4300-digit int-to-str limit
        return len(str(abs(value)))
    return int(bits * math.log10(2)) + 1


def _approx(digits: float) -> str:
    return f"{int(digits) + 1:,}" if digits < 1e15 else f"{digits:.2e}"


# -- the worker process ---------------------------------------------------------------------------------------


def answer(request: dict[str, Any]) -> dict[str, Any]:
    """One worker reply: the value, or the refusal (code, message, limit), or the reason it is not arithmetic."""
    try:
        limits = Limits(**request.get("limits", {}))
        return {"ok": True, "value": evaluate(str(request["expression"]), limits)}
    except CalculationRefused as exc:
        return {"ok": False, **exc.body()}
    except MemoryError:
        return {
            "ok": False,
            "error": "the calculation needs more memory than a worker has",
            "code": "memory_limit",
            "limit": {"memory_bytes": WORKER_MEMORY_BYTES},
        }
    except (ValueError, TypeError, KeyError) as exc:
        return {"ok": False, "error": str(exc), "code": None, "limit": {}}


def serve(stdin: BinaryIO, stdout: BinaryIO) -> None:
    """Say ready, then answer requests until stdin closes (the server stopped, or died: the worker never outlives
    it). The greeting keeps interpreter start-up out of the first request's time limit."""
    stdout.write(b'{"ready": true}\n')
    stdout.flush()
    for line in stdin:
        try:
            reply = answer(json.loads(line))
            data = json.dumps(reply)
        except ValueError as exc:  # a malformed request, or a value JSON cannot carry
            data = json.dumps({"ok": False, "error": f"bad request: {exc}", "code": None, "limit": {}})
        stdout.write(data.encode() + b"\n")
        stdout.flush()


def _cap_memory() -> None:
    try:
        import resource  # deferred: POSIX only; elsewhere the time limit alone holds

        resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY_BYTES, WORKER_MEMORY_BYTES))
    except (ImportError, ValueError, OSError):  # not on this OS: the time limit still holds
        pass


if __name__ == "__main__":
    _cap_memory()
    serve(sys.stdin.buffer, sys.stdout.buffer)
