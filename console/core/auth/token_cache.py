"""MSAL's token cache, kept at rest only in a keyring, shared safely between processes — or, for a console
whose sign-ins must die with it (a web tab, ``OBO_CONSOLE_TOKEN_CACHE=memory``), only in its process's memory.

Every change MSAL makes goes through ``modify``; we journal the changed entries and, once MSAL's operation is
complete, READ-MERGE-WRITE under an exclusive lock: re-read the stored cache, apply only our changed entries
(per MSAL cache entry: a changed entry replaces the stored one, a removed entry is removed), write it back.
So the console and a headless command that both sign someone in never drop each other's accounts.
Before each lookup the cache reloads itself when another process has written a newer revision.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

import msal

from console.core.auth.errors import TokenCacheCorrupt

Entry = dict[str, Any]
CacheState = dict[str, dict[str, Entry]]

ACCOUNT = msal.TokenCache.CredentialType.ACCOUNT


class CacheStore(Protocol):
    """Where the cache's text is kept: ``ChunkedKeyringStore`` (a keyring) or ``MemoryStore``."""

    service: str

    def read(self) -> tuple[str | None, str | None]: ...
    def revision(self) -> str | None: ...
    def write(self, text: str, revision: str) -> Any: ...
    def clear(self) -> None: ...


class CacheGuard(Protocol):
    """Serialises read-merge-writes: ``CacheLock`` between processes, ``ProcessLock`` within one."""

    def shared(self) -> AbstractContextManager[None]: ...
    def exclusive(self) -> AbstractContextManager[None]: ...


class MemoryStore:
    """The cache's text in this process's memory only: no keyring and no file is touched; gone at exit."""

    service = "this process's memory"

    def __init__(self) -> None:
        self._text: str | None = None
        self._revision: str | None = None

    def read(self) -> tuple[str | None, str | None]:
        return self._text, self._revision

    def revision(self) -> str | None:
        return self._revision

    def write(self, text: str, revision: str) -> None:
        self._text, self._revision = text, revision

    def clear(self) -> None:
        self._text = self._revision = None


def _parse(text: str | None, where: str) -> CacheState:
    if not text:
        return {}
    try:
        state = json.loads(text)
    except ValueError as exc:
        raise TokenCacheCorrupt(
            f"The token cache in the keyring ({where}) is not valid JSON.",
            hint="Reset it with `obo-console logout --all`, then sign in again.",
        ) from exc
    return state if isinstance(state, dict) else {}


class KeyringTokenCache(msal.SerializableTokenCache):
    """A ``SerializableTokenCache`` persisted in a ``CacheStore`` (a keyring, or memory) with read-merge-write."""

    def __init__(self, store: CacheStore, lock: CacheGuard, *, load: bool = True) -> None:
        super().__init__()
        self._store = store
        self._file_lock = lock
        self._journal: dict[tuple[str, str], Entry | None] = {}
        self._depth = 0  # >0 while MSAL is in the middle of one logical change
        self._revision: str | None = None
        self.writes = 0  # how many times this instance wrote the keyring (for tests and benchmarks)
        if load:
            self.reload()

    # -- persistence -------------------------------------------------------------------------------
    def reload(self) -> None:
        """Replace the in-memory state with what the keyring holds (unsaved changes are flushed first)."""
        with self._lock:
            self.flush()
            with self._file_lock.shared():
                text, revision = self._store.read()
            self._cache = _parse(text, self._store.service)
            self._revision = revision
            self.has_state_changed = False

    def _reload_if_stale(self) -> None:
        with self._lock:
            if self._depth or self._journal:
                return  # mid-change: never swap the state under MSAL's feet
            with self._file_lock.shared():
                if self._store.revision() == self._revision:
                    return
                text, revision = self._store.read()
            self._cache = _parse(text, self._store.service)
            self._revision = revision

    def flush(self) -> None:
        """Write the journalled changes: re-read the stored cache, merge our entries, write, adopt the result."""
        with self._lock:
            if not self._journal:
                return
            with self._file_lock.exclusive():
                text, _ = self._store.read()
                stored = _parse(text, self._store.service)
                for (credential_type, key), entry in self._journal.items():
                    bucket = stored.setdefault(credential_type, {})
                    if entry is None:
                        bucket.pop(key, None)
                    else:
                        bucket[key] = entry
                revision = uuid.uuid4().hex
                self._store.write(json.dumps(stored, separators=(",", ":")), revision)
            self.writes += 1
            self._cache = stored
            self._revision = revision
            self._journal.clear()
            self.has_state_changed = False

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Group several changes into one read-merge-write."""
        with self._lock:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            if not self._depth:
                self.flush()

    # -- MSAL hooks --------------------------------------------------------------------------------
    def search(self, credential_type: str, target: Any = None, query: Any = None, *, now: Any = None) -> Any:
        self._reload_if_stale()
        return super().search(credential_type, target=target, query=query, now=now)

    def add(self, event: dict[str, Any], **kwargs: Any) -> None:
        with self.batch():
            super().add(event, **kwargs)

    def modify(
        self, credential_type: str, old_entry: Entry, new_key_value_pairs: Entry | None = None
    ) -> None:
        with self._lock:
            super().modify(credential_type, old_entry, new_key_value_pairs)
            key = self.key_makers[credential_type](**old_entry)
            current = self._cache.get(credential_type, {}).get(key) if new_key_value_pairs else None
            self._journal[(credential_type, key)] = copy.deepcopy(current)
            if not self._depth:
                self.flush()

    # -- helpers for sign-out ----------------------------------------------------------------------
    def accounts(self) -> list[Entry]:
        """Every account entry (all authorities), freshly read."""
        return [dict(entry) for entry in self.search(ACCOUNT)]

    def remove_home_accounts(self, home_account_ids: set[str] | None) -> int:
        """Remove every entry (accounts, id/access/refresh tokens) of these accounts, or of all accounts."""
        self._reload_if_stale()
        removed = 0
        with self.batch():
            for credential_type, bucket in list(self._cache.items()):
                for key, entry in list(bucket.items()):
                    owner = entry.get("home_account_id") if isinstance(entry, dict) else None
                    if owner and (home_account_ids is None or owner in home_account_ids):
                        bucket.pop(key, None)
                        self._journal[(credential_type, key)] = None
                        removed += credential_type == ACCOUNT
        return removed

    def wipe(self) -> None:
        """Delete the whole cache from the keyring (used by ``logout --all``; also clears a corrupt cache)."""
        with self._lock, self._file_lock.exclusive():
            self._store.clear()
            self._cache = {}
            self._revision = None
            self._journal.clear()
