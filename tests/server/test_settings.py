"""The server stands alone: it imports nothing from the console, its settings live with it (the console's extend
them, same variable names), and its calculator agent runs on the model its host hands it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from console.core.settings import Settings
from mcp_server.settings import ServerSettings
from mcp_server.stack import LocalStack, StackPorts

# Run in a fresh interpreter where any import of the console fails, as where only the server is installed.
_ALONE = """
import importlib, pkgutil, sys

class NoConsole:
    def find_spec(self, name, path=None, target=None):
        if name == "console" or name.startswith("console."):
            raise ImportError(f"the server imported {name}")
        return None

sys.meta_path.insert(0, NoConsole())
import mcp_server
from mcp_server.server.config import ServerConfig
from mcp_server.settings import ServerSettings

names = sorted(m.name for m in pkgutil.walk_packages(mcp_server.__path__, "mcp_server."))
for name in names:
    importlib.import_module(name)
config = ServerConfig.from_settings(ServerSettings())
print(len(names), config.mode, config.authority, config.api_client_id, config.search_index, config.port)
"""


def test_every_server_module_imports_and_configures_without_the_console(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "OBO_CONSOLE_MODE": "azure",
        "OBO_CONSOLE_TENANT_ID": "11111111-2222-3333-4444-555555555555",
        "OBO_CONSOLE_API_CLIENT_ID": "api-client",
        "OBO_CONSOLE_API_CLIENT_SECRET": "not-a-real-secret",
        "OBO_CONSOLE_SEARCH_ENDPOINT": "https://search.example.net",
        "OBO_CONSOLE_SEARCH_API_KEY": "not-a-real-key",
        "OBO_CONSOLE_MCP_PORT": "8123",
    }
    result = subprocess.run(
        [sys.executable, "-c", _ALONE], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    count, *config = result.stdout.split()
    assert int(count) > 40  # every module of the server, not a handful
    assert config == [
        "azure",
        "https://login.microsoftonline.com/11111111-2222-3333-4444-555555555555",
        "api-client",
        "document-permissions-push-idx",
        "8123",
    ]


def test_the_console_settings_extend_the_servers_with_the_same_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert issubclass(Settings, ServerSettings)
    server_fields = set(ServerSettings.model_fields)
    assert server_fields < set(Settings.model_fields)
    console_only = {
        "console_client_id",
        "api_scope",
        "configs_dir",
        "trusted_mcp_urls",
        "model_provider",
        "model",
    }
    assert console_only.isdisjoint(server_fields) and console_only < set(Settings.model_fields)
    monkeypatch.setenv("OBO_CONSOLE_MCP_PORT", "8123")
    monkeypatch.setenv("OBO_CONSOLE_JWKS_CACHE_TTL", "5")
    monkeypatch.setenv("OBO_CONSOLE_ALLOWED_TENANTS", '["t1", "t2"]')
    for settings in (ServerSettings(), Settings()):
        assert (settings.mcp_port, settings.jwks_cache_ttl, settings.allowed_tenants) == (
            8123,
            5.0,
            ["t1", "t2"],
        )
        assert settings.effective_mcp_url() == "http://127.0.0.1:8123/mcp"


def test_the_stack_starts_a_calculator_only_with_a_model_its_host_chose(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as refused:
        LocalStack(
            home=tmp_path, ports=StackPorts(identity=0, search=0, mcp=0, calculator=0), write_state_file=False
        )
    assert str(refused.value) == (
        "The local stack's calculator agent needs a model: pass calculator_model, "
        "or StackPorts(calculator=None) to run without the calculator."
    )
    without = LocalStack(
        home=tmp_path, ports=StackPorts(identity=0, search=0, mcp=0, calculator=None), write_state_file=False
    )
    assert without.calculator_model is None and without.calculator is None
