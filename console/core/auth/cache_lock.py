"""A cross-process lock for the token cache: a lock file in the data dir.

Readers take it shared, writers exclusive, so the console and a headless command never interleave a
read-merge-write. Every acquisition opens its own file descriptor, which makes the lock exclusive between
threads of one process too (flock locks belong to the open file description).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from console.core.auth.errors import TokenCacheLocked

try:  # POSIX
    import fcntl

    def _try_lock(fd: int, exclusive: bool) -> bool:
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)

except ImportError:  # pragma: no cover - Windows: msvcrt has exclusive byte-range locks only
    import msvcrt

    def _try_lock(fd: int, exclusive: bool) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)


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
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            deadline = time.monotonic() + self.timeout
            delay = 0.002
            while not _try_lock(fd, exclusive):
                if time.monotonic() >= deadline:
                    raise TokenCacheLocked(
                        f"The token cache is locked by another obo-console process (waited {self.timeout:g} s "
                        f"for {self.path}).",
                        hint="Wait for the other sign-in to finish, or stop the process that hangs; "
                        "raise the wait with OBO_CONSOLE_TOKEN_CACHE_LOCK_TIMEOUT.",
                    )
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
            try:
                yield
            finally:
                _unlock(fd)
        finally:
            os.close(fd)
