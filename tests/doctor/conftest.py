"""A local stack of the scenario tests' own (scenarios change it; the session stack is shared), with alice signed
in through the device-code page WITHOUT the MFA step (so a Conditional Access MFA policy bites), in a home of its
own with the explicit file keyring."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from console.cli import main
from console.core.auth.device_page import complete_device_page
from console.core.auth.manager import AuthManager
from console.core.auth.msal_app import http_session
from mcp_server.stack import LocalStack, StackPorts
from tests.conftest import _LEAKY_ENV
from tests.fixtures.redis import RedisServer


@dataclass
class ScenarioStack:
    stack: LocalStack
    home: Path
    env: dict[str, str]
    redis: RedisServer  # the Redis this stack manages (the "redis-down" scenario stops it)


@pytest.fixture(scope="module")
def module_scenario_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScenarioStack]:
    home = tmp_path_factory.mktemp("scenario-home")
    with pytest.MonkeyPatch.context() as patch:
        for name in [*_LEAKY_ENV, *(n for n in os.environ if n.startswith("OBO_CONSOLE_"))]:
            patch.delenv(name, raising=False)
        env = {
            "OBO_CONSOLE_HOME": str(home),
            "OBO_CONSOLE_KEYRING_BACKEND": "file",
            "OBO_CONSOLE_STATE_FILE": str(home / "local-stack.json"),
        }
        for name, value in env.items():
            patch.setenv(name, value)
        patch.chdir(home)
        (home / "redis").mkdir()
        redis = RedisServer(home / "redis")
        redis.start()
        stack = LocalStack(
            home=home,
            ports=StackPorts(identity=0, search=0, mcp=0, calculator=None),
            state_file=home / "local-stack.json",
            redis=redis,
        )
        stack.start()
        try:
            _sign_in_without_mfa("alice")
            yield ScenarioStack(stack, home, env, redis)
        finally:
            stack.stop()
            redis.stop()


@pytest.fixture
def scenario_stack(module_scenario_stack: ScenarioStack, monkeypatch: pytest.MonkeyPatch) -> ScenarioStack:
    """The module's stack, with this test's environment pointed at it (each test's home is reset otherwise)."""
    for name, value in module_scenario_stack.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(module_scenario_stack.home)
    return module_scenario_stack


@pytest.fixture
def with_redis(scenario_stack: ScenarioStack, monkeypatch: pytest.MonkeyPatch) -> ScenarioStack:
    """The scenario stack with the console configured for its Redis (doctor then checks it too). Only for tests
    that read no agent configs: USE_REDIS moves the config store there."""
    monkeypatch.setenv("USE_REDIS", "true")
    monkeypatch.setenv("REDIS_URL", scenario_stack.redis.url)
    return scenario_stack


def _sign_in_without_mfa(login: str) -> None:
    with AuthManager.from_settings() as manager:
        flow = manager.start_device_flow()
        with http_session(manager.endpoints) as browser:
            user = manager.endpoints.demo_user(login)
            complete_device_page(browser, flow.prompt.verification_uri, flow.prompt.user_code, user.username)
        flow.result(60)


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    """``obo-console ARGS --json`` in this process: its exit code and its one JSON document."""
    capsys.readouterr()
    code = main([*args, "--json"])
    captured = capsys.readouterr()
    assert captured.out, f"no JSON on stdout (exit {code}); stderr: {captured.err}"
    return code, json.loads(captured.out)
