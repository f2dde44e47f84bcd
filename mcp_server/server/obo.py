"""The on-behalf-of exchange (MSAL ConfidentialClientApplication) and its cache.

MSAL 1.39's ``acquire_token_on_behalf_of`` never reads its token cache, and a shared MSAL cache could only be
searched by account. So the exchange runs against a cache that keeps nothing, and OBO tokens are cached here, in
memory, under the *validated* token's (tenant, object id, scope) — never looked up by "the first account" — until
five minutes before they expire, with one exchange in flight per key.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import jwt as pyjwt
import msal
import requests
from pydantic import SecretStr

from mcp_server import aadsts
from mcp_server.server.config import ServerConfig

CacheStatus = Literal["hit", "miss", "joined"]
# (tid, oid, scope, sign-in strength) of the validated caller token: a token obtained with MFA (or for an
# authentication context) never serves a caller whose token lacks it (Conditional Access, docs/server.md).
CacheKey = tuple[str, ...]


# Entra codes the tool names in plain words (docs/identity.md, Errors; docs/server.md, The tool).
class OboError(Exception):
    """A failed exchange: a readable cause, the AADSTS code when Entra gave one. Never holds the token."""

    def __init__(
        self, cause: str, *, aadsts: str | None = None, error: str | None = None, claims: str | None = None
    ) -> None:
        super().__init__(cause)
        self.cause = cause
        self.aadsts = aadsts
        self.error = error
        self.claims = claims  # Entra's claims challenge (JSON text) with interaction_required, as sent

    @property
    def challenge(self) -> bool:
        """Conditional Access wants the user to do more (MFA, an authentication context): only the client can."""
        return self.error == "interaction_required" and bool(self.claims)

    def __str__(self) -> str:
        code = f" ({self.aadsts})" if self.aadsts else ""
        return f"On-behalf-of token exchange failed{code}: {self.cause}"


@dataclass(frozen=True)
class OboToken:
    access_token: SecretStr = field(repr=False)
    expires_at: float
    claims: dict[str, Any]


class _DiscardingCache(msal.TokenCache):
    """MSAL stores every response in its cache; this server caches OBO tokens itself, keyed per user."""

    def add(self, event: dict[str, Any], now: Any = None) -> None:
        return None


class OboExchanger:
    """Runs MSAL's OBO grant. Blocking: call it off the event loop."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self._app: msal.ConfidentialClientApplication | None = None
        self._http: requests.Session | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            if self._http is not None:
                self._http.close()
            self._http, self._app = None, None

    def _session(self) -> requests.Session:
        session = requests.Session()
        if self.config.ca_cert is not None:
            # Trust exactly the local CA; the machine's REQUESTS_CA_BUNDLE would override verify otherwise.
            session.trust_env = False
            session.verify = str(self.config.ca_cert)
        return session

    def app(self) -> msal.ConfidentialClientApplication:
        """The MSAL app, created once (its constructor fetches the authority's discovery document)."""
        with self._lock:
            if self._app is None:
                self._http = self._http or self._session()
                try:
                    self._app = msal.ConfidentialClientApplication(
                        self.config.api_client_id,
                        client_credential=self.config.api_client_secret.get_secret_value(),
                        authority=self.config.authority,
                        http_client=self._http,
                        instance_discovery=False,
                        token_cache=_DiscardingCache(),
                    )
                except requests.RequestException as exc:
                    raise OboError(
                        f"the identity platform at {self.config.authority} is unreachable ({type(exc).__name__})"
                    ) from exc
                except (
                    ValueError
                ) as exc:  # MSAL refuses the authority (e.g. not https, bad discovery document)
                    raise OboError(f"the authority {self.config.authority} cannot be used: {exc}") from exc
            return self._app

    def exchange(self, assertion: str, scope: str | None = None) -> OboToken:
        """OBO for ``scope`` (default: the search scope; the Graph scope for group memberships)."""
        app = self.app()
        try:
            result = app.acquire_token_on_behalf_of(assertion, [scope or self.config.obo_scope])
        except requests.RequestException as exc:
            raise OboError(f"the identity platform is unreachable ({type(exc).__name__})") from exc
        if "access_token" not in result:
            raise _error_from(result)
        token = result["access_token"]
        claims = pyjwt.decode(token, options={"verify_signature": False})
        expires_in = float(result.get("expires_in") or 0)
        expires_at = float(claims.get("exp") or time.time() + expires_in)
        return OboToken(access_token=SecretStr(token), expires_at=expires_at, claims=claims)


