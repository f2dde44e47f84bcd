"""Secrets no pattern recognises are remembered where they enter a process, so every later redact() masks them:
the stack state file's client secret and search API key, a device-code user code, and the MCP server's own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from console.core.settings import Settings
from mcp_server.redact import MASK, forget_secrets, redact
from mcp_server.server.app import create_server
from mcp_server.stack import LocalStack
from mcp_server.stack_state import StackState, read_state, write_state


@pytest.fixture(autouse=True)
def nothing_remembered() -> Iterator[None]:
    forget_secrets()
    yield
    forget_secrets()


def test_read_state_remembers_the_client_secret_and_search_api_key(tmp_path: Path) -> None:
    secret, key = "Qx7~client-secret-value", "Zk3searchApiKeyValue0"
    path = write_state(
        StackState(api_client_secret=SecretStr(secret), search_api_key=SecretStr(key)),
        tmp_path / "state.json",
    )
    line = f"server said: invalid secret {secret} for key {key}."
    assert redact(line) == line  # neither looks like anything a pattern knows
    state = read_state(path)
    assert state is not None and state.api_client_secret is not None
    assert state.api_client_secret.get_secret_value() == secret  # the state itself is unchanged
    assert redact(line) == f"server said: invalid secret {MASK} for key {MASK}."


def test_the_real_stack_state_and_server_secrets_are_masked(local_stack: LocalStack) -> None:
    state = read_state(local_stack.state_file)
    assert state is not None and state.api_client_secret is not None and state.search_api_key is not None
    for value in (state.api_client_secret.get_secret_value(), state.search_api_key.get_secret_value()):
        assert value not in redact(f"x {value} y") and MASK in redact(f"x {value} y")
    forget_secrets()
    other = "another-server-secret-9"
    create_server(
        local_stack.server_config(api_client_secret=SecretStr(other))
    )  # a server holding its secret
    assert redact(f"secret {other}") == f"secret {MASK}"


def test_a_device_code_user_code_is_masked_once_shown(use_local_stack: LocalStack) -> None:
    from console.core.auth.manager import AuthManager

    auth = AuthManager.from_settings(Settings())
    flow = auth.start_device_flow()
    try:
        code = flow.prompt.user_code.get_secret_value()
        assert code and code not in redact(f"enter {code} at the page") and MASK in redact(f"enter {code}")
    finally:
        flow.cancel()
