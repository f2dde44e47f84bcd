"""``LiveConfigs``: the configs currently served, kept current by the store's watcher, for the runtime and
the TUI to read and subscribe to. Thread-safe; optionally publishes ``Notice`` events on an ``EventBus``."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from console.core.configs.catalog import ConfigChange, ConfigSet
from console.core.configs.model import AgentConfig
from console.core.configs.store import ConfigStore
from console.core.events import EventBus, Notice

log = logging.getLogger(__name__)

NOTICE_SOURCE = "configs"


class LiveConfigs:
    """Usage::

    live = LiveConfigs(open_store(settings), bus=bus)
    live.start()                       # loads everything, then watches for changes
    live.subscribe(lambda change: rebuild(change.changed))
    live.get("conversation")           # the served (last good) config
    live.stop()
    """

    def __init__(self, store: ConfigStore, bus: EventBus | None = None) -> None:
        self.store = store
        self.bus = bus
        self._cond = threading.Condition()
        self._current: ConfigSet = ConfigSet(backend=store.backend)
        self._last_change: ConfigChange | None = None
        self._online = True
        self._callbacks: dict[int, Callable[[ConfigChange], None]] = {}
        self._next_id = 0
        self._unwatch: Callable[[], None] | None = None
        self.version = 0  # bumps on every change notification

    # -- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> ConfigSet:
        """Load every config (raises UserError when the store is unreachable) and start live reload."""
        configs = self.store.load_all()
        with self._cond:
            self._current = configs
        self._publish_findings(configs.issues, initial=True)
        self._unwatch = self.store.watch(self._on_change)
        return configs

    def stop(self) -> None:
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None
        self.store.close()

    def __enter__(self) -> LiveConfigs:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- reading ---------------------------------------------------------------------------------------------
    @property
    def current(self) -> ConfigSet:
        with self._cond:
            return self._current

    @property
    def online(self) -> bool:
        """False while the store's backend (Redis) is unreachable; the last good configs keep serving."""
        with self._cond:
            return self._online

    @property
    def last_change(self) -> ConfigChange | None:
        with self._cond:
            return self._last_change

    def get(self, key: str) -> AgentConfig | None:
        return self.current.get(key)

    def subscribe(self, callback: Callable[[ConfigChange], None]) -> Callable[[], None]:
        """``callback(change)`` runs on the store's watcher thread after every reload; keep it quick (hand
        work to your own loop). Returns an unsubscribe function."""
        with self._cond:
            token = self._next_id
            self._next_id += 1
            self._callbacks[token] = callback

        def unsubscribe() -> None:
            with self._cond:
                self._callbacks.pop(token, None)

        return unsubscribe

    def wait_for(self, predicate: Callable[[ConfigSet], bool], timeout: float = 10.0) -> bool:
        """Block until ``predicate(current set)`` holds (True) or the timeout passes (False)."""
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self._current), timeout=timeout)

    def wait_for_change(self, after_version: int, timeout: float = 10.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.version > after_version, timeout=timeout)

    # -- changes ---------------------------------------------------------------------------------------------
    def _on_change(self, change: ConfigChange) -> None:
        with self._cond:
            self._current = change.configs
            self._last_change = change
            if change.reason == "disconnected":
                self._online = False
            elif change.reason in ("reconnected", "resync"):
                self._online = True
            self.version += 1
            callbacks = list(self._callbacks.values())
            self._cond.notify_all()
        self._publish_change(change)
        for callback in callbacks:
            try:
                callback(change)
            except Exception:  # one broken subscriber must not starve the others
                log.exception("LiveConfigs subscriber failed")

    def _notice(self, level: str, message: str) -> None:
        if self.bus is not None:
            self.bus.publish(Notice(level=level, message=message, source=NOTICE_SOURCE))

    def _publish_findings(self, issues: list, *, initial: bool = False) -> None:
        for issue in issues:
            level = "error" if issue.severity == "error" else "warning"
            suffix = "" if initial or issue.severity != "error" else " — the last good version keeps serving"
            self._notice(level, f"{issue}{suffix}")

    def _publish_change(self, change: ConfigChange) -> None:
        if change.reason == "disconnected":
            self._notice("error", change.message)
            return
        if change.reason == "reconnected":
            self._notice("info", change.message)
            return
        if change.changed:
            self._notice("info", f"configs reloaded ({change.summary()})")
        self._publish_findings([i for i in change.issues if i.severity == "error"])
