"""The token cache lock between real processes: a second Python process holds it (driven over its stdin/stdout),
this one contends. No sleeps: every step waits for a line from the other process or for an event."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.core.auth.cache_lock import CacheLock
from console.core.auth.errors import TokenCacheLocked

REPO_ROOT = Path(__file__).resolve().parents[2]

# The other process: take the lock in the mode given, say "held", wait for a line, note the release in the log
# while still holding the lock, let go, say "released".
HOLDER = """
import sys
from pathlib import Path
from console.core.auth.cache_lock import CacheLock

path, mode, log = sys.argv[1], sys.argv[2], Path(sys.argv[3])
lock = CacheLock(Path(path), timeout=30)
with (lock.exclusive() if mode == "exclusive" else lock.shared()):
    print("held", flush=True)
    sys.stdin.readline()
    with log.open("a") as fh:
        fh.write("holder released\\n")
print("released", flush=True)
"""


class Holder:
    """The other process holding the lock until ``release()``."""

    def __init__(self, path: Path, mode: str, log: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(path), mode, str(log)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO_ROOT,
        )
        assert self.proc.stdout is not None and self.proc.stdout.readline() == "held\n"

    def release(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline() == "released\n"
        assert self.proc.wait(30) == 0

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)


@pytest.fixture
def lock_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "token-cache.lock"


@pytest.fixture
def holders() -> Iterator[list[Holder]]:
    started: list[Holder] = []
    yield started
    for holder in started:
        holder.stop()


def test_an_exclusive_hold_in_another_process_makes_this_one_wait_then_proceed(
    lock_path: Path, tmp_path: Path, holders: list[Holder]
) -> None:
    log = tmp_path / "order.log"
    holder = Holder(lock_path, "exclusive", log)
    holders.append(holder)

    # While the other process holds it, neither a reader nor a writer here gets in.
    short = CacheLock(lock_path, timeout=0.2)
    for attempt in (short.shared, short.exclusive):
        with pytest.raises(TokenCacheLocked) as refused, attempt():
            pass
        assert refused.value.message == (
            f"The token cache is locked by another obo-console process (waited 0.2 s for {lock_path})."
        )
        assert refused.value.hint is not None and "OBO_CONSOLE_TOKEN_CACHE_LOCK_TIMEOUT" in refused.value.hint

    # A patient writer here waits for the other process's release, then proceeds.
    trying, done = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            trying.set()
            with CacheLock(lock_path, timeout=30).exclusive(), log.open("a") as fh:
                fh.write("this process acquired\n")
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    assert trying.wait(30)
    holder.release()
    assert done.wait(30)
    thread.join(30)
    assert errors == []
    assert log.read_text().splitlines() == ["holder released", "this process acquired"]


def test_readers_in_two_processes_share_the_lock_and_keep_a_writer_out(
    lock_path: Path, tmp_path: Path, holders: list[Holder]
) -> None:
    holder = Holder(lock_path, "shared", tmp_path / "order.log")
    holders.append(holder)
    lock = CacheLock(lock_path, timeout=0.2)
    # A second reader gets in at once; a writer does not, even in that reader's process.
    with lock.shared(), pytest.raises(TokenCacheLocked), lock.exclusive():
        pass
    with pytest.raises(TokenCacheLocked), lock.exclusive():  # nor while only the other process reads
        pass
    holder.release()
    with lock.exclusive():  # free again
        pass


def test_a_writer_is_not_re_entrant_and_readers_nest(lock_path: Path) -> None:
    lock = CacheLock(lock_path, timeout=0.2)
    with lock.shared(), lock.shared():  # shared holds nest
        pass
    with lock.exclusive():
        with (
            pytest.raises(TokenCacheLocked),
            lock.exclusive(),
        ):  # the same thread asking again waits like anyone
            pass
        with pytest.raises(TokenCacheLocked), lock.shared():
            pass


def test_the_lock_file_is_private(lock_path: Path) -> None:
    with CacheLock(lock_path).shared():
        pass
    assert stat.S_IMODE(os.stat(lock_path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(lock_path.parent).st_mode) == 0o700
