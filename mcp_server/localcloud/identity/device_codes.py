"""Pending device-code sign-ins (RFC 8628 as Entra answers it): created by ``/devicecode``, approved or declined
on the device-login page, redeemed by polling ``/token``."""

from __future__ import annotations

import heapq
import math
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Literal

import mcp_server.localcloud.identity.errors as errors
from mcp_server.localcloud.identity.policies import ClaimsRequest
from mcp_server.localcloud.identity.scopes import ScopeRequest
from mcp_server.localcloud.tenant import User

USER_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # no I/O: easy to read and type
USER_CODE_LENGTH = 9
KEEP_AFTER_EXPIRY = 600.0  # answer expired_token (not bad_verification_code) for a while after expiry
POLL_TOLERANCE = 0.9  # a poll sooner than 90% of the interval after the previous one is "too fast"
# At most this many codes per client within one code lifetime (15 min): far above what people and test runs need,
# low enough that a flooding client is refused (429) long before the store grows large.
MAX_CODES_PER_CLIENT = 1000

Status = Literal["pending", "approved", "declined", "redeemed"]


@dataclass
class DeviceAuthorization:
    device_code: str = field(repr=False)
    user_code: str = field(repr=False)
    client_id: str
    scope: ScopeRequest
    expires_at: float
    interval: int
    status: Status = "pending"
    user: User | None = None
    last_poll: float | None = None
    claims: ClaimsRequest = field(default_factory=ClaimsRequest)  # what the client's `claims` parameter asked
    amr: tuple[str, ...] = ("pwd",)  # how the person signed in on the page
    acrs: tuple[str, ...] = ()


