"""`obo-console server --workers N` as a real process: N worker processes answer on the one port, SIGTERM stops
every one of them; an out-of-range count and a Redis cache without a key are refused before anything starts."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx2

from mcp_server.processes import pid_alive
from tests.server.test_cli import server_command, wait_for_file


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("OBO_CONSOLE_") and k != "REDIS_URL"}


def test_server_with_two_workers_serves_from_both_and_stops_them_all(tmp_path: Path) -> None:
    home = tmp_path / "home"
    proc = subprocess.Popen(
        server_command(home, "--workers", "2"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        state = wait_for_file(home / "local-stack.json", proc)
        base = state["mcp_url"].removesuffix("/mcp")
        pids: set[int] = set()
        deadline = time.monotonic() + 30
        while len(pids) < 2 and time.monotonic() < deadline:  # new connections: the kernel spreads them
            response = httpx2.get(f"{base}/healthz", trust_env=False, timeout=10)
            assert response.status_code == 200 and response.json()["status"] == "ready"
            pids.add(int(response.headers["x-obo-console-worker"]))
        assert len(pids) == 2 and proc.pid not in pids
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        deadline = time.monotonic() + 30
        while any(pid_alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(pid_alive(pid) for pid in pids)  # no worker outlives the server
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = proc.stderr.read() if proc.stderr else ""
    assert f"{state['mcp_url']} (2 workers)" in err


def test_workers_out_of_range_is_refused(tmp_path: Path) -> None:
    result = subprocess.run(
        server_command(tmp_path / "home", "--workers", "0"),
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
    )
    assert result.returncode == 1
    assert "--workers 0 is out of range." in result.stderr and "Use 1–64" in result.stderr


def test_redis_cache_without_a_key_is_refused_before_anything_starts(tmp_path: Path) -> None:
    env = _env() | {"OBO_CONSOLE_OBO_CACHE": "redis"}
    result = subprocess.run(
        server_command(tmp_path / "home", "--workers", "2"),
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 1
    assert "OBO_CONSOLE_OBO_CACHE=redis needs OBO_CONSOLE_OBO_CACHE_KEY" in result.stderr
    assert not (tmp_path / "home" / "local-stack.json").exists()
