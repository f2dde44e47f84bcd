"""The typed agent config the runtime builds agents from, and the findings validation reports about configs.

A config document has four required fields (``name``, ``instructions``, ``model``, ``tools``) and optional
ones (``description``, ``agents_as_tools``, ``handoffs``, ``mcp_servers``, ``model_settings``); the JSON Schema
in ``configs/schema/`` is the authority on what a document may contain. ``AgentConfig`` is what a document becomes
once it validated: immutable, with its key (file stem or the part of the Redis key after ``agent|``) and source.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# Keys name agents in files (stem), Redis (``agent|<key>``) and references between configs.
KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
REDIS_KEY_PREFIX = "agent|"

Severity = Literal["error", "warning"]
Status = Literal["valid", "warning", "invalid"]


class AgentToolRef(BaseModel):
    """Another agent offered to this one as a tool (``Agent.as_tool``); this agent stays in control."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    agent: str  # the other config's key
    description: str  # the tool description the model reads to decide when to call it
    tool_name: str | None = None  # the tool's name; the runtime uses the agent key when unset


class HandoffRef(BaseModel):
    """Another agent this one may hand the conversation to."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    agent: str  # the other config's key
    description: str | None = None  # handoff description; the runtime falls back to the target's description


class AgentConfig(BaseModel):
    """One validated agent config. ``model_settings`` holds only the validated subset (temperature, top_p,
    max_tokens, tool_choice, parallel_tool_calls), ready for ``agents.ModelSettings(**model_settings)``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    name: str
    instructions: str
    model: str
    tools: list[str] = Field(default_factory=list)
    description: str | None = None
    agents_as_tools: list[AgentToolRef] = Field(default_factory=list)
    handoffs: list[HandoffRef] = Field(default_factory=list)
    mcp_servers: list[str] = Field(default_factory=list)
    model_settings: dict[str, Any] = Field(default_factory=dict)
    source: str  # "file:/abs/path.json" or "redis:agent|key"
    document: dict[str, Any] = Field(default_factory=dict, repr=False)  # the JSON document as written

    @classmethod
    def from_document(cls, document: dict[str, Any], *, key: str, source: str) -> AgentConfig:
        """Build from a document that already passed the JSON Schema (handoffs may be plain keys)."""
        handoffs = [
            HandoffRef(agent=item) if isinstance(item, str) else HandoffRef.model_validate(item)
            for item in document.get("handoffs", [])
        ]
        return cls(
            key=key,
            name=document["name"],
            instructions=document["instructions"],
            model=document["model"],
            tools=list(document.get("tools", [])),
            description=document.get("description"),
            agents_as_tools=document.get("agents_as_tools", []),
            handoffs=handoffs,
            mcp_servers=list(document.get("mcp_servers", [])),
            model_settings=dict(document.get("model_settings", {})),
            source=source,
            document=document,
        )

    @property
    def referenced_agents(self) -> list[str]:
        """Keys of the agents this one uses as tools or hands off to, in config order."""
        return [ref.agent for ref in self.agents_as_tools] + [ref.agent for ref in self.handoffs]

    def to_json(self) -> str:
        """The config document as JSON text (what a file or Redis key holds)."""
        return json.dumps(self.document, indent=2, ensure_ascii=False) + "\n"

    def fingerprint(self) -> str:
        """Changes whenever the document changes; equal documents give equal fingerprints."""
        canonical = json.dumps(self.document, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def file_source(path: os.PathLike[str] | str) -> str:
    return f"file:{os.path.abspath(path)}"


def redis_source(key: str) -> str:
    return f"redis:{REDIS_KEY_PREFIX}{key}"


def display_source(source: str) -> str:
    """A source as people read it: a file path relative to the working directory when inside it."""
    if source.startswith("file:"):
        path = source[len("file:") :]
        try:
            rel = os.path.relpath(path)
        except ValueError:  # another drive (Windows)
            return path
        return path if rel.startswith("..") else rel
    if source.startswith("redis:"):
        return f"redis {source[len('redis:') :]}"
    return source


@dataclass(frozen=True)
class ConfigIssue:
    """One finding about one config: where (source + JSON path), what, and how bad."""

    source: str
    path: str  # JSONPath into the document, "$" for the whole document
    message: str
    severity: Severity = "error"
    key: str | None = None

    def __str__(self) -> str:
        label = "" if self.severity == "error" else "warning: "
        return f"{display_source(self.source)}: {self.path}: {label}{self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "key": self.key,
            "path": self.path,
            "severity": self.severity,
            "message": self.message,
        }
