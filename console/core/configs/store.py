"""The config store interface, and the part every store shares: holding the served set, validating before
writing, and telling subscribers what changed."""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from console.core.configs.catalog import (
    ChangeReason,
    CheckCache,
    ConfigChange,
    ConfigEntry,
    ConfigSet,
    RawConfig,
    diff,
    reconcile,
)
from console.core.configs.model import KEY_PATTERN, AgentConfig, ConfigIssue
from console.core.configs.validation import ValidationContext
from mcp_server.errors import UserError

log = logging.getLogger(__name__)

ChangeCallback = Callable[[ConfigChange], None]


class ConfigRejected(UserError):
    """A put or delete refused because the result would be invalid; nothing was written."""

    def __init__(self, message: str, issues: list[ConfigIssue]) -> None:
        details = "\n".join(f"  {issue}" for issue in issues)
        super().__init__(
            f"{message}\n{details}" if details else message,
            hint="Fix the config (`obo-console configs validate PATH` lists every problem) and try again.",
        )
        self.issues = issues


@runtime_checkable
class ConfigStore(Protocol):
    """Where agent configs live. Every method is safe to call from any thread."""

    backend: str

    def load_all(self) -> ConfigSet:
        """Read every config from the source, validate them together, and serve the result."""
        ...

    def current(self) -> ConfigSet:
        """The set being served (no I/O)."""
        ...

    def get(self, key: str) -> AgentConfig | None: ...

    def put(self, config_json: str | bytes | Mapping[str, Any], key: str) -> ConfigEntry:
        """Validate, then write. Raises ConfigRejected (writing nothing) when the config has errors."""
        ...

    def delete(self, key: str) -> None:
        """Remove a config. Raises ConfigRejected when other configs still use it."""
        ...

    def watch(self, callback: ChangeCallback) -> Callable[[], None]:
        """Call ``callback`` (on the store's watcher thread) after every reload; returns an unsubscribe."""
        ...

    def close(self) -> None: ...


def _as_text(config_json: str | bytes | Mapping[str, Any]) -> str | bytes:
    if isinstance(config_json, Mapping):
        return json.dumps(config_json, indent=2, ensure_ascii=False) + "\n"
    return config_json


