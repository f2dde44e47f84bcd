"""Tool arguments from what the user wrote: fixed patterns for a parameter's name and type (a city after "in", a
number for a numeric parameter, an arithmetic expression, the user's own words for a query). Deterministic."""

from __future__ import annotations

import re
from typing import Any

from console.core.agents.offline_arithmetic import arithmetic_in_words
from console.core.agents.offline_words import QUERY_FILLER, STOP, TOKEN, humanize, same, stem

_NUMBER = re.compile(r"(?<![\w.])[-+]?\$?\d[\d,]*(?:\.\d+)?\s*[kK]?\b")
_MATH = re.compile(r"[-+(]*\s*\d[\d.,]*\s*(?:[-+*/x×÷^%]\s*[-+(]*\s*\d[\d.,]*\s*\)*\s*)+")
_CAPS = r"[A-Z][\w'’-]*(?:[ -](?:[A-Z][\w'’-]*|de|la|le|du|von|van))*"
# Words that end a place name written in lower case ("rain in new york tomorrow").
_NOT_PLACE = frozenset(["today", "tomorrow", "tonight", "now", "please", "right", "this", "next", "week",
                        "weekend", "morning", "afternoon", "evening", "currently", "later", "soon"])  # fmt: skip

# Parameter-name concepts: how a value for such a parameter shows up in what people write. The sets are
# generic; _CONCEPT_PATTERNS (parameters whose name contains "name", "address" or "income") covers exactly
# run_simulation's parameters: the one place this module holds a shipped tool's vocabulary.
LOCATION_PARAMS = {"city", "location", "place", "town", "region", "country", "where"}
TEXT_PARAMS = {"input", "question", "prompt", "request", "message", "text", "task"}
QUERY_PARAMS = {"query", "search", "q", "keywords", "terms", "topic"}
EXPRESSION_PARAMS = {"expression", "formula", "calculation", "equation", "math", "expr"}
_CONCEPT_PATTERNS: dict[str, list[str]] = {
    "name": [rf"\b(?i:i am|i'm|im|call me|this is|name's)\s+(?P<v>{_CAPS})"],
    "address": [
        r"\b(?:i live|living|located|reside|residing|i'm based|based)\s+(?:at|in|on)\s+(?P<v>[^.;!?\n]+)"
    ],
    "income": [r"\b(?:i earn|i make|earning|earn|make|salary of|income of)\s+(?P<v>\$?\d[\d,.]*\s*[kK]?)"],
}


def clean(value: str) -> str:
    return value.strip().strip("\"'`").rstrip(" .,;!?").strip()


def parse_number(text: str) -> float | None:
    match = _NUMBER.search(text)
    if not match:
        return None
    raw = match.group(0).replace("$", "").replace(",", "").replace(" ", "")
    scale = 1000.0 if raw[-1:] in "kK" else 1.0
    try:
        return float(raw.rstrip("kK")) * scale
    except ValueError:
        return None


def number_value(value: float, schema: dict[str, Any]) -> int | float:
    return int(value) if schema.get("type") == "integer" or value.is_integer() else value


def _stop_lookahead(others: list[str]) -> str:
    alts = "|".join(re.escape(humanize(o)) for o in others if o)
    follow = rf"(?:,?\s+and)?\s*,?\s*(?:my\s+)?(?:{alts})\s*(?:is\b|was\b|:|=)" if alts else r"(?!)"
    return rf"(?=\s*(?:{follow}|[.;!?\n]|$))"


def is_expression_param(param: str) -> bool:
    key = param.lower()
    return key in EXPRESSION_PARAMS or any(key.endswith(s) for s in EXPRESSION_PARAMS)


def expression_in(message: str) -> str | None:
    """The arithmetic in ``message``, in symbols ("12 times 7" -> "12 * 7"), or None."""
    match = _MATH.search(arithmetic_in_words(message))
    return re.sub(r"\s+", " ", match.group(0)).strip() if match else None


def place_in(message: str) -> str | None:
    """A place: capitalised words after "in"/"for"/..., else the last capitalised words, else lower-case words
    after "in" at the end of the message ("rain tomorrow in new york" -> "New York")."""
    match = re.search(rf"\b(?:in|for|at|of|near|around)\s+(?:the\s+)?(?P<v>{_CAPS})", message)
    if match:
        return clean(match.group("v"))
    tail = [m.group(0) for m in re.finditer(_CAPS, message)
            if m.start() > 0 and not message[: m.start()].rstrip().endswith((".", "?", "!"))]  # fmt: skip
    if tail:
        return clean(tail[-1])
    match = re.search(
        r"\b(?:in|for|near|around)\s+(?P<v>[a-z][a-z'-]*(?:\s+[a-z][a-z'-]*){0,3})\s*[?.!]*\s*$", message
    )
    if not match:
        return None
    place: list[str] = []
    for word in match.group("v").split():
        if word in _NOT_PLACE or (word in STOP and not place):
            break
        place.append(word)
    return " ".join(w.capitalize() for w in place) or None


def extract(param: str, schema: dict[str, Any], message: str, others: list[str], vocabulary: set[str]) -> Any:
    """A value for ``param`` found in ``message`` with evidence, or None."""
    ptype = schema.get("type")
    if isinstance(ptype, list):
        ptype = next((t for t in ptype if t != "null"), None)
    label = humanize(param).lower()
    stop = _stop_lookahead(others)
    # "<param> is <value>" — the most direct evidence, for any parameter.
    explicit = re.search(
        rf"\b{re.escape(label)}\s*(?:is|:|=|was|of)\s+(?P<v>.+?){stop}", message, re.I | re.S
    )
    if "enum" in schema:
        lowered = message.lower()
        return next((v for v in schema["enum"] if str(v).lower() in lowered), None)
    if ptype in ("number", "integer"):
        for candidate in (explicit.group("v") if explicit else None, *_concept(param, message)):
            number = parse_number(candidate) if candidate else None
            if number is not None:
                return number_value(number, schema)
        return None
    if ptype not in (None, "string"):
        return None
    if explicit:
        return clean(explicit.group("v"))
    key = param.lower()
    if is_expression_param(param):
        return expression_in(message)
    if key in LOCATION_PARAMS:
        return place_in(message)
    if key in QUERY_PARAMS:
        rest = [
            w for w in TOKEN.findall(message)
            if w.lower() not in STOP and w.lower() not in QUERY_FILLER and not any(same(stem(w), v) for v in vocabulary)
        ]  # fmt: skip
        return " ".join(rest) if rest else None
    if key in TEXT_PARAMS:
        return message.strip() or None
    found = _concept(param, message)
    return clean(found[0]) if found else None


def _concept(param: str, message: str) -> list[str]:
    values: list[str] = []
    for concept, patterns in _CONCEPT_PATTERNS.items():
        if concept in param.lower():
            for pattern in patterns:
                values += [
                    m.group("v") for m in re.finditer(pattern, message, re.I if concept != "name" else 0)
                ]
    return values


def bare_value(param: str, schema: dict[str, Any], reply: str) -> Any:
    """The user's whole reply as the value of the one parameter the model just asked for."""
    if schema.get("type") in ("number", "integer"):
        number = parse_number(reply)
        return number_value(number, schema) if number is not None else None
    value = clean(reply)
    return value or None


def optional(schema: dict[str, Any]) -> bool:
    ptype = schema.get("type")
    return (
        "default" in schema
        or (isinstance(ptype, list) and "null" in ptype)
        or any(isinstance(s, dict) and s.get("type") == "null" for s in schema.get("anyOf", []))
    )