def _error_from(result: dict[str, Any]) -> OboError:
    codes = result.get("error_codes") or []
    code = int(codes[0]) if codes else None
    description = str(result.get("error_description") or result.get("error") or "unknown error")
    first_line = description.split("\r\n")[0].split("\n")[0]
    if first_line.startswith("AADSTS") and ":" in first_line:
        first_line = first_line.split(":", 1)[1].strip()
    claims = result.get("claims")
    known = aadsts.lookup(code)  # one table of meanings for the server, the console and doctor
    # A claims challenge keeps Entra's own words: they say what the policy asks the user to do.
    cause = known.meaning if known is not None and not claims else first_line
    return OboError(
        cause,
        aadsts=f"AADSTS{code}" if code else None,
        error=result.get("error"),
        claims=claims if isinstance(claims, str) and claims else None,
    )


def sign_in_strength(claims: dict[str, Any]) -> str:
    """How the caller signed in, as far as Conditional Access cares: ``amr`` and ``acrs`` (sorted), for the key."""
    parts = []
    for name in ("amr", "acrs"):
        value = claims.get(name) or []
        values = [value] if isinstance(value, str) else [str(v) for v in value]
        parts.append(f"{name}={','.join(sorted(values))}")
    return ";".join(parts)


@dataclass
class _Entry:
    token: OboToken
    reuse_until: float


class OboCache:
    """OBO tokens per (tid, oid, scope), reused until ``margin`` seconds before expiry; one exchange per key at a
    time (the others wait for it). Failures are shared with the waiters of that flight, never cached."""

    def __init__(self, margin: float = 300.0, max_entries: int = 10_000) -> None:
        self.margin = margin
        self.max_entries = max_entries
        self._entries: dict[CacheKey, _Entry] = {}
        self._flights: dict[CacheKey, asyncio.Future[OboToken]] = {}
        self._lock = threading.Lock()

    def peek(self, key: CacheKey) -> OboToken | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if time.time() >= entry.reuse_until:
                del self._entries[key]
                return None
            return entry.token

    def _store(self, key: CacheKey, token: OboToken) -> None:
        with self._lock:
            if len(self._entries) >= self.max_entries:
                now = time.time()
                for stale in [k for k, e in self._entries.items() if now >= e.reuse_until]:
                    del self._entries[stale]
                if len(self._entries) >= self.max_entries:
                    self._entries.pop(next(iter(self._entries)))
            self._entries[key] = _Entry(token, token.expires_at - self.margin)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    async def health(self) -> dict[str, Any]:
        return {"ready": True, "backend": "memory", "degraded": False}

    async def aclose(self) -> None:
        return None

    async def get(
        self, key: CacheKey, exchange: Callable[[], Awaitable[OboToken]]
    ) -> tuple[OboToken, CacheStatus]:
        cached = self.peek(key)
        if cached is not None:
            return cached, "hit"
        flight = self._flights.get(key)
        if flight is not None:
            return await asyncio.shield(flight), "joined"
        future: asyncio.Future[OboToken] = asyncio.get_running_loop().create_future()
        self._flights[key] = future
        try:
            token = await exchange()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: no "never retrieved" warning when nobody waited
            raise
        finally:
            self._flights.pop(key, None)
        self._store(key, token)
        future.set_result(token)
        return token, "miss"
