"""The set of configs a store serves, and how a change to the sources becomes a new set.

``reconcile`` turns the raw sources (file texts or Redis values) plus the previously served set into a new
``ConfigSet``. Its rules are the store's promises:

- a config that is invalid on its own (JSON, schema, unknown tool or MCP server) is reported, and its last good
  version keeps serving;
- a new version that breaks the set (refers to an unknown agent, closes a cycle) is reported and reverted to its
  last good version; a config with no good version to fall back to is left out, and so is every config that
  refers to it (each reported);
- a deleted source whose agent other configs still use keeps serving its last good version, reported.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from console.core.configs.model import AgentConfig, ConfigIssue, Status, display_source
from console.core.configs.validation import ValidationContext, check_document, cross_issues, parse_json

ChangeReason = Literal["load", "change", "put", "delete", "resync", "disconnected", "reconnected"]


@dataclass(frozen=True)
class RawConfig:
    """A config as its source holds it."""

    key: str
    source: str
    text: str | bytes


@dataclass(frozen=True)
class ConfigEntry:
    """One key's state: what its source holds (``config``, when valid on its own), what is served for it
    (``serving``: the newest good version), and what validation found."""

    key: str
    source: str
    status: Status
    issues: tuple[ConfigIssue, ...]
    config: AgentConfig | None
    serving: AgentConfig | None

    @property
    def serving_last_good(self) -> bool:
        """True when the source's current content is not what is served (an older good version is)."""
        return self.serving is not None and (
            self.config is None or self.config.fingerprint() != self.serving.fingerprint()
        )

    def to_dict(self) -> dict[str, Any]:
        shown = self.serving or self.config
        return {
            "key": self.key,
            "name": shown.name if shown else None,
            "model": shown.model if shown else None,
            "tools": list(shown.tools) if shown else [],
            "agents_as_tools": [ref.agent for ref in shown.agents_as_tools] if shown else [],
            "handoffs": [ref.agent for ref in shown.handoffs] if shown else [],
            "mcp_servers": list(shown.mcp_servers) if shown else [],
            "status": self.status,
            "serving": self.serving is not None,
            "serving_last_good": self.serving_last_good,
            "source": self.source,
            "issues": [issue.to_dict() for issue in self.issues],
        }


