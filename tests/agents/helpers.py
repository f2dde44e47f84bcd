"""Helpers for the agent runtime tests: configs the tests write themselves, and event capture."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from console.core.configs.file_store import write_atomic
from console.core.configs.model import AgentConfig
from console.core.configs.open_store import open_store
from console.core.events import Event, EventBus
from console.core.settings import Settings


def write_configs(directory: Path, documents: dict[str, dict[str, Any]]) -> Path:
    """Each file replaced in one step: a live store watching ``directory`` never reads half a config."""
    directory.mkdir(parents=True, exist_ok=True)
    for key, document in documents.items():
        write_atomic(directory / f"{key}.json", json.dumps(document, indent=2))
    return directory


def load_configs(settings: Settings) -> dict[str, AgentConfig]:
    """Through the real file store and validation, failing on any error."""
    store = open_store(settings)
    try:
        configs = store.load_all()
    finally:
        store.close()
    assert configs.ok, [str(issue) for issue in configs.errors]
    return configs.configs


def config(key: str, document: dict[str, Any]) -> AgentConfig:
    """A config built directly (no validation): for what validation would refuse, to test the runtime's own guard."""
    return AgentConfig.from_document(document, key=key, source=f"test:{key}")


def agent(
    name: str, instructions: str = "Help the user.", tools: list[str] | None = None, **extra: Any
) -> dict[str, Any]:
    return {"name": name, "instructions": instructions, "model": "gpt-4o-mini", "tools": tools or [], **extra}


def desk_and_shelf() -> dict[str, dict[str, Any]]:
    """The desk agent, which hands document questions to the shelf agent (it searches through the MCP server)."""
    return {
        "desk": agent(
            "Desk Agent",
            tools=["get_current_date"],
            agents_as_tools=[{"agent": "shelf", "description": "Finds the user's documents."}],
        ),
        "shelf": agent("Shelf Agent", mcp_servers=["documents"]),
    }


class Recorder:
    """Every event published on a bus, in order."""

    def __init__(self, bus: EventBus) -> None:
        self.events: list[Event] = []
        bus.subscribe(self.events.append)

    def kinds(self, turn_id: str | None = None) -> list[str]:
        return [
            e.kind
            for e in self.events
            if e.kind != "text_delta" and (turn_id is None or e.turn_id == turn_id)
        ]

    def of(self, kind: str, turn_id: str | None = None) -> list[Any]:
        return [e for e in self.events if e.kind == kind and (turn_id is None or e.turn_id == turn_id)]

    def tools_called(self, turn_id: str | None = None) -> list[tuple[str | None, str]]:
        return [(e.agent, e.tool) for e in self.of("tool_started", turn_id)]

    def clear(self) -> None:
        self.events.clear()
