"""Test helpers for the auth area: keyring backends and MSAL token events built the way MSAL records them."""

from __future__ import annotations

import base64
import json
import os
import re
import time
import uuid
from typing import Any

from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError

JWT_SHAPE = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]*")
TENANT = "ce5f3f8f-ace8-464d-9563-b2a5c75a2005"
CLIENT_ID = "11111111-2222-3333-4444-555555555555"
SCOPE = "api://66666666-7777-8888-9999-000000000000/execute"
HOST = "127.0.0.1"


class MemoryKeyring(KeyringBackend):
    """An in-memory keyring; ``limit`` caps each value's size in UTF-16 bytes like Windows Credential Manager."""

    priority = 1  # type: ignore[assignment]

    def __init__(self, limit: int | None = None) -> None:
        super().__init__()
        self.values: dict[tuple[str, str], str] = {}
        self.limit = limit
        self.largest = 0

    def get_password(self, service: str, username: str) -> str | None:
        return self.values.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        size = len(password.encode("utf-16-le"))
        if self.limit is not None and size > self.limit:
            raise ValueError(f"value of {size} bytes exceeds the {self.limit}-byte limit per entry")
        self.largest = max(self.largest, size)
        self.values[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.values.pop((service, username), None) is None:
            raise PasswordDeleteError("not found")


def b64url(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def fake_jwt(claims: dict[str, Any], size: int = 0) -> str:
    """An unsigned JWT-shaped string (MSAL only decodes id tokens); ``size`` pads the signature part."""
    signature = base64.urlsafe_b64encode(os.urandom(max(size, 43))).decode().rstrip("=")  # incompressible
    return f"{b64url({'alg': 'RS256', 'kid': 'k1', 'typ': 'JWT'})}.{b64url(claims)}.{signature}"


def token_event(
    username: str, *, tenant: str = TENANT, oid: str | None = None, at_size: int = 900
) -> dict[str, Any]:
    """The event MSAL's cache records after a device-code token response for ``username``."""
    oid = oid or str(uuid.uuid5(uuid.NAMESPACE_DNS, username))
    now = int(time.time())
    id_claims = {
        "aud": CLIENT_ID,
        "iss": f"https://{HOST}/{tenant}/v2.0",
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "name": username.split("@")[0].title(),
        "oid": oid,
        "preferred_username": username,
        "sub": oid[::-1],
        "tid": tenant,
        "ver": "2.0",
    }
    at_claims = dict(id_claims, aud=SCOPE.split("/")[2], scp="execute", azp=CLIENT_ID)
    return {
        "client_id": CLIENT_ID,
        "scope": [SCOPE],
        "token_endpoint": f"https://{HOST}:8443/{tenant}/oauth2/v2.0/token",
        "environment": HOST,
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
        "data": {},
        "response": {
            "access_token": fake_jwt(at_claims, at_size),
            "token_type": "Bearer",
            "expires_in": 3600,
            "refresh_token": "rt-" + uuid.uuid4().hex * 8,
            "id_token": fake_jwt(id_claims),
            "client_info": b64url({"uid": oid, "utid": tenant}),
            "scope": SCOPE,
        },
    }
