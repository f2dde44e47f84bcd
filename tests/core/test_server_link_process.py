"""ServerLink with real processes: it launches `obo-console server`, waits for it, stops only what it launched,
attaches to a stack someone else runs, and survives that stack dying and coming back."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from console.core.events import EventBus, Notice, ServerStatusChanged
from console.core.link_state import LinkState, LinkStatus, LinkTimings
from console.core.server_checks import probe_health
from console.core.server_link import ServerLink
from console.core.settings import Settings
from mcp_server.errors import UserError
from mcp_server.processes import pid_alive
from mcp_server.stack_state import StackState, read_state, write_state

T = TypeVar("T")

FAST = LinkTimings(
    startup_timeout=60, poll_interval=0.2, probe_timeout=2, backoff_base=0.1, backoff_max=0.8, stop_grace=10
)


def local_settings() -> Settings:
    return Settings(mode="local", mcp_port=0, identity_port=0, search_port=0, calculator_port=0)


def wait_until(probe: Callable[[], T | None], timeout: float) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value is not None:
            return value
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout} s")


def wait_dead(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    return False


def test_launch_attach_kill_relaunch_and_stop_only_what_was_launched(isolated_home: Path) -> None:
    settings = local_settings()
    bus = EventBus()
    seen: list[object] = []
    bus.subscribe(seen.append)
    owner = ServerLink(settings, bus=bus, timings=FAST)
    guest: ServerLink | None = None
    try:
        # 1. Nothing runs: the link launches `obo-console server` and waits for the state file and /healthz.
        status = owner.start()
        assert status.state is LinkState.READY and status.launched and owner.launched
        state = read_state(settings.effective_state_file())
        assert state is not None and state.pid == owner.server_pid and state.mcp_url == owner.mcp_url
        assert (
            owner.mcp_url and owner.mcp_url.startswith("http://127.0.0.1:") and owner.mcp_url.endswith("/mcp")
        )
        assert probe_health(owner.mcp_url).state is LinkState.READY
        assert any(
            line.stream == "console" and "starting the local stack" in line.text for line in owner.log_tail()
        )
        first_pid = owner.server_pid
        assert first_pid is not None

        # 2. A second console attaches to the running stack instead of launching another.
        guest_states: list[LinkStatus] = []
        guest = ServerLink(settings, timings=FAST)
        guest.subscribe_status(guest_states.append)
        assert guest.start().state is LinkState.READY
        assert not guest.launched and guest.mcp_url == owner.mcp_url and guest.log_tail() == []

        # 3. The stack dies: both say so; the owner relaunches it on the same ports; the guest reconnects.
        owner_states: list[LinkStatus] = []
        owner.subscribe_status(owner_states.append)
        ready_before = owner_states[-1]
        assert ready_before.state is LinkState.READY
        os.killpg(first_pid, signal.SIGKILL)
        down = guest.wait_for(LinkState.DOWN, LinkState.RECONNECTING, timeout=10)
        assert down.url == owner.mcp_url
        back = wait_until(
            lambda: next(
                (
                    s
                    for s in owner_states[owner_states.index(ready_before) + 1 :]
                    if s.state is LinkState.READY
                ),
                None,
            ),
            timeout=60,
        )
        assert back.detail.startswith("reconnected")
        assert any(s.state is LinkState.DOWN and "exited" in s.detail for s in owner_states)
        assert guest.wait_for(LinkState.READY, timeout=30).detail.startswith("reconnected")
        assert owner.server_pid not in (None, first_pid) and not pid_alive(first_pid)
        assert guest.mcp_url == owner.mcp_url  # same port after the relaunch
        retries = [
            s for s in guest_states if s.state is LinkState.RECONNECTING and s.next_retry_in is not None
        ]
        assert retries and retries[0].attempt == 1
        delays = [s.next_retry_in for s in retries]
        assert delays == sorted(delays) and max(delays) <= FAST.backoff_max  # exponential, capped
        assert any(s.state is LinkState.DOWN for s in guest_states)

        # 4. Closing the guest leaves the stack running: it did not launch it.
        guest.close()
        assert guest.status.state is LinkState.STOPPED
        second_pid = owner.server_pid
        assert second_pid is not None and pid_alive(second_pid)
        assert probe_health(owner.mcp_url).state is LinkState.READY
    finally:
        if guest is not None:
            guest.close()
        owner.close()
    # 5. Closing the owner stops what it launched; a clean shutdown removes the state file.
    assert wait_dead(second_pid)
    assert owner.status.state is LinkState.STOPPED and "stopped the server" in owner.status.detail
    assert not settings.effective_state_file().exists()
    kinds = [e.state for e in seen if isinstance(e, ServerStatusChanged)]
    assert kinds[0] == "connecting" and "ready" in kinds and "down" in kinds and kinds[-1] == "stopped"
    assert any(isinstance(e, Notice) and e.level == "warning" and e.source == "server" for e in seen)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("leftover", ["none", "dead pid", "live pid, nothing listening"])
def test_no_launch_means_a_clear_error_when_nothing_runs(leftover: str) -> None:
    settings = local_settings()
    if leftover != "none":
        # A state file left behind: its process is gone, or its pid now belongs to someone else.
        dead = subprocess.run(
            [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
        )
        pid = int(dead.stdout) if leftover == "dead pid" else os.getpid()
        write_state(
            StackState(mcp_url=f"http://127.0.0.1:{free_port()}/mcp", pid=pid),
            settings.effective_state_file(),
        )
    link = ServerLink(settings, launch=False, timings=FAST)
    started = time.monotonic()
    with pytest.raises(UserError, match="No local stack is running"):
        link.start()
    assert time.monotonic() - started < 10  # judged at once, not after the startup timeout
    assert link.status.state is LinkState.DOWN
    link.close()


def test_a_server_that_exits_at_start_is_reported_with_its_log() -> None:
    script = (
        "import sys; print('listening...'); print('boom: port 8000 is taken', file=sys.stderr); sys.exit(3)"
    )
    link = ServerLink(local_settings(), server_command=[sys.executable, "-c", script], timings=FAST)
    with pytest.raises(UserError) as info:
        link.start()
    message = str(info.value)
    assert "exited with code 3" in message and "boom: port 8000 is taken" in message
    assert link.status.state is LinkState.DOWN and not link.launched
    link.close()


def test_a_server_that_never_gets_ready_is_killed_even_if_it_ignores_sigterm() -> None:
    script = (
        "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('still warming up', flush=True); time.sleep(120)"
    )
    timings = LinkTimings(startup_timeout=1.5, poll_interval=0.2, probe_timeout=1, stop_grace=0.5)
    link = ServerLink(local_settings(), server_command=[sys.executable, "-u", "-c", script], timings=timings)
    pids: list[int] = []
    link.subscribe_status(lambda s: pids.append(link.server_pid) if link.server_pid else None)
    with pytest.raises(UserError) as info:
        link.start()
    assert "wrote no state file within" in str(info.value) and "still warming up" in str(info.value)
    assert pids and wait_dead(pids[-1], timeout=5)  # SIGTERM ignored → SIGKILL
    link.close()
