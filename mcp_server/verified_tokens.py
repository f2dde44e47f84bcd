"""A bounded memory of tokens whose signature was already verified, so the same user's next request skips the
RSA check and the JSON decoding: kept by SHA-256 (never the token itself), each entry for a limited time.

Only what a successful verification produced goes in; a failure is never remembered. Whoever reads an entry still
applies every time-dependent check (expiry, not-before) itself: the entry says "this exact string was signed by
that key", nothing more. Used by the MCP server's verifier and the local search service's validator.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Generic, TypeVar

V = TypeVar("V")

# Entries kept (the least recently used goes first): one per active user, with room to spare.
VERIFIED_TOKENS = 4096
VERIFIED_SECONDS = 60.0  # an entry is used at most this long; then the token is verified in full again


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class VerifiedTokens(Generic[V]):
    """``digest → (value, use until)``, thread-safe (the search service validates on worker threads)."""

    def __init__(self, size: int = VERIFIED_TOKENS, seconds: float = VERIFIED_SECONDS) -> None:
        self.size = size
        self.seconds = seconds
        self._entries: OrderedDict[bytes, tuple[V, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, digest: bytes, now: float) -> V | None:
        """The value stored for ``digest``, or None when there is none or its time is over (then it is dropped)."""
        with self._lock:
            entry = self._entries.get(digest)
            if entry is None:
                return None
            if now >= entry[1]:
                del self._entries[digest]
                return None
            self._entries.move_to_end(digest)
            return entry[0]

    def put(self, digest: bytes, value: V, until: float, now: float) -> None:
        """Remember ``value`` until ``until`` (the token's own end) or ``seconds`` from ``now``, whichever is first."""
        with self._lock:
            self._entries[digest] = (value, min(until, now + self.seconds))
            self._entries.move_to_end(digest)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
