"""Pending device-code sign-ins (RFC 8628 as Entra answers it): created by ``/devicecode``, approved or declined
on the device-login page, redeemed by polling ``/token``."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Literal

from mcp_server.localcloud.identity import errors
from mcp_server.localcloud.identity.scopes import ScopeRequest
from mcp_server.localcloud.tenant import User

USER_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # no I/O: easy to read and type
USER_CODE_LENGTH = 9
KEEP_AFTER_EXPIRY = 600.0  # answer expired_token (not bad_verification_code) for a while after expiry
POLL_TOLERANCE = 0.9  # a poll sooner than 90% of the interval after the previous one is "too fast"

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


class PageError(Exception):
    """Why the device-login page cannot complete a code: shown to the person, with an AADSTS code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def normalize_user_code(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


class DeviceCodeStore:
    def __init__(self, *, lifetime: int = 900, interval: int = 1) -> None:
        self.lifetime = lifetime
        self.interval = interval
        self._lock = threading.Lock()
        self._by_device: dict[str, DeviceAuthorization] = {}
        self._by_user: dict[str, DeviceAuthorization] = {}

    def create(self, client_id: str, scope: ScopeRequest) -> DeviceAuthorization:
        with self._lock:
            self._purge()
            user_code = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_LENGTH))
            while user_code in self._by_user:
                user_code = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_LENGTH))
            auth = DeviceAuthorization(
                device_code="DAQABIQEAAAD--" + secrets.token_urlsafe(96), user_code=user_code,
                client_id=client_id, scope=scope, expires_at=time.time() + self.lifetime, interval=self.interval,
            )
            self._by_device[auth.device_code] = auth
            self._by_user[user_code] = auth
            return auth

    # -- the device-login page ---------------------------------------------------------------------------
    def lookup(self, user_code: str) -> DeviceAuthorization:
        """The pending sign-in for a code typed by a person, or a PageError saying what is wrong."""
        with self._lock:
            return self._pending(user_code)

    def approve(self, user_code: str, user: User) -> DeviceAuthorization:
        with self._lock:  # check and change under one lock: two approvals cannot both win
            auth = self._pending(user_code)
            auth.status, auth.user = "approved", user
            return auth

    def decline(self, user_code: str) -> DeviceAuthorization:
        with self._lock:
            auth = self._pending(user_code)
            auth.status = "declined"
            return auth

    def _pending(self, user_code: str) -> DeviceAuthorization:
        auth = self._by_user.get(normalize_user_code(user_code))
        if auth is None:
            raise PageError(70018, "That code wasn't recognized. Check the code shown by the app and try again.")
        if time.time() >= auth.expires_at:
            raise PageError(70020, "That code has expired. Start the sign-in again in the app to get a new code.")
        if auth.status != "pending":
            raise PageError(70018, f"That code was already used ({auth.status}). Start the sign-in again "
                                   "in the app to get a new code.")
        return auth

    # -- polling -----------------------------------------------------------------------------------------
    def poll(self, device_code: str, client_id: str) -> DeviceAuthorization:
        """The approved sign-in (marked redeemed), or the EntraError the client must see now."""
        now = time.time()
        with self._lock:
            auth = self._by_device.get(device_code)
            if auth is None or auth.client_id.lower() != client_id.lower():
                raise errors.EntraError(
                    "bad_verification_code", 70000,
                    "The provided value for the input parameter 'device_code' is not valid.")
            if now >= auth.expires_at:
                raise errors.EntraError(
                    "expired_token", 70020,
                    "The provided value for the input parameter 'device_code' is not valid. "
                    "This device code has expired.")
            if auth.status == "declined":
                raise errors.EntraError("authorization_declined", 70000,
                                        "The user declined the authorization request.")
            if auth.status == "redeemed":
                raise errors.EntraError(
                    "invalid_grant", 54005,
                    "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use "
                    "an existing refresh token.")
            too_fast = auth.last_poll is not None and now - auth.last_poll < auth.interval * POLL_TOLERANCE
            auth.last_poll = now
            if auth.status == "pending":
                if too_fast:
                    raise errors.EntraError(
                        "slow_down", 70016,
                        f"The client is polling too frequently. Poll at most every {auth.interval} seconds.")
                raise errors.EntraError(
                    "authorization_pending", 70016,
                    "The provided request has not yet been authorized by the user. The user must input their code.")
            auth.status = "redeemed"
            return auth

    def _purge(self) -> None:
        cutoff = time.time() - KEEP_AFTER_EXPIRY
        for code, auth in list(self._by_device.items()):
            if auth.expires_at < cutoff:
                del self._by_device[code]
                self._by_user.pop(auth.user_code, None)
