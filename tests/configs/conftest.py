"""Fixtures for the config tests: the validation context from the real tool registry and settings, and
config folders written by the tests themselves."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from console.core.configs.schema import SHIPPED_CONFIGS_DIR
from console.core.configs.validation import ValidationContext

REPO_ROOT = Path(__file__).resolve().parents[2]

# Configs in the four-field format (name, instructions, model, tools) with the older tool names, written by
# the tests.
FOUR_FIELD_CONFIGS: dict[str, dict[str, Any]] = {
    "conversation": {
        "name": "Conversation Agent",
        "instructions": "Answer briefly. Get the date and time first when a question depends on them.",
        "model": "gpt-4.1",
        "tools": ["get_current_time", "get_current_date", "calculator"],
    },
    "news": {
        "name": "News Agent",
        "instructions": "Answer news questions; get the date before searching.",
        "model": "gpt-4o-mini",
        "tools": ["web_search", "get_current_date"],
    },
    "simulator": {
        "name": "Simulator Agent",
        "instructions": "Collect name, address and income, then run the simulation.",
        "model": "gpt-4o-mini",
        "tools": ["perform_simulation"],
    },
    "weather": {
        "name": "Weather Agent",
        "instructions": "Answer weather questions with the weather tools.",
        "model": "gpt-4o-mini",
        "tools": ["get_current_weather", "get_current_temperature", "get_seven_day_forecast"],
    },
}


@pytest.fixture(scope="session")
def ctx() -> ValidationContext:
    """Tool names from the runtime's registry, MCP servers from default settings, the offline model."""
    from console.core.configs.open_store import validation_context
    from console.core.settings import Settings

    context = validation_context(Settings())
    assert context.offline_model and "web_search" in context.hosted_tools
    return context


def write_json(path: Path, document: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def shipped_copy(tmp_path: Path) -> Path:
    """A copy of the shipped configs (and schema) the test may edit."""
    target = tmp_path / "configs"
    shutil.copytree(SHIPPED_CONFIGS_DIR, target)
    return target


@pytest.fixture
def config_dir(tmp_path: Path) -> Callable[[dict[str, Any]], Path]:
    """Writes {key: document or raw text} as <key>.json into a fresh folder."""

    def make(configs: dict[str, Any]) -> Path:
        folder = tmp_path / "set"
        folder.mkdir(exist_ok=True)
        for key, document in configs.items():
            if isinstance(document, str):
                (folder / f"{key}.json").write_text(document, encoding="utf-8")
            else:
                write_json(folder / f"{key}.json", document)
        return folder

    return make


def agent(name: str, tools: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    """A minimal valid config document."""
    return {
        "name": name,
        "instructions": f"You are {name}.",
        "model": "gpt-4o-mini",
        "tools": tools or [],
        **extra,
    }
