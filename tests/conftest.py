"""Shared fixtures. Every test runs with its own data directory (OBO_CONSOLE_HOME) so nothing touches the
user's real files, and with no settings leaking in from the developer's environment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_LEAKY_ENV = [
    "OBO_CONSOLE_MODE",
    "OBO_CONSOLE_STATE_FILE",
    "OBO_CONSOLE_MCP_URL",
    "USE_REDIS",
    "REDIS_URL",
    "OPENAI_API_KEY",
    "OBO_CONSOLE_MODEL_PROVIDER",
    "PYTHON_KEYRING_BACKEND",
    "OBO_CONSOLE_ALLOW_FILE_KEYRING",
    "OBO_CONSOLE_CONFIGS_DIR",
    "OBO_CONSOLE_MCP_SERVERS",
]


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("home")
    for name in [*_LEAKY_ENV, *(n for n in os.environ if n.startswith("OBO_CONSOLE_"))]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OBO_CONSOLE_HOME", str(home))
    # Never touch the developer's real keyring: the explicit file backend inside this test's home.
    monkeypatch.setenv("OBO_CONSOLE_KEYRING_BACKEND", "file")
    monkeypatch.chdir(home)  # no stray .env from the checkout
    return home


# Shared fixtures, one module per area (each owned by the code it tests).
pytest_plugins = [
    "tests.fixtures.identity",
    "tests.fixtures.search",
    "tests.fixtures.stack",
    "tests.fixtures.redis",
    "tests.fixtures.workspace",
    "tests.fixtures.heap",
    "tests.fixtures.browser_person",
]
