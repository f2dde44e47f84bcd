"""The local stack state file: how every command finds the running local stack.

Contract (docs/contracts.md): JSON, mode 0600, replaced atomically, written only once every listener it names
accepts connections, removed on clean shutdown.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from mcp_server.atomic import write_private
from mcp_server.paths import default_state_file
from mcp_server.redact import remember_secret


class DemoUser(BaseModel):
    username: str
    oid: str
    name: str
    groups: list[str]


class StackState(BaseModel):
    """What a running local stack tells its clients. Secrets are masked in repr and logs."""

    model_config = ConfigDict(extra="allow")

    mcp_url: str | None = None
    authority: str | None = None
    tenant_id: str | None = None
    console_client_id: str | None = None
    api_client_id: str | None = None
    api_client_secret: SecretStr | None = None
    api_scope: str | None = None
    search_endpoint: str | None = None
    search_index: str | None = None
    search_api_key: SecretStr | None = None
    ca_cert: str | None = None
    users: list[DemoUser] = []
    pid: int | None = None
    calculator_url: str | None = None  # the remote calculator agent; None when the stack serves none
    admin_url: str | None = None  # the scenario admin endpoint (docs/scenarios.md)
    admin_secret: SecretStr | None = None  # its Bearer secret, new on every start

    def to_json(self) -> str:
        data = self.model_dump(mode="python")
        for key in ("api_client_secret", "search_api_key", "admin_secret"):
            value = getattr(self, key)
            data[key] = value.get_secret_value() if value is not None else None
        return json.dumps(data, indent=2, default=str)


class StateFileError(RuntimeError):
    """The state file exists but cannot be used."""


def write_state(state: StackState, path: Path | None = None) -> Path:
    target = path or default_state_file()
    write_private(target, state.to_json())
    return target


def read_state(path: Path | None = None) -> StackState | None:
    """The state of the running local stack, or None when no stack has written one."""
    target = path or default_state_file()
    try:
        raw = target.read_text()
    except FileNotFoundError:
        return None
    try:
        state = StackState.model_validate_json(raw)
    except ValidationError as exc:
        raise StateFileError(
            f"The local stack state file {target} is not valid ({exc.error_count()} errors). "
            "Stop the stack and start it again with `obo-console server`."
        ) from exc
    # Values no pattern recognises: from now on every redaction in this process masks them.
    remember_secret(state.api_client_secret)
    remember_secret(state.search_api_key)
    remember_secret(state.admin_secret)
    return state


def remove_state(path: Path | None = None) -> None:
    (path or default_state_file()).unlink(missing_ok=True)
