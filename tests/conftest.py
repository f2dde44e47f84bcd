"""Shared fixtures. Every test runs with its own data directory (OBO_CONSOLE_HOME) so nothing touches the
user's real files, and with no settings leaking in from the developer's environment."""

from __future__ import annotations

from pathlib import Path

import pytest

_LEAKY_ENV = [
    "OBO_CONSOLE_MODE", "OBO_CONSOLE_STATE_FILE", "OBO_CONSOLE_MCP_URL", "USE_REDIS", "REDIS_URL",
    "OPENAI_API_KEY", "OBO_CONSOLE_MODEL_PROVIDER", "PYTHON_KEYRING_BACKEND", "OBO_CONSOLE_ALLOW_FILE_KEYRING",
]


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("OBO_CONSOLE_HOME", str(home))
    for name in _LEAKY_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(home)  # no stray .env from the checkout
    return home
