"""The one masker: JWT-shaped strings, bearer tokens, API keys, ``secret=value`` pairs and known secret values.

Everything that writes text a person or a file may keep — session databases, exports, events, traces, error
messages — passes it through :func:`redact` (free text) or :func:`redact_value` (nested dicts/lists, which also
masks values under secret-looking keys). Light to import (standard library and pydantic only), so the UI and the
session store can use it without pulling in the agent runtime.

Known secrets (the local stack's client secret and search API key, device-code user codes) are values no pattern
can recognise; whoever learns one calls :func:`remember_secret` and every later redaction masks it.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from typing import Any

from pydantic import SecretStr

MASK = "***"

# Anything shaped like a JWS/JWT (the secret scan in the tests uses the same shape, so nothing slips between).
JWT = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]*")
_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{8,}")
_API_KEY = re.compile(r"\b(?:sk|pk|rk)-[A-Za-z0-9_-]{12,}")
_SECRET_FIELD = re.compile(
    r"(?i)(token|secret|password|api[_-]?key|authorization|assertion|client_assertion|user_code|cookie)"
)
_SECRET_VALUE = re.compile(
    r"""(?ix)(["']?(?:access_token|refresh_token|id_token|client_secret|api[_-]?key|password|assertion|user_code)["']?\s*[:=]\s*["']?)[^"'\s,&}]+"""
)
# Keys that name a count or a usage figure, not a secret (input_tokens, hits_count, ...).
_NOT_SECRET_SUFFIXES = ("_count", "_tokens", "tokens")
_MIN_KNOWN_LENGTH = 6  # shorter values would mask ordinary words

_known: set[SecretStr] = set()
_known_lock = threading.Lock()


def remember_secret(value: str | SecretStr | None) -> None:
    """Mask ``value`` wherever it appears from now on (process-wide; values held as ``SecretStr``)."""
    if value is None:
        return
    raw = value.get_secret_value() if isinstance(value, SecretStr) else value
    if len(raw) >= _MIN_KNOWN_LENGTH:
        with _known_lock:
            _known.add(SecretStr(raw))


def forget_secrets() -> None:
    """Drop every remembered value (tests)."""
    with _known_lock:
        _known.clear()


def _known_values(extra: Iterable[str | SecretStr | None]) -> list[str]:
    with _known_lock:
        values = [s.get_secret_value() for s in _known]
    for item in extra:
        if item is None:
            continue
        raw = item.get_secret_value() if isinstance(item, SecretStr) else item
        if len(raw) >= _MIN_KNOWN_LENGTH:
            values.append(raw)
    # Longest first, so a value containing another is masked whole.
    return sorted(set(values), key=len, reverse=True)


def redact(text: str, known: Iterable[str | SecretStr | None] = ()) -> str:
    """``text`` with every token-shaped string and every known secret replaced by ``***``."""
    for value in _known_values(known):
        text = text.replace(value, MASK)
    text = JWT.sub(MASK, text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", text)
    text = _API_KEY.sub(MASK, text)
    return _SECRET_VALUE.sub(lambda m: m.group(1) + MASK, text)


def _secret_key(key: object) -> bool:
    return isinstance(key, str) and bool(_SECRET_FIELD.search(key)) and not key.endswith(_NOT_SECRET_SUFFIXES)


def redact_value(value: Any, known: Iterable[str | SecretStr | None] = ()) -> Any:
    """A deep copy of ``value`` (dicts, lists, tuples, strings) with secrets masked, by key and by shape."""
    known_list = list(known)
    return _redact_value(value, known_list)


def _redact_value(value: Any, known: list[str | SecretStr | None]) -> Any:
    if isinstance(value, SecretStr):
        return MASK
    if isinstance(value, str):
        return redact(value, known)
    if isinstance(value, dict):
        return {
            key: MASK if _secret_key(key) and isinstance(item, str) and item else _redact_value(item, known)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_redact_value(item, known) for item in value]
    return value


def contains_secret(text: str, known: Iterable[str | SecretStr | None] = ()) -> bool:
    """True when ``text`` holds a JWT-shaped string or a known secret (for checks and tests)."""
    return bool(JWT.search(text)) or any(value in text for value in _known_values(known))
