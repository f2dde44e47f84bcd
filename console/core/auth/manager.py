"""Sign-in for the whole console: accounts, the current account, fresh access tokens, device flow, sign-out.

``TokenStore`` is the keyring-backed cache alone (no network: listing and removing accounts works while the
stack is down). ``AuthManager`` adds the MSAL app for one authority (local identity platform or Entra ID).
Blocking calls (MSAL HTTP) must not run on an event loop that serves others: the TUI calls them through
``asyncio.to_thread`` (or the ``*_async`` helpers here).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import msal
import requests
from keyring.backend import KeyringBackend
from pydantic import SecretStr

from console.core.auth.accounts import (
    CurrentAccountPointer,
    MemoryAccountPointer,
    SignedInAccount,
    account_from_entries,
)
from console.core.auth.browser_flow import DEFAULT_TIMEOUT, BrowserFlow, Opener
from console.core.auth.cache_lock import CacheLock, ProcessLock
from console.core.auth.chunked_store import ChunkedKeyringStore
from console.core.auth.device_flow import DeviceFlow
from console.core.auth.device_page import complete_device_page
from console.core.auth.errors import DeviceFlowError, SignInError
from console.core.auth.keyring_backend import KeyringChoice, choose_keyring
from console.core.auth.login_page import complete_login_page
from console.core.auth.msal_app import METADATA_FILE, build_public_client, http_session, msal_session
from console.core.auth.token_cache import CacheGuard, CacheStore, KeyringTokenCache, MemoryStore
from console.core.claims import decode_claims, decode_header, unverified_expiry
from console.core.endpoints import Endpoints, resolve_endpoints
from console.core.errors import NotSignedIn
from console.core.settings import Settings, load_settings
from mcp_server.errors import UserError
from mcp_server.paths import data_dir

KEYRING_SERVICE = "obo-console/msal-token-cache"
LOCK_FILE = "token-cache.lock"

_ID_TOKEN = msal.TokenCache.CredentialType.ID_TOKEN


@dataclass(frozen=True)
class AccessToken:
    """A fresh access token for one account. ``token`` is masked; show ``claims()`` instead."""

    token: SecretStr
    account: SignedInAccount
    scopes: tuple[str, ...]
    expires_on: int  # epoch seconds
    source: str  # "cache" (silent, no network) or "identity_provider"

    def claims(self) -> dict[str, Any]:
        return decode_claims(self.token)

    def header(self) -> dict[str, Any]:
        return decode_header(self.token)

    def seconds_left(self, now: float | None = None) -> int:
        return self.expires_on - int(time.time() if now is None else now)


class TokenStore:
    """MSAL's cache in the keyring (see docs/auth.md), and account bookkeeping that needs no network. With
    ``token_cache = "memory"`` (a web tab) the cache and the current account live in this process only: no
    keyring is chosen or touched, no lock file is made, and ``backend`` is not used."""

    def __init__(self, settings: Settings | None = None, *, backend: KeyringBackend | None = None) -> None:
        self.settings = settings or load_settings()
        self.choice: KeyringChoice | None = None  # None: the cache is in memory
        self.store: CacheStore
        self.lock: CacheGuard
        if self.settings.token_cache == "memory":
            self.store, self.lock = MemoryStore(), ProcessLock()
            self.pointer: CurrentAccountPointer = MemoryAccountPointer()
        else:
            self.choice = choose_keyring(
                mode=self.settings.mode,
                requested=self.settings.keyring_backend,
                allow_file=self.settings.allow_file_keyring,
                override=backend,
            )
            self.lock = CacheLock(data_dir() / LOCK_FILE, timeout=self.settings.token_cache_lock_timeout)
            self.store = ChunkedKeyringStore(
                self.choice.backend, KEYRING_SERVICE, self.settings.keyring_chunk_size
            )
            self.pointer = CurrentAccountPointer()
        self._cache: KeyringTokenCache | None = None

    @property
    def description(self) -> str:
        """Where the cache is kept: the keyring backend, or this process's memory."""
        return self.choice.description if self.choice else "memory (OBO_CONSOLE_TOKEN_CACHE=memory)"

    @property
    def warning(self) -> str | None:
        """Set when tokens go to a plain file: show it to the person (stderr, or a notice in the TUI)."""
        return self.choice.warning if self.choice else None

    @property
    def cache(self) -> KeyringTokenCache:
        if self._cache is None:
            self._cache = KeyringTokenCache(self.store, self.lock)
        return self._cache

    def accounts(
        self, *, environment: str | None = None, tenant_id: str | None = None
    ) -> list[SignedInAccount]:
        entries = self.cache.accounts()
        id_tokens = list(self.cache.search(_ID_TOKEN))
        found = [
            account_from_entries(entry, id_tokens)
            for entry in entries
            if (environment is None or entry.get("environment") == environment)
            and (tenant_id is None or entry.get("realm") == tenant_id)
        ]
        return sorted(found, key=lambda a: (a.username.lower(), a.environment))

    def sign_out(self, login: str) -> list[SignedInAccount]:
        """Remove every account named ``login`` (username or part before @) with all its tokens."""
        matches = [a for a in self.accounts() if a.matches(login)]
        if not matches:
            known = ", ".join(a.username for a in self.accounts()) or "nobody is signed in"
            raise UserError(f"No signed-in account {login!r}.", hint=f"Signed in: {known}.")
        ids = {a.home_account_id for a in matches}
        self.cache.remove_home_accounts(ids)
        self.pointer.forget(ids)
        return matches

    def sign_out_all(self) -> list[SignedInAccount]:
        """Remove every account and wipe the cache from the keyring (also resets a corrupt cache)."""
        try:
            gone = self.accounts()
        except UserError:
            gone = []  # unreadable cache: wiping is exactly what is needed
        cache = self._cache or KeyringTokenCache(self.store, self.lock, load=False)
        cache.wipe()
        self.pointer.forget(None)
        return gone


