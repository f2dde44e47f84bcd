"""`obo-console server` as a real process: the state file appears only when everything answers (0600, every
field), /healthz is ready, a second start is refused, a taken port is refused, SIGTERM removes the state file."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import pytest

from mcp_server.stack import LocalStack, StackPorts
from tests.fixtures.stack import server_argv

FIELDS = (
    "mcp_url",
    "authority",
    "tenant_id",
    "console_client_id",
    "api_client_id",
    "api_client_secret",
    "api_scope",
    "search_endpoint",
    "search_index",
    "search_api_key",
    "ca_cert",
    "users",
    "pid",
)


def server_command(home: Path, *extra: str) -> list[str]:
    return server_argv("--home", str(home), extra=extra)


def wait_for_file(path: Path, proc: subprocess.Popen[str], timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"server exited {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}"
            )
        if path.exists():
            return json.loads(path.read_text())
        time.sleep(0.1)
    raise AssertionError("no state file")


def test_server_process_lifecycle(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OBO_CONSOLE_")}
    proc = subprocess.Popen(
        server_command(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    state_file = home / "local-stack.json"
    try:
        state = wait_for_file(state_file, proc)
        assert stat.S_IMODE(state_file.stat().st_mode) == 0o600
        assert all(state.get(name) not in (None, "", []) for name in FIELDS), state
        assert state["pid"] == proc.pid
        assert {u["username"].split("@")[0] for u in state["users"]} == {
            "alice",
            "bob",
            "carol",
            "dave",
            "erin",
        }
        assert state["authority"].startswith("https://127.0.0.1:") and state["authority"].endswith(
            state["tenant_id"]
        )
        # Written only once every listener answers: all of them do by now.
        base = state["mcp_url"].removesuffix("/mcp")
        health = httpx2.get(f"{base}/healthz", trust_env=False, timeout=10)
        assert health.status_code == 200 and health.json()["status"] == "ready"
        assert httpx2.get(f"{state['search_endpoint']}/indexes", trust_env=False).status_code in (401, 403)
        assert httpx2.get(f"{state['calculator_url']}/healthz", trust_env=False).status_code == 200
        key_file = home / "localcloud" / "search-api-key"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert key_file.read_text().strip() == state["search_api_key"]

        # A second server with the same data dir refuses: a stack is already running.
        second = subprocess.run(server_command(home), capture_output=True, text=True, env=env, timeout=60)
        assert second.returncode == 1 and "already running" in second.stderr
        assert state_file.exists()

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert not state_file.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = proc.stderr.read() if proc.stderr else ""
    assert "local stack is running" in err and state["mcp_url"] in err
    for secret in (state["api_client_secret"], state["search_api_key"]):
        assert secret not in err and secret not in second.stderr


def test_a_taken_port_is_refused_and_nothing_is_left_running(tmp_path: Path) -> None:
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    taken = blocker.getsockname()[1]
    ports = StackPorts(identity=0, search=0, mcp=taken, calculator=None)
    stack = LocalStack(home=tmp_path, ports=ports, write_state_file=False)
    try:
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{taken}"):
            stack.start()
        assert stack.identity is None and stack.search is None and stack.mcp is None
    finally:
        blocker.close()


def test_cli_names_the_taken_port(tmp_path: Path) -> None:
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    try:
        port = blocker.getsockname()[1]
        cmd = server_command(tmp_path, "--identity-port", str(port))  # the later flag wins
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert result.returncode == 1
        assert f"cannot listen on 127.0.0.1:{port}" in result.stderr and "Traceback" not in result.stderr
        assert not (tmp_path / "local-stack.json").exists()
    finally:
        blocker.close()


def test_server_stops_when_the_console_that_launched_it_dies(tmp_path: Path) -> None:
    """A console killed with SIGKILL cannot stop its server; the server notices its parent is gone and stops."""
    home = tmp_path / "home"
    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("OBO_CONSOLE_")}
    env["OBO_CONSOLE_PARENT_PID"] = str(parent.pid)
    proc = subprocess.Popen(
        server_command(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    state_file = home / "local-stack.json"
    try:
        wait_for_file(state_file, proc)
        assert proc.poll() is None  # the parent lives: the server keeps serving
        parent.kill()
        parent.wait()
        assert proc.wait(timeout=30) == 0
        assert not state_file.exists()
        assert f"pid {parent.pid}) is gone" in (proc.stderr.read() if proc.stderr else "")
    finally:
        for p in (proc, parent):
            if p.poll() is None:
                p.kill()
                p.wait()
