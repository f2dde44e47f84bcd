"""A cross-process lock for the token cache: a lock file in the data dir, held through ``filelock``.

Readers take it shared, writers exclusive, so the console and a headless command never interleave a
read-merge-write. ``filelock.ReadWriteLock`` keeps the lock in SQLite's own file locking, which gives shared and
exclusive holds on every platform. Every acquisition uses its own lock instance (``is_singleton=False``): that
makes the lock exclusive between threads of one process too, and never re-entrant for a writer (a thread that
already holds the lock and asks for it exclusively waits, then times out, as any other contender would).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import ReadWriteLock, Timeout

from console.core.auth.errors import TokenCacheLocked


class CacheLock:
    """``with lock.exclusive(): ...`` / ``with lock.shared(): ...``; raises TokenCacheLocked after ``timeout`` s."""

    def __init__(self, path: Path, timeout: float = 10.0) -> None:
        self.path = path
        self.timeout = timeout

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._hold(exclusive=True):
            yield

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._hold(exclusive=False):
            yield

    @contextmanager
    def _hold(self, *, exclusive: bool) -> Iterator[None]:
        self._create_private()
        lock = ReadWriteLock(self.path, timeout=max(self.timeout, 0.0), is_singleton=False)
        try:
            try:
                lock.acquire_write() if exclusive else lock.acquire_read()
            except Timeout:
                raise self._locked() from None
            try:
                yield
            finally:
                lock.release()
        finally:
            lock.close()

    def _create_private(self) -> None:
        """The data dir and the lock file readable by this user only (SQLite would create it world-readable)."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))

    def _locked(self) -> TokenCacheLocked:
        return TokenCacheLocked(
            f"The token cache is locked by another obo-console process (waited {self.timeout:g} s for {self.path}).",
            hint="Wait for the other sign-in to finish, or stop the process that hangs; "
            "raise the wait with OBO_CONSOLE_TOKEN_CACHE_LOCK_TIMEOUT.",
        )


class ProcessLock:
    """The lock for a cache kept in this process's memory (``MemoryStore``): between its threads only, and no lock
    file. Shared holds are exclusive too (readers are short; one lock keeps it simple)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._lock:
            yield

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._lock:
            yield
