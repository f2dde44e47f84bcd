"""The keyring-backed MSAL cache: chunking under a 2,560-byte-per-entry limit, read-merge-write, locking."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

import pytest

from console.core.auth.cache_lock import CacheLock
from console.core.auth.chunked_store import MANIFEST_USER, ChunkedKeyringStore
from console.core.auth.errors import TokenCacheCorrupt, TokenCacheLocked
from console.core.auth.keyring_backend import file_keyring
from console.core.auth.token_cache import KeyringTokenCache
from tests.auth.helpers import MemoryKeyring, token_event

SERVICE = "obo-console/msal-token-cache"


def make_cache(backend, tmp: Path, chunk_size: int = 1200) -> KeyringTokenCache:
    return KeyringTokenCache(
        ChunkedKeyringStore(backend, SERVICE, chunk_size), CacheLock(tmp / "cache.lock", 5)
    )


def usernames(cache: KeyringTokenCache) -> set[str]:
    return {a["username"] for a in cache.accounts()}


def test_limited_keyring_really_rejects_big_values() -> None:
    backend = MemoryKeyring(limit=2560)
    with pytest.raises(ValueError, match="exceeds"):
        backend.set_password("s", "u", "x" * 1281)  # 2,562 bytes as UTF-16


def test_cache_is_chunked_under_the_per_entry_limit_and_round_trips(tmp_path: Path) -> None:
    backend = MemoryKeyring(limit=2560)
    cache = make_cache(backend, tmp_path)
    names = [f"user{i}@contoso.example" for i in range(8)]
    for name in names:
        cache.add(token_event(name, at_size=1500))
    serialized = len(cache.serialize().encode("utf-16-le"))
    chunks = [k for k in backend.values if k[1] != MANIFEST_USER]
    assert serialized > 4 * 2560  # far bigger than one entry could hold
    assert len(chunks) >= 3
    assert backend.largest <= 2560

    fresh = make_cache(backend, tmp_path)  # a new process would do exactly this
    assert usernames(fresh) == set(names)
    assert fresh.serialize() == cache.serialize()

    # Shrinking the cache removes the chunks that are no longer needed.
    before = len(backend.values)
    fresh.remove_home_accounts(None)
    assert usernames(make_cache(backend, tmp_path)) == set()
    assert len(backend.values) < before
    assert len([k for k in backend.values if k[1] != MANIFEST_USER]) == 1


def test_stale_writer_merges_instead_of_overwriting(tmp_path: Path) -> None:
    backend = MemoryKeyring()
    console = make_cache(backend, tmp_path)  # e.g. the TUI, loaded while the cache was empty
    headless = make_cache(backend, tmp_path)  # e.g. `obo-console login`, loaded at the same time
    headless.add(token_event("alice@contoso.example"))
    console.add(token_event("bob@contoso.example"))  # console never re-read before this change
    assert usernames(make_cache(backend, tmp_path)) == {"alice@contoso.example", "bob@contoso.example"}
    # The console adopted the merged state, and a reader picks up later writes by others.
    assert usernames(console) == {"alice@contoso.example", "bob@contoso.example"}
    headless.add(token_event("carol@contoso.example"))
    assert "carol@contoso.example" in usernames(console)


def test_removal_by_one_writer_and_addition_by_another_both_survive(tmp_path: Path) -> None:
    backend = MemoryKeyring()
    a = make_cache(backend, tmp_path)
    a.add(token_event("alice@contoso.example"))
    a.add(token_event("bob@contoso.example"))
    b = make_cache(backend, tmp_path)
    bob = next(x for x in a.accounts() if x["username"].startswith("bob"))
    a.remove_home_accounts({bob["home_account_id"]})
    b.add(token_event("carol@contoso.example"))  # b still believes bob is there; it must not bring him back
    state = make_cache(backend, tmp_path)
    assert usernames(state) == {"alice@contoso.example", "carol@contoso.example"}
    leftovers = [
        entry
        for bucket in state._cache.values()
        for entry in bucket.values()
        if entry.get("home_account_id") == bob["home_account_id"]
    ]
    assert leftovers == []  # no refresh token, id token or access token of bob at rest


def test_threads_racing_lose_nothing(tmp_path: Path) -> None:
    backend = MemoryKeyring(limit=2560)
    errors: list[BaseException] = []

    def writer(prefix: str) -> None:
        try:
            cache = make_cache(backend, tmp_path)  # each writer its own cache, as separate processes have
            for i in range(6):
                cache.add(token_event(f"{prefix}{i}@contoso.example", at_size=200))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(p,)) for p in ("t1-", "t2-", "t3-")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    expected = {f"{p}{i}@contoso.example" for p in ("t1-", "t2-", "t3-") for i in range(6)}
    assert usernames(make_cache(backend, tmp_path)) == expected


def _process_writer(home: str, prefix: str, count: int) -> None:
    import os

    os.environ["OBO_CONSOLE_HOME"] = home
    cache = make_cache(file_keyring(), Path(home))
    for i in range(count):
        cache.add(token_event(f"{prefix}{i}@contoso.example", at_size=300))


def test_processes_racing_on_the_file_keyring_lose_nothing(isolated_home: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_process_writer, args=(str(isolated_home), p, 5)) for p in ("p1-", "p2-")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    expected = {f"{p}{i}@contoso.example" for p in ("p1-", "p2-") for i in range(5)}
    assert usernames(make_cache(file_keyring(), isolated_home)) == expected
    assert (isolated_home / "keyring-fallback.cfg").stat().st_mode & 0o077 == 0


def test_interrupted_write_keeps_the_old_cache_and_leaves_no_orphans(tmp_path: Path) -> None:
    class CrashBeforeManifest(MemoryKeyring):
        crash = False

        def set_password(self, service: str, username: str, password: str) -> None:
            if self.crash and username == MANIFEST_USER and '"bank":"b"' in password:
                raise OSError("power cut")  # after the new chunks, before the manifest switches to them
            super().set_password(service, username, password)

    backend = CrashBeforeManifest(limit=2560)
    cache = make_cache(backend, tmp_path)
    cache.add(token_event("alice@contoso.example", at_size=1500))
    backend.crash = True
    with pytest.raises(OSError):
        make_cache(backend, tmp_path).add(token_event("bob@contoso.example", at_size=6000))
    backend.crash = False
    assert (
        sum(1 for k in backend.values if k[1].startswith("chunk.b.")) >= 3
    )  # the interrupted writer's chunks
    assert usernames(make_cache(backend, tmp_path)) == {"alice@contoso.example"}  # old state intact
    small = make_cache(backend, tmp_path)
    small.remove_home_accounts(None)
    # Only the manifest and one (empty-cache) chunk remain: the crashed writer's chunks were cleaned up.
    assert len(backend.values) == 2


def test_corrupt_cache_is_a_clear_error(tmp_path: Path) -> None:
    backend = MemoryKeyring()
    make_cache(backend, tmp_path).add(token_event("alice@contoso.example"))
    chunk = next(k for k in backend.values if k[1] != MANIFEST_USER)
    backend.values[chunk] = backend.values[chunk][:-8] + "AAAAAAAA"
    with pytest.raises(TokenCacheCorrupt) as info:
        make_cache(backend, tmp_path)
    assert "logout --all" in str(info.value)
    KeyringTokenCache(
        ChunkedKeyringStore(backend, SERVICE), CacheLock(tmp_path / "cache.lock"), load=False
    ).wipe()
    assert backend.values == {}


def test_lock_times_out_with_a_clear_error(tmp_path: Path) -> None:
    lock = CacheLock(tmp_path / "cache.lock", timeout=0.2)
    holding, release = threading.Event(), threading.Event()

    def holder() -> None:
        with lock.exclusive():
            holding.set()
            release.wait(10)

    t = threading.Thread(target=holder)
    t.start()
    try:
        assert holding.wait(5)
        with pytest.raises(TokenCacheLocked) as info, lock.shared():
            pass
        assert "locked by another obo-console process" in str(info.value)
    finally:
        release.set()
        t.join(5)
    with lock.exclusive():  # free again
        pass
