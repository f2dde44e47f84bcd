"""The authorization-code flow with PKCE (docs/identity.md, Browser sign-in): redirect-URI rules for public
clients, pending sign-in requests, and single-use, short-lived codes bound to their S256 challenge."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

from mcp_server.localcloud.identity.errors import EntraError
from mcp_server.localcloud.identity.policies import ClaimsRequest
from mcp_server.localcloud.identity.scopes import ScopeRequest
from mcp_server.localcloud.tenant import AppRegistration, User

CODE_LIFETIME = 300.0  # Entra's codes live about 10 minutes; shorter here, still ample for a redirect
REQUEST_LIFETIME = 900.0  # a sign-in page left open this long must be started again
MAX_PENDING = 10_000  # pending sign-ins and codes kept; the oldest are forgotten first
LOOPBACK = ("localhost", "127.0.0.1")
MAX_REDIRECT_URI = 2048


def redirect_uri_allowed(requested: str, client: AppRegistration) -> bool:
    """Whether ``requested`` matches one of the client's redirect URIs. Loopback URIs (``http://localhost``,
    ``http://127.0.0.1``) match with any port, as Entra allows for public clients; everything else must be equal.
    User info, fragments, other schemes and look-alike hosts (``localhost.evil.com``) never match."""
    if (
        not requested
        or len(requested) > MAX_REDIRECT_URI
        or any(c.isspace() or ord(c) < 32 for c in requested)
    ):
        return False
    try:
        parts = urlsplit(requested)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return False
    if "@" in parts.netloc or parts.fragment or "\\" in requested:
        return False
    for registered in client.redirect_uris:
        reg = urlsplit(registered)
        if reg.hostname in LOOPBACK and reg.scheme == "http":
            if (parts.scheme, parts.hostname, parts.path or "/", parts.query) == (
                "http",
                reg.hostname,
                reg.path or "/",
                reg.query,
            ) and _host_literal(parts.netloc) == reg.hostname:
                return True
        elif requested == registered:
            return True
    return False


def _host_literal(netloc: str) -> str:
    """The host exactly as written (no case folding, no trailing dot): ``LOCALHOST.`` is not ``localhost``."""
    return netloc.rsplit(":", 1)[0] if netloc.count(":") == 1 else netloc


def s256(verifier: str) -> str:
    return (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("utf-8", "replace")).digest())
        .rstrip(b"=")
        .decode()
    )


@dataclass
class SignInRequest:
    """An authorize request that passed validation, waiting for the person on the login page."""

    client: AppRegistration
    redirect_uri: str
    scope: ScopeRequest
    state: str
    code_challenge: str
    nonce: str
    claims: ClaimsRequest
    expires_at: float
    response_mode: str = "query"  # or form_post: how the answer goes back to the redirect URI


@dataclass
class AuthorizationCode:
    client_id: str
    redirect_uri: str
    code_challenge: str
    scope: ScopeRequest
    user: User
    amr: tuple[str, ...]
    acrs: tuple[str, ...]
    nonce: str
    expires_at: float
    redeemed: bool = False


class AuthCodeStore:
    """Pending sign-in requests (by a random id the page carries) and issued codes (by their SHA-256)."""

    def __init__(self, code_lifetime: float = CODE_LIFETIME) -> None:
        self.code_lifetime = code_lifetime
        self._lock = threading.Lock()
        self._requests: OrderedDict[str, SignInRequest] = OrderedDict()
        self._codes: OrderedDict[str, AuthorizationCode] = OrderedDict()

    def add_request(self, request: SignInRequest) -> str:
        request_id = secrets.token_urlsafe(24)
        with self._lock:
            self._requests[request_id] = request
            _trim(self._requests)
        return request_id

    def request(self, request_id: str) -> SignInRequest | None:
        with self._lock:
            found = self._requests.get(request_id)
        return found if found is not None and found.expires_at > time.time() else None

    def drop(self, request_id: str) -> None:
        with self._lock:
            self._requests.pop(request_id, None)

    def issue(self, request_id: str, user: User, amr: tuple[str, ...], acrs: tuple[str, ...]) -> str | None:
        """A code for the pending request (which is then gone: one code per sign-in), or None if it is gone."""
        with self._lock:
            request = self._requests.pop(request_id, None)
            if request is None or request.expires_at <= time.time():
                return None
            code = "1.AQ" + secrets.token_urlsafe(64)
            self._codes[_key(code)] = AuthorizationCode(
                request.client.client_id,
                request.redirect_uri,
                request.code_challenge,
                request.scope,
                user,
                amr,
                acrs,
                request.nonce,
                time.time() + self.code_lifetime,
            )
            _trim(self._codes)
        return code

    def redeem(self, code: str, client_id: str, redirect_uri: str, verifier: str) -> AuthorizationCode:
        """The code's grant, used up; EntraError as Entra answers a bad redemption otherwise."""
        with self._lock:  # look up and mark used under one lock: two redemptions cannot both win
            grant = self._codes.get(_key(code))
            if grant is None or grant.client_id.lower() != client_id.lower():
                raise EntraError(
                    "invalid_grant",
                    9002313,
                    "Invalid request. Request is malformed or invalid. "
                    "The authorization code is not one this platform issued to this client.",
                )
            if grant.redeemed:
                raise EntraError(
                    "invalid_grant",
                    54005,
                    "OAuth2 Authorization code was already redeemed, please "
                    "retry with a new valid code or use an existing refresh token.",
                )
            grant.redeemed = True  # any redemption attempt uses the code up, a failed one too
        if grant.expires_at <= time.time():
            raise EntraError(
                "invalid_grant",
                70008,
                "The provided authorization code or refresh token has expired "
                "due to inactivity. Send a new interactive authorization request for this user and "
                "resource.",
            )
        if redirect_uri != grant.redirect_uri:
            raise EntraError(
                "invalid_grant",
                500112,
                f"The reply address '{redirect_uri[:200]}' does not match "
                "the reply address provided when requesting the authorization code.",
            )
        if not hmac.compare_digest(s256(verifier).encode(), grant.code_challenge.encode()):
            raise EntraError(
                "invalid_grant",
                501481,
                "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
            )
        return grant


_Entry = TypeVar("_Entry")


def _key(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def _trim(entries: OrderedDict[str, _Entry]) -> None:
    while len(entries) > MAX_PENDING:
        entries.popitem(last=False)