class ReconcilingStore:
    """Shared machinery: the raw sources by key, the served set, and subscribers. Subclasses read and write
    the backend and call ``_apply`` with what changed."""

    backend: str = ""

    def __init__(self, ctx: ValidationContext) -> None:
        self.ctx = ctx
        self._lock = threading.RLock()  # guards _raw and _set; held while reconciling, never while notifying
        # Keeps reloads and their notifications in order; always taken before _lock.
        self._notify_lock = threading.RLock()
        self._raw: dict[str, RawConfig] = {}
        self._checked: CheckCache = {}  # per-source validation results, so a reload re-checks only changes
        self._set = ConfigSet(backend=self.backend)
        self._callbacks: dict[int, ChangeCallback] = {}
        self._next_id = 0
        # The backend's watcher thread: started with the first subscriber, stopped by close().
        self._stop = threading.Event()
        self._ready = threading.Event()  # set by _watch_loop once it cannot miss a change
        self._thread: threading.Thread | None = None

    # -- backend hooks ---------------------------------------------------------------------------------
    def _read_all(self) -> dict[str, RawConfig]:
        raise NotImplementedError

    def _write(self, key: str, text: str | bytes) -> RawConfig:
        raise NotImplementedError

    def _remove(self, key: str) -> None:
        raise NotImplementedError

    def _start_watching(self) -> None:
        """Start the backend's watcher (called once, when the first subscriber arrives)."""

    def _watch_loop(self) -> None:
        """The backend's watcher (run by ``_start_watcher``): set ``_ready`` once watching, end when ``_stop``."""
        raise NotImplementedError

    # -- the interface ---------------------------------------------------------------------------------
    def load_all(self) -> ConfigSet:
        raw = self._read_all()
        return self._apply(raw, replace=True, reason="load").configs

    def current(self) -> ConfigSet:
        with self._lock:
            return self._set

    def get(self, key: str) -> AgentConfig | None:
        return self.current().get(key)

    def sources(self) -> dict[str, RawConfig]:
        """Every config exactly as the backend holds it (as of the last load or change), by key."""
        with self._lock:
            return dict(self._raw)

    def put(self, config_json: str | bytes | Mapping[str, Any], key: str) -> ConfigEntry:
        text = _as_text(config_json)
        with self._notify_lock, self._lock:
            candidate = RawConfig(key, self._source_for(key), text)
            trial = reconcile(
                {**self._raw, key: candidate}, self._set, self.ctx, self.backend, dict(self._checked)
            )
            entry = trial.entries[key]
            if entry.status == "invalid" or entry.serving_last_good:
                raise ConfigRejected(f"Refused to write {key!r}: the config is invalid.", list(entry.issues))
            written = self._write(key, text)
            self._apply({key: written}, replace=False, reason="put")
            return self._set.entries[key]

    def put_many(
        self, items: Mapping[str, str | bytes | Mapping[str, Any]]
    ) -> tuple[list[ConfigEntry], dict[str, list[ConfigIssue]]]:
        """Validate several configs together (they may refer to each other), write the good ones, and
        return (written entries, issues of the refused ones by key). A refused key is left untouched."""
        texts = {key: _as_text(value) for key, value in items.items()}
        with self._notify_lock, self._lock:
            candidates = {key: RawConfig(key, self._source_for(key), text) for key, text in texts.items()}
            trial = reconcile(
                {**self._raw, **candidates}, self._set, self.ctx, self.backend, dict(self._checked)
            )
            refused = {
                key: list(trial.entries[key].issues)
                for key in texts
                if trial.entries[key].status == "invalid" or trial.entries[key].serving_last_good
            }
            good = {key: text for key, text in texts.items() if key not in refused}
            written = {key: self._write(key, text) for key, text in good.items()}
            if written:
                self._apply(written, replace=False, reason="put")
            return [self._set.entries[key] for key in written], refused

    def delete(self, key: str) -> None:
        if not re.match(KEY_PATTERN, key):  # never let a key name a path or key outside the store
            raise ConfigRejected(f"Refused to delete {key!r}: not an agent key.", [])
        with self._notify_lock, self._lock:
            users = sorted(k for k, c in self._set.configs.items() if k != key and key in c.referenced_agents)
            if users:
                source = self._set.entries[key].source if key in self._set.entries else key
                issue = ConfigIssue(source, "$", f"still used by {', '.join(users)}", key=key)
                raise ConfigRejected(f"Refused to delete {key!r}: other agents use it.", [issue])
            self._remove(key)
            self._apply({key: None}, replace=False, reason="delete")

    def watch(self, callback: ChangeCallback) -> Callable[[], None]:
        with self._lock:
            token = self._next_id
            self._next_id += 1
            first = not self._callbacks
            self._callbacks[token] = callback
        if first:
            self._start_watching()

        def unsubscribe() -> None:
            with self._lock:
                self._callbacks.pop(token, None)

        return unsubscribe

    def close(self) -> None:
        with self._lock:
            self._callbacks.clear()
        self._stop_watcher()

    # -- the watcher thread ----------------------------------------------------------------------------
    def _start_watcher(self, name: str) -> None:
        """Run ``_watch_loop`` on a daemon thread and wait (5 s at most) until it is watching."""
        self._stop.clear()
        self._ready.clear()
        self._thread = threading.Thread(target=self._watch_loop, name=name, daemon=True)
        self._thread.start()
        self._ready.wait(timeout=5)

    def _stop_watcher(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    # -- shared machinery ------------------------------------------------------------------------------
    def _source_for(self, key: str) -> str:
        raise NotImplementedError

    def _apply(
        self,
        updates: Mapping[str, RawConfig | None],
        *,
        replace: bool,
        reason: ChangeReason,
        message: str = "",
        always_notify: bool = False,
    ) -> ConfigChange:
        """Fold source updates (None = deleted) into the raw sources, reconcile, and notify subscribers when
        the served set or the findings changed. ``replace`` means ``updates`` is the complete source."""
        with self._notify_lock:
            with self._lock:
                previous = self._set
                if replace:
                    raw = {k: v for k, v in updates.items() if v is not None}
                    touched = set(raw) | set(self._raw)
                else:
                    raw = dict(self._raw)
                    for key, value in updates.items():
                        if value is None:
                            raw.pop(key, None)
                        else:
                            raw[key] = value
                    touched = set(updates)
                self._raw = raw
                self._set = reconcile(raw, previous, self.ctx, self.backend, self._checked)
                added, updated, removed = diff(previous, self._set)
                issues = tuple(
                    issue
                    for key in sorted(touched | added | updated | removed)
                    if key in self._set.entries
                    for issue in self._set.entries[key].issues
                )
                change = ConfigChange(self._set, reason, added, updated, removed, issues, message)
                findings_changed = [e.issues for e in previous.entries.values()] != [
                    e.issues for e in self._set.entries.values()
                ] or set(previous.entries) != set(self._set.entries)
                callbacks = list(self._callbacks.values())
            if change.changed or findings_changed or always_notify or reason == "load":
                for callback in callbacks:
                    try:
                        callback(change)
                    except Exception:  # a broken subscriber must not stop reloads for the others
                        log.exception("config change subscriber failed")
            return change

    def _notify(self, reason: ChangeReason, message: str) -> None:
        """Tell subscribers about something that is not a content change (connection lost or back)."""
        with self._notify_lock:
            with self._lock:
                change = ConfigChange(self._set, reason, message=message)
                callbacks = list(self._callbacks.values())
            for callback in callbacks:
                try:
                    callback(change)
                except Exception:
                    log.exception("config change subscriber failed")
