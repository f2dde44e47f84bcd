"""Defences of the device-login page's form POST: refuse posts from other sites, throttle wrong codes.

* Cross-site: a page on another origin must not approve or decline codes through a person's browser. A browser
  names the posting page in ``Origin`` and, in ``Sec-Fetch-Site``, how it relates to us; a post naming another
  origin, or marked ``cross-site``/``same-site``, is refused. Our own form posts to itself, so it is always
  ``same-origin``. Clients that send neither header (``requests``, curl) are not browsers and keep working.
* Guessing: each remote address may send ``burst`` unknown codes at once, then one more every ``refill_seconds``
  (a token bucket). Past that, every POST from that address is refused with 429 until the bucket refills, so a
  guesser cannot learn which codes exist; other addresses are unaffected.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

WRONG_CODE_BURST = 10  # unknown codes an address may send at once (typos included)
WRONG_CODE_REFILL_SECONDS = 6.0  # then one more every 6 s: 10 guesses a minute
MAX_TRACKED_ADDRESSES = 4096  # above this, addresses whose bucket is full again are forgotten
REFUSED_FETCH_SITES = ("cross-site", "same-site")  # same-site: another port or subdomain, still not this page
_DEFAULT_PORTS = {"https": 443, "http": 80}


def _origin_key(origin: str) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` of an origin, or None for ``null`` and anything unparsable."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname or port is None:
        return None
    return parts.scheme.lower(), parts.hostname.lower(), port


def own_origins(base_url: str, hosts: Iterable[str]) -> set[tuple[str, str, int]]:
    """The platform's origins: its scheme and port under each of its host names (127.0.0.1 and localhost)."""
    key = _origin_key(base_url)
    if key is None:
        raise ValueError(f"not an origin: {base_url!r}")
    scheme, _, port = key
    return {(scheme, host.lower(), port) for host in hosts}


def cross_site_refusal(
    origin: str | None, fetch_site: str | None, allowed: set[tuple[str, str, int]]
) -> str | None:
    """Why a form POST with these headers is refused as coming from another site, or None to accept it."""
    if origin is not None and _origin_key(origin) not in allowed:
        return (
            f"This form was sent from another site (Origin: {origin[:100]}), not from this sign-in page. "
            "Nothing was approved or declined. If you started a sign-in, enter your code on this page."
        )
    if fetch_site is not None and fetch_site.strip().lower() in REFUSED_FETCH_SITES:
        return (
            f"This form was sent from another site (Sec-Fetch-Site: {fetch_site.strip()[:20]}), not from this "
            "sign-in page. Nothing was approved or declined. If you started a sign-in, enter your code on "
            "this page."
        )
    return None


class WrongCodeThrottle:
    """A token bucket of unknown user codes per remote address."""

    def __init__(
        self,
        burst: int = WRONG_CODE_BURST,
        refill_seconds: float = WRONG_CODE_REFILL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if burst < 1 or refill_seconds <= 0:
            raise ValueError(f"burst must be >= 1 and refill_seconds > 0 (got {burst}, {refill_seconds}).")
        self.burst = burst
        self.refill_seconds = refill_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # address -> (tokens, when counted)

    def retry_after(self, address: str) -> int | None:
        """Seconds ``address`` must wait before its next POST counts, or None when it may post now."""
        with self._lock:
            tokens = self._tokens(address, self._clock())
        if tokens >= 1:
            return None
        return max(1, math.ceil((1 - tokens) * self.refill_seconds))

    def wrong_code(self, address: str) -> None:
        """Spend one of ``address``'s guesses."""
        with self._lock:
            now = self._clock()
            self._buckets[address] = (max(0.0, self._tokens(address, now) - 1), now)
            if len(self._buckets) > MAX_TRACKED_ADDRESSES:
                self._shrink(now)

    def _tokens(self, address: str, now: float) -> float:
        tokens, since = self._buckets.get(address, (float(self.burst), now))
        return min(float(self.burst), tokens + (now - since) / self.refill_seconds)

    def _shrink(self, now: float) -> None:
        """Forget addresses whose bucket is full again; if that is not enough (a guesser rotating addresses),
        the longest-known ones too. Down to half the limit, so this scan runs at most once per half-limit."""
        for address in [a for a in self._buckets if self._tokens(a, now) >= self.burst]:
            del self._buckets[address]
        excess = len(self._buckets) - MAX_TRACKED_ADDRESSES // 2
        for address in list(itertools.islice(self._buckets, max(0, excess))):
            del self._buckets[address]
