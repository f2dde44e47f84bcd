"""Fixtures of the auth area: a local stack state file naming the real identity platform, a deterministic keyring
(the file store inside the test's own OBO_CONSOLE_HOME: the developer's real keyring is never touched), and a CLI
runner that checks every command's output for tokens, secrets and user codes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pydantic import SecretStr

from console.core.auth.manager import AuthManager
from mcp_server.localcloud.identity.platform import IdentityPlatform
from mcp_server.localcloud.tenant import Tenant
from mcp_server.stack import demo_users
from mcp_server.stack_state import StackState, write_state
from tests.auth.helpers import JWT_SHAPE

CLI = Path(sys.executable).with_name("obo-console")
FAKE_SEARCH_KEY = "search-admin-key-0123456789abcdef0123456789abcdef"


@dataclass
class AuthStack:
    platform: IdentityPlatform
    tenant: Tenant
    home: Path
    state: StackState
    env: dict[str, str]
    secrets: list[str] = field(default_factory=list)

    def oid(self, login: str) -> str:
        user = self.tenant.user_by_login(login)
        assert user is not None
        return user.oid

    def issued_user_codes(self) -> list[str]:
        return list(self.platform.devices._by_user)

    def assert_nothing_secret(self, *texts: str) -> None:
        for text in texts:
            assert not JWT_SHAPE.search(text), f"a JWT-shaped string was printed: {text[:400]}"
            for secret in [*self.secrets, *self.issued_user_codes()]:
                assert secret not in text, "a secret or user code was printed"


@pytest.fixture
def auth_stack(
    identity_platform: IdentityPlatform,
    demo_tenant: Tenant,
    isolated_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AuthStack:
    """The state file the stack would write for this identity platform, in this test's home."""
    monkeypatch.setenv("OBO_CONSOLE_KEYRING_BACKEND", "file")
    secret = demo_tenant.api_app.client_secret
    state = StackState(
        authority=identity_platform.authority,
        tenant_id=demo_tenant.tenant_id,
        console_client_id=identity_platform.console_client_id,
        api_client_id=identity_platform.api_client_id,
        api_client_secret=secret,
        api_scope=identity_platform.api_scope,
        search_api_key=SecretStr(FAKE_SEARCH_KEY),
        ca_cert=str(identity_platform.ca_cert_path),
        users=demo_users(demo_tenant),
        pid=os.getpid(),
    )
    write_state(state)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OBO_CONSOLE_", "PYTHON_KEYRING"))}
    env.update(OBO_CONSOLE_HOME=str(isolated_home), OBO_CONSOLE_KEYRING_BACKEND="file")
    secrets = [FAKE_SEARCH_KEY] + ([secret.get_secret_value()] if secret else [])
    return AuthStack(identity_platform, demo_tenant, isolated_home, state, env, secrets)


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str


@pytest.fixture
def run_cli(auth_stack: AuthStack) -> Iterator[Callable[..., CliResult]]:
    """Run the real `obo-console` in a fresh process; every run's output is checked for secrets."""
    results: list[CliResult] = []

    def run(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> CliResult:
        done = subprocess.run(
            [str(CLI), *args],
            env={**auth_stack.env, **(env or {})},
            cwd=auth_stack.home,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        result = CliResult(done.returncode, done.stdout, done.stderr)
        auth_stack.assert_nothing_secret(result.stdout, result.stderr)
        results.append(result)
        return result

    yield run
    for result in results:  # again at the end: user codes issued later count too
        auth_stack.assert_nothing_secret(result.stdout, result.stderr)


@pytest.fixture
def make_manager(auth_stack: AuthStack) -> Iterator[Callable[..., AuthManager]]:
    """``AuthManager.from_settings(...)``, closed at teardown so the identity platform stops without waiting."""
    made: list[AuthManager] = []

    def make(**kwargs: object) -> AuthManager:
        manager = AuthManager.from_settings(**kwargs)  # type: ignore[arg-type]
        made.append(manager)
        return manager

    yield make
    for manager in made:
        manager.close()
