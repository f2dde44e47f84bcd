"""Signed-in accounts as the console shows them, and which one is current (a small pointer file, no tokens)."""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from console.core.claims import ClaimsError, decode_claims
from mcp_server.atomic import write_private
from mcp_server.paths import data_dir

POINTER_FILE = "current-account.json"


@dataclass(frozen=True)
class SignedInAccount:
    username: str
    home_account_id: str  # MSAL's key: "<oid>.<tid>" from client_info
    environment: str  # the identity platform's host (no port)
    tenant_id: str
    oid: str
    name: str = ""

    @property
    def login(self) -> str:
        return self.username.split("@", 1)[0]

    def matches(self, login: str) -> bool:
        """``login`` is this account's username or its part before ``@`` (case-insensitive)."""
        wanted = login.strip().lower()
        return wanted in (self.username.lower(), self.login.lower())

    def as_dict(self) -> dict[str, str]:
        return {
            "username": self.username,
            "name": self.name,
            "oid": self.oid,
            "tenant_id": self.tenant_id,
            "home_account_id": self.home_account_id,
            "environment": self.environment,
        }


def account_from_entries(account: dict[str, Any], id_tokens: list[dict[str, Any]]) -> SignedInAccount:
    """Build from MSAL's Account entry; the display name comes from the matching id token's claims."""
    name = ""
    for idt in id_tokens:
        if idt.get("home_account_id") == account.get("home_account_id") and idt.get("realm") == account.get(
            "realm"
        ):
            try:
                name = str(decode_claims(idt.get("secret", "")).get("name", ""))
            except ClaimsError:
                name = ""
            break
    return SignedInAccount(
        username=str(account.get("username", "")),
        home_account_id=str(account.get("home_account_id", "")),
        environment=str(account.get("environment", "")),
        tenant_id=str(account.get("realm", "")),
        oid=str(account.get("local_account_id", "")),
        name=name,
    )


class CurrentAccountPointer:
    """Remembers, per identity platform host and tenant, which signed-in account commands use by default."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or data_dir() / POINTER_FILE

    def _read(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text())
        except (FileNotFoundError, ValueError):
            return {}
        return {str(k): str(v) for k, v in data.get("current", {}).items()} if isinstance(data, dict) else {}

    def _write(self, current: dict[str, str]) -> None:
        write_private(self.path, json.dumps({"current": current}, indent=2))

    def get(self, key: str) -> str | None:
        return self._read().get(key)

    def set(self, key: str, home_account_id: str | None) -> None:
        current = self._read()
        if home_account_id is None:
            current.pop(key, None)
        else:
            current[key] = home_account_id
        self._write(current)

    def forget(self, home_account_ids: Collection[str] | None) -> None:
        current = self._read()
        kept = {
            a: h for a, h in current.items() if home_account_ids is not None and h not in home_account_ids
        }
        if kept != current:
            self._write(kept)


class MemoryAccountPointer(CurrentAccountPointer):
    """The current account of a console whose token cache is in memory (a web tab): in memory too, so it never
    changes which account the machine's other consoles and commands use."""

    def __init__(self) -> None:  # no file: nothing calls the parent's, which names one
        self._current: dict[str, str] = {}

    def _read(self) -> dict[str, str]:
        return dict(self._current)

    def _write(self, current: dict[str, str]) -> None:
        self._current = dict(current)