@dataclass(frozen=True)
class ConfigSet:
    """Every key a store knows, with the configs it serves and all current findings."""

    entries: Mapping[str, ConfigEntry] = field(default_factory=dict)
    backend: str = ""

    @property
    def configs(self) -> dict[str, AgentConfig]:
        """The configs being served (valid, or the last good version of an invalid source), by key."""
        return {key: entry.serving for key, entry in self.entries.items() if entry.serving is not None}

    def get(self, key: str) -> AgentConfig | None:
        entry = self.entries.get(key)
        return entry.serving if entry else None

    @property
    def issues(self) -> list[ConfigIssue]:
        return [issue for entry in self.entries.values() for issue in entry.issues]

    @property
    def errors(self) -> list[ConfigIssue]:
        return [issue for issue in self.issues if issue.severity == "error"]

    @property
    def warnings(self) -> list[ConfigIssue]:
        return [issue for issue in self.issues if issue.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def invalid(self) -> list[ConfigEntry]:
        return [entry for entry in self.entries.values() if entry.status == "invalid"]


@dataclass(frozen=True)
class ConfigChange:
    """What one reload did: the keys whose served config changed, and the findings about the sources it read."""

    configs: ConfigSet
    reason: ChangeReason
    added: frozenset[str] = frozenset()
    updated: frozenset[str] = frozenset()
    removed: frozenset[str] = frozenset()
    issues: tuple[ConfigIssue, ...] = ()  # findings about the sources this change touched
    message: str = ""

    @property
    def changed(self) -> frozenset[str]:
        return self.added | self.updated | self.removed

    def summary(self) -> str:
        parts = [
            f"{label}: {', '.join(sorted(keys))}"
            for label, keys in (("added", self.added), ("updated", self.updated), ("removed", self.removed))
            if keys
        ]
        rejected = sorted({display_source(i.source) for i in self.issues if i.severity == "error"})
        if rejected:
            parts.append(f"rejected (last good kept): {', '.join(rejected)}")
        return "; ".join(parts) or self.message or "no change"


def check_raw(raw: RawConfig, ctx: ValidationContext) -> tuple[AgentConfig | None, list[ConfigIssue]]:
    document, issues = parse_json(raw.text, key=raw.key, source=raw.source)
    if issues:
        return None, issues
    return check_document(document, key=raw.key, source=raw.source, ctx=ctx)


def _same(a: AgentConfig | None, b: AgentConfig | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.source == b.source and a.fingerprint() == b.fingerprint()


def _dedupe(issues: list[ConfigIssue]) -> tuple[ConfigIssue, ...]:
    return tuple(dict.fromkeys(issues))


CheckCache = dict[RawConfig, tuple[AgentConfig | None, list[ConfigIssue]]]


def reconcile(
    raw: Mapping[str, RawConfig],
    previous: ConfigSet | None,
    ctx: ValidationContext,
    backend: str = "",
    cache: CheckCache | None = None,
) -> ConfigSet:
    """The set to serve for these sources, given what was served before (see the module docstring).
    ``cache`` (kept by a store across reloads, same ``ctx``) spares re-checking sources that did not change:
    a change re-validates only what changed, plus the cheap checks between configs."""
    last_good = previous.configs if previous else {}
    notes: dict[str, list[ConfigIssue]] = {}
    local: dict[str, AgentConfig | None] = {}
    fresh: CheckCache = {}
    for key, item in raw.items():
        checked = cache.get(item) if cache is not None else None
        if checked is None:
            checked = check_raw(item, ctx)
        fresh[item] = checked
        local[key], notes[key] = checked[0], list(checked[1])
    if cache is not None:  # keep only what the current sources need
        cache.clear()
        cache.update(fresh)

    candidates: dict[str, AgentConfig] = {}
    for key in raw:
        chosen = local[key] or last_good.get(key)
        if chosen is not None:
            candidates[key] = chosen
    unavailable = {key: "invalid" for key in raw if key not in candidates}
    kept_deleted: dict[str, list[str]] = {}

    while True:
        found = cross_issues(candidates, unavailable)
        # A deleted agent still in use comes back (its last good version) rather than breaking its users.
        revived = False
        for key in found:
            for target in candidates[key].referenced_agents:
                if target not in candidates and target not in raw and target in last_good:
                    candidates[target] = last_good[target]
                    kept_deleted.setdefault(target, []).append(key)
                    revived = True
        if revived:
            continue
        if not found:
            break
        # Revert new versions first: an edit that breaks the set must not take down agents that were fine.
        revertible = [k for k in found if k in last_good and not _same(candidates[k], last_good[k])]
        for key in revertible or list(found):
            notes.setdefault(key, []).extend(found[key])
            if key in revertible:
                candidates[key] = last_good[key]
            else:
                del candidates[key]
                unavailable[key] = "invalid"

    entries: dict[str, ConfigEntry] = {}
    for key, item in raw.items():
        issues = _dedupe(notes.get(key, []))
        status: Status = (
            "invalid" if any(i.severity == "error" for i in issues) else "warning" if issues else "valid"
        )
        entries[key] = ConfigEntry(key, item.source, status, issues, local[key], candidates.get(key))
    for key, users in kept_deleted.items():
        config = last_good[key]
        message = (
            f"its source was removed, but it is still used by {', '.join(repr(u) for u in sorted(set(users)))}; "
            "the last good version keeps serving until no config refers to it"
        )
        issue = ConfigIssue(config.source, "$", message, key=key)
        entries[key] = ConfigEntry(key, config.source, "invalid", (issue,), None, config)
    return ConfigSet(dict(sorted(entries.items())), backend)


def diff(
    previous: ConfigSet | None, current: ConfigSet
) -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """Keys added, updated and removed between two sets' served configs."""
    before = previous.configs if previous else {}
    after = current.configs
    added = frozenset(after.keys() - before.keys())
    removed = frozenset(before.keys() - after.keys())
    updated = frozenset(k for k in after.keys() & before.keys() if not _same(after[k], before[k]))
    return added, updated, removed
