"""A standard-analyzer-like tokenizer: lowercase, split on whitespace, punctuation and hyphens.

Documents are stored in FTS5 already tokenized this way (tokens joined by spaces), and queries go through the same
function, so a query term always meets the exact tokens that were indexed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def analyzed_text(value: object) -> str:
    """The indexed form of a searchable field value (a string, or a collection of strings)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return " ".join(tokenize(value))
    if isinstance(value, Iterable):
        return " ".join(" ".join(tokenize(v)) for v in value if isinstance(v, str))
    return ""