class AuthManager:
    """Sign-in against one authority with the console's public client."""

    def __init__(
        self,
        endpoints: Endpoints,
        *,
        settings: Settings | None = None,
        backend: KeyringBackend | None = None,
        tokens: TokenStore | None = None,
    ) -> None:
        self.endpoints = endpoints
        self.tokens = tokens or TokenStore(settings, backend=backend)
        self.environment = (urlparse(endpoints.authority).hostname or "").lower()
        # MSAL's own account scope (host without port, tenant): survives a local stack restart on another port.
        self._pointer_key = f"{self.environment}/{endpoints.tenant_id}"
        self._app: msal.PublicClientApplication | None = None
        self._app_lock = threading.Lock()
        self.last_mfa_number: int | None = (
            None  # the number the last ``sign_in_as`` confirmed on the MFA step
        )
        # Kept, so close() can end its keep-alive connections; remembers discovery documents for offline use.
        self._session = msal_session(endpoints, data_dir() / METADATA_FILE)

    def close(self) -> None:
        """Close the HTTP connections to the identity platform (the manager can still be used afterwards)."""
        self._session.close()

    def __enter__(self) -> AuthManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @classmethod
    def from_settings(
        cls, settings: Settings | None = None, *, backend: KeyringBackend | None = None
    ) -> AuthManager:
        """Endpoints from the running local stack (local mode) or settings (Azure mode)."""
        settings = settings or load_settings()
        return cls(resolve_endpoints(settings), settings=settings, backend=backend)

    @property
    def warning(self) -> str | None:
        return self.tokens.warning

    @property
    def identity_unreachable(self) -> str | None:
        """Set when the identity platform could not be reached and cached tokens are used: say so to the person."""
        reason = self._session.unreachable
        if reason is None:
            return None
        return f"the identity platform at {self.endpoints.authority} is unreachable ({reason})"

    @property
    def app(self) -> msal.PublicClientApplication:
        with self._app_lock:
            if self._app is None:
                self._app = build_public_client(self.endpoints, self.tokens.cache, self._session)
            return self._app

    # -- accounts ----------------------------------------------------------------------------------
    def accounts(self) -> list[SignedInAccount]:
        """Accounts signed in to this authority (tenant), from the keyring; no network."""
        return self.tokens.accounts(environment=self.environment, tenant_id=self.endpoints.tenant_id)

    def find_account(self, login: str) -> SignedInAccount:
        for account in self.accounts():
            if account.matches(login):
                return account
        known = ", ".join(a.username for a in self.accounts()) or "nobody"
        raise NotSignedIn(f"{login!r} is not signed in (signed in: {known}).")

    def current_account(self) -> SignedInAccount | None:
        """The account last signed in or switched to; the only account if there is exactly one."""
        accounts = self.accounts()
        wanted = self.tokens.pointer.get(self._pointer_key)
        for account in accounts:
            if account.home_account_id == wanted:
                return account
        return accounts[0] if len(accounts) == 1 else None

    def switch_account(self, login: str) -> SignedInAccount:
        account = self.find_account(login)
        self.tokens.pointer.set(self._pointer_key, account.home_account_id)
        return account

    def require_account(self, login: str | None = None) -> SignedInAccount:
        if login:
            return self.find_account(login)
        account = self.current_account()
        if account is None:
            others = self.accounts()
            if others:
                names = ", ".join(a.username for a in others)
                raise UserError(
                    f"Several accounts are signed in ({names}).", hint="Choose one with --user NAME."
                )
            raise NotSignedIn()
        return account

    # -- tokens ------------------------------------------------------------------------------------
    def acquire_token(
        self, account: SignedInAccount | None = None, *, force_refresh: bool = False
    ) -> AccessToken:
        """A valid access token for the API scope, silently: from the cache, or refreshed by MSAL."""
        account = account or self.require_account()
        msal_account = self._msal_account(account)
        try:
            result = self.app.acquire_token_silent_with_error(
                [self.endpoints.api_scope], account=msal_account, force_refresh=force_refresh
            )
        except (
            requests.RequestException
        ) as exc:  # MSAL re-raises network errors when no cached token is usable
            self._session.unreachable = (
                self._session.unreachable or f"connection failed ({type(exc).__name__})"
            )
            raise SignInError(
                f"The identity platform at {self.endpoints.authority} is unreachable ({type(exc).__name__}) and "
                f"{account.username}'s cached token has expired (or expires within 5 minutes).",
                hint="Try again once the identity platform answers (local mode: is `obo-console server` running?).",
            ) from exc
        if not result:
            raise NotSignedIn(f"No usable token for {account.username}: sign in again.")
        if "access_token" not in result:
            description = str(result.get("error_description", "")).splitlines()
            raise NotSignedIn(
                f"{account.username} must sign in again ({result.get('error')}"
                + (f": {description[0]}" if description else "")
                + ")."
            )
        token = SecretStr(result["access_token"])
        exp = unverified_expiry(token)
        expires_on = int(exp) if exp is not None else int(time.time()) + int(result.get("expires_in", 0))
        return AccessToken(
            token=token,
            account=account,
            scopes=tuple(str(result.get("scope", self.endpoints.api_scope)).split()),
            expires_on=expires_on,
            source=str(result.get("token_source", "cache")),
        )

    async def acquire_token_async(
        self, account: SignedInAccount | None = None, *, force_refresh: bool = False
    ) -> AccessToken:
        return await asyncio.to_thread(self.acquire_token, account, force_refresh=force_refresh)

    def _msal_account(self, account: SignedInAccount) -> dict[str, Any]:
        for entry in self.tokens.cache.accounts():
            if (
                entry.get("home_account_id") == account.home_account_id
                and entry.get("environment") == self.environment
            ):
                return entry
        raise NotSignedIn(f"{account.username} is no longer signed in.")

    # -- device flow -------------------------------------------------------------------------------
    def start_device_flow(self, claims_challenge: str | None = None) -> DeviceFlow:
        """Ask for a device code (one HTTP call). Polling starts when you wait on the returned flow.
        ``claims_challenge``: the claims JSON a Conditional Access challenge asked for (the page then asks for
        the second step, and the token carries ``amr`` ``mfa``)."""
        flow = self.app.initiate_device_flow(
            scopes=[self.endpoints.api_scope], claims_challenge=claims_challenge
        )
        if "user_code" not in flow:
            raise DeviceFlowError(
                str(flow.get("error", "no_user_code")), str(flow.get("error_description", ""))
            )
        return DeviceFlow(self.app, flow, self._signed_in)

    async def start_device_flow_async(self) -> DeviceFlow:
        return await asyncio.to_thread(self.start_device_flow)

    def _signed_in(self, result: dict[str, Any]) -> SignedInAccount:
        oid = _account_oid(result)
        for account in self.accounts():
            if oid and account.oid == oid:
                self.tokens.pointer.set(self._pointer_key, account.home_account_id)
                return account
        raise SignInError(
            "The identity platform issued a token but no account (its response lacks client_info/id_token)."
        )

    def sign_in_as(
        self,
        login: str,
        *,
        action: str = "approve",
        timeout: float = 120.0,
        claims_challenge: str | None = None,
    ) -> SignedInAccount:
        """Local mode: run the device flow (with ``claims_challenge``, if given) and complete its page as demo
        user ``login``, as a browser would — its multi-factor step too, only when the page asks for it
        (``last_mfa_number`` then holds the number confirmed, for the caller to show)."""
        if self.endpoints.mode != "local":
            raise UserError(
                "--as works only in local mode (the demo tenant).",
                hint="In Azure mode run `obo-console login` and complete the page in a browser.",
            )
        user = self.endpoints.demo_user(login)
        flow = self.start_device_flow(claims_challenge)
        self.last_mfa_number = None
        try:
            with http_session(self.endpoints) as browser:  # a separate "browser", as a person would use
                self.last_mfa_number = complete_device_page(
                    browser,
                    flow.prompt.verification_uri,
                    flow.prompt.user_code,
                    user.username,
                    action,
                    mfa="if_asked",
                )
            return flow.result(timeout)
        finally:
            if not flow.done():
                flow.cancel()
            flow.join(5)

    # -- browser sign-in ---------------------------------------------------------------------------
    def start_browser_flow(
        self,
        *,
        as_user: str | None = None,
        opener: Opener | None = None,
        announce: Callable[[str], None] | None = None,
        claims_challenge: str | None = None,
        login_hint: str | None = None,
        timeout: int = DEFAULT_TIMEOUT,
    ) -> BrowserFlow:
        """MSAL's interactive flow (system browser, loopback redirect, PKCE); starts when you wait on it.
        ``as_user`` (local mode): the demo user completes the page instead of a person, MFA step included.
        ``opener``: who opens the page instead of the system browser (an embedded or test browser).
        ``login_hint``: the account the page signs in (a step-up signs the same account in again)."""
        if as_user is not None:
            if self.endpoints.mode != "local":
                raise UserError(
                    "--as works only in local mode (the demo tenant).",
                    hint="In Azure mode run `obo-console login --browser` and complete the page in the browser.",
                )
            username = self.endpoints.demo_user(as_user).username
            login_hint = username
            opener = self._demo_person(username)
        return BrowserFlow(
            self.app,
            [self.endpoints.api_scope],
            self._signed_in,
            opener=opener,
            announce=announce,
            login_hint=login_hint,
            claims_challenge=claims_challenge,
            timeout=timeout,
        )

    def _demo_person(self, username: str) -> Callable[[str], None]:
        def complete(auth_uri: str) -> None:
            with http_session(self.endpoints) as browser:  # a separate "browser", as a person would use
                complete_login_page(browser, auth_uri, username)

        return complete

    # -- sign-out ----------------------------------------------------------------------------------
    def sign_out(self, account: SignedInAccount) -> None:
        self.tokens.cache.remove_home_accounts({account.home_account_id})
        self.tokens.pointer.forget({account.home_account_id})


def _account_oid(result: dict[str, Any]) -> str:
    """The id MSAL filed the new account under (its ``local_account_id``: the id token's oid, else sub), from the
    id token claims MSAL decoded into the result; accounts() is already limited to this tenant."""
    claims = result.get("id_token_claims") or {}
    return str(claims.get("oid", claims.get("sub", "")))
