"""Counted nouns that agree with their number: "1 document", "2 documents", "0 documents"."""

from __future__ import annotations

_IRREGULAR = {"person": "people", "child": "children", "entry": "entries", "policy": "policies"}
_SINGULAR = {plural: singular for singular, plural in _IRREGULAR.items()}


def plural_of(noun: str) -> str:
    """The plural of an English noun, for the nouns this project counts."""
    if noun in _IRREGULAR:
        return _IRREGULAR[noun]
    if noun.endswith("y") and noun[-2:-1] not in ("a", "e", "i", "o", "u"):
        return noun[:-1] + "ies"
    if noun.endswith(("s", "x", "z", "ch", "sh")):
        return noun + "es"
    return noun + "s"


def singular_of(noun: str) -> str:
    """The singular of a plural noun (a JSON key such as "documents" or "entries"); other words unchanged."""
    if noun in _SINGULAR:
        return _SINGULAR[noun]
    if noun.endswith("ies") and len(noun) > 4:
        return noun[:-3] + "y"
    if noun.endswith(("sses", "xes", "ches", "shes")):
        return noun[:-2]
    if noun.endswith("s") and not noun.endswith(("ss", "us", "is")):
        return noun[:-1]
    return noun


def plural(count: int, noun: str) -> str:
    """``count`` and ``noun`` (singular) in agreement: plural(1, "document") == "1 document"."""
    return f"{count} {noun if count == 1 else plural_of(noun)}"


def counted(count: int, plural_noun: str) -> str:
    """Like :func:`plural`, from the plural form (what JSON keys and headings use): counted(1, "documents")."""
    return plural(count, singular_of(plural_noun))
