"""Agent configs: the typed model, JSON Schema validation, and the file and Redis stores with live reload.

Light to import: the stores, the watcher and Redis load on first use (``open_store``, ``LiveConfigs``).
"""

from console.core.configs.catalog import ConfigChange, ConfigEntry, ConfigSet, RawConfig, reconcile
from console.core.configs.model import AgentConfig, AgentToolRef, ConfigIssue, HandoffRef
from console.core.configs.store import ConfigRejected, ConfigStore
from console.core.configs.validation import ValidationContext, validate_configs

__all__ = [
    "AgentConfig",
    "AgentToolRef",
    "ConfigChange",
    "ConfigEntry",
    "ConfigIssue",
    "ConfigRejected",
    "ConfigSet",
    "ConfigStore",
    "HandoffRef",
    "RawConfig",
    "ValidationContext",
    "reconcile",
    "validate_configs",
]