class PageError(Exception):
    """Why the device-login page cannot complete a code: shown to the person, with an AADSTS code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class UnknownUserCode(PageError):
    """A code no sign-in has: what a guess usually gets (the page throttles these per address)."""


def normalize_user_code(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


class DeviceCodeStore:
    """Codes indexed by device code and by user code (dict lookups); every operation touches only the codes it
    names, plus the oldest entries of two expiry heaps. No operation scans the live codes."""

    def __init__(
        self, *, lifetime: int = 900, interval: int = 1, max_per_client: int = MAX_CODES_PER_CLIENT
    ) -> None:
        if max_per_client < 1:
            raise ValueError(f"max_per_client must be at least 1, not {max_per_client}.")
        self.lifetime = lifetime
        self.interval = interval
        self.max_per_client = max_per_client
        self._lock = threading.Lock()
        self._by_device: dict[str, DeviceAuthorization] = {}
        self._by_user: dict[str, DeviceAuthorization] = {}
        self._expiry: list[
            tuple[float, str]
        ] = []  # heap of (expires_at, device_code): what to forget, oldest first
        self._issued: dict[
            str, list[tuple[float, str]]
        ] = {}  # per client (lower case): heap of unexpired codes

    def create(
        self, client_id: str, scope: ScopeRequest, claims: ClaimsRequest | None = None
    ) -> DeviceAuthorization:
        """A new pending sign-in, or EntraError 429 (AADSTS50196) when the client has its quota of codes."""
        now = time.time()
        with self._lock:
            self._purge(now)
            issued = self._unexpired(client_id.lower(), now)
            if len(issued) >= self.max_per_client:
                wait = max(1, math.ceil(issued[0][0] - now))  # until the client's oldest code expires
                raise errors.throttled(
                    f"Too many device codes: this application requested {self.max_per_client} in the last "
                    f"{self.lifetime} seconds, the limit of the local identity platform. Complete or let expire "
                    "the sign-ins it started before starting more.",
                    wait,
                )
            user_code = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_LENGTH))
            while user_code in self._by_user:
                user_code = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_LENGTH))
            auth = DeviceAuthorization(
                device_code="DAQABIQEAAAD--" + secrets.token_urlsafe(96),
                user_code=user_code,
                client_id=client_id,
                scope=scope,
                expires_at=now + self.lifetime,
                interval=self.interval,
                claims=claims or ClaimsRequest(),
            )
            self._by_device[auth.device_code] = auth
            self._by_user[user_code] = auth
            heapq.heappush(self._expiry, (auth.expires_at, auth.device_code))
            heapq.heappush(issued, (auth.expires_at, auth.device_code))
            return auth

    def issued_count(self, client_id: str) -> int:
        """Codes of ``client_id`` that have not expired yet (what the per-client limit counts)."""
        with self._lock:
            return len(self._unexpired(client_id.lower(), time.time()))

    def count(self) -> int:
        """Codes kept: unexpired ones, and expired ones for KEEP_AFTER_EXPIRY seconds."""
        with self._lock:
            return len(self._by_device)

    # -- the device-login page ---------------------------------------------------------------------------
    def lookup(self, user_code: str) -> DeviceAuthorization:
        """The pending sign-in for a code typed by a person, or a PageError saying what is wrong."""
        with self._lock:
            return self._pending(user_code)

    def approve(
        self, user_code: str, user: User, *, amr: tuple[str, ...] = ("pwd",), acrs: tuple[str, ...] = ()
    ) -> DeviceAuthorization:
        with self._lock:  # check and change under one lock: two approvals cannot both win
            auth = self._pending(user_code)
            auth.status, auth.user, auth.amr, auth.acrs = "approved", user, amr, acrs
            return auth

    def decline(self, user_code: str) -> DeviceAuthorization:
        with self._lock:
            auth = self._pending(user_code)
            auth.status = "declined"
            return auth

    def _pending(self, user_code: str) -> DeviceAuthorization:
        auth = self._by_user.get(normalize_user_code(user_code))
        if auth is None:
            raise UnknownUserCode(
                70018, "That code wasn't recognized. Check the code shown by the app and try again."
            )
        if time.time() >= auth.expires_at:
            raise PageError(
                70020, "That code has expired. Start the sign-in again in the app to get a new code."
            )
        if auth.status != "pending":
            raise PageError(
                70018,
                f"That code was already used ({auth.status}). Start the sign-in again "
                "in the app to get a new code.",
            )
        return auth

    # -- polling -----------------------------------------------------------------------------------------
    def poll(self, device_code: str, client_id: str) -> DeviceAuthorization:
        """The approved sign-in (marked redeemed), or the EntraError the client must see now."""
        now = time.time()
        with self._lock:
            auth = self._by_device.get(device_code)
            if auth is None or auth.client_id.lower() != client_id.lower():
                raise errors.EntraError(
                    "bad_verification_code",
                    70000,
                    "The provided value for the input parameter 'device_code' is not valid.",
                )
            if now >= auth.expires_at:
                raise errors.EntraError(
                    "expired_token",
                    70020,
                    "The provided value for the input parameter 'device_code' is not valid. "
                    "This device code has expired.",
                )
            if auth.status == "declined":
                raise errors.EntraError(
                    "authorization_declined", 70000, "The user declined the authorization request."
                )
            if auth.status == "redeemed":
                raise errors.EntraError(
                    "invalid_grant",
                    54005,
                    "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use "
                    "an existing refresh token.",
                )
            too_fast = auth.last_poll is not None and now - auth.last_poll < auth.interval * POLL_TOLERANCE
            auth.last_poll = now
            if auth.status == "pending":
                if too_fast:
                    raise errors.EntraError(
                        "slow_down",
                        70016,
                        f"The client is polling too frequently. Poll at most every {auth.interval} seconds.",
                    )
                raise errors.EntraError(
                    "authorization_pending",
                    70016,
                    "The provided request has not yet been authorized by the user. The user must input their code.",
                )
            auth.status = "redeemed"
            return auth

    def _unexpired(self, client: str, now: float) -> list[tuple[float, str]]:
        """The client's heap of unexpired codes, expired ones dropped from its front."""
        issued = self._issued.setdefault(client, [])
        while issued and issued[0][0] <= now:
            heapq.heappop(issued)
        return issued

    def _purge(self, now: float) -> None:
        """Forget codes expired more than KEEP_AFTER_EXPIRY ago: pops the heap's front, never scans."""
        cutoff = now - KEEP_AFTER_EXPIRY
        while self._expiry and self._expiry[0][0] < cutoff:
            _, code = heapq.heappop(self._expiry)
            auth = self._by_device.pop(code, None)
            if auth is not None:
                self._by_user.pop(auth.user_code, None)
