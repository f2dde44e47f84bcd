"""Fault injection for the fault-scenario tests: a real `obo-console server` process, and a loopback proxy that
lets an MCP tool call reach the server, then kills the server before its answer gets through.

``HoldingProxy`` forwards bytes both ways. When a client request carries an MCP ``tools/call``, it forwards the
request, forwards only the status line and headers of the answer, runs ``on_hold`` (the test kills the server
process there) and closes the client's connection: the console saw the call start and the stack die mid-answer,
with no sleep and no timing race.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from mcp_server.stack_state import StackState, read_state, write_state
from tests.fixtures.stack import server_argv

_TOOLS_CALL = re.compile(rb'"method"\s*:\s*"tools/call"')


class HoldingProxy:
    def __init__(self, upstream_port: int, on_hold: Callable[[], None]) -> None:
        self.upstream_port = upstream_port
        self.on_hold = on_hold
        self.held = threading.Event()  # set once a tools/call answer was cut off
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._closed = False
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, name="holding-proxy", daemon=True).start()

    def close(self) -> None:
        self._closed = True
        for sock in [self._listener, *self._sockets]:
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            except OSError:
                client.close()  # the server is gone: refuse, as a dead port would
                continue
            self._sockets += [client, upstream]
            armed = threading.Event()
            threading.Thread(target=self._requests, args=(client, upstream, armed), daemon=True).start()
            threading.Thread(target=self._answers, args=(upstream, client, armed), daemon=True).start()

    def _requests(self, client: socket.socket, upstream: socket.socket, armed: threading.Event) -> None:
        seen = b""
        while True:
            try:
                data = client.recv(65536)
            except OSError:
                data = b""
            if not data:
                _shut(upstream)
                return
            seen = (seen + data)[-4096:]
            if not self.held.is_set() and _TOOLS_CALL.search(seen):
                armed.set()  # before forwarding: the answer cannot come back before the flag is up
            try:
                upstream.sendall(data)
            except OSError:
                _shut(client)
                return

    def _answers(self, upstream: socket.socket, client: socket.socket, armed: threading.Event) -> None:
        pending = b""
        while True:
            try:
                data = upstream.recv(65536)
            except OSError:
                data = b""
            if not data:
                _shut(client)
                return
            if not armed.is_set():
                client.sendall(data)
                continue
            pending += data
            end = pending.find(b"\r\n\r\n")
            if end < 0:
                continue
            client.sendall(pending[: end + 4])  # the answer has begun: status line and headers only
            self.on_hold()
            self.held.set()
            _shut(client)
            _shut(upstream)
            return


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


def launch_server(state_file: Path, timeout: float = 90.0) -> tuple[subprocess.Popen[bytes], StackState]:
    """`obo-console server` on free ports in its own process group; returns once its state file names it."""
    command = server_argv("--state-file", str(state_file))
    log = (state_file.parent / "server.log").open("wb")
    proc = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    log.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"obo-console server exited with {proc.returncode}: see {state_file.parent / 'server.log'}"
            )
        state = read_state(state_file) if state_file.exists() else None
        if state is not None and state.pid == proc.pid and state.mcp_url:
            return proc, state
        time.sleep(0.1)  # polling for the file the server writes once every service answers
    kill_group(proc)
    raise RuntimeError(f"obo-console server did not write {state_file} within {timeout:.0f} s")


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the server's whole process group (the way a crash or the OOM killer ends it) and reap it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def state_through(state: StackState, proxy_port: int, path: Path) -> Path:
    """A copy of the stack's state file whose MCP URL goes through the proxy (everything else unchanged)."""
    url = re.sub(r"^(https?://127\.0\.0\.1):\d+", rf"\g<1>:{proxy_port}", str(state.mcp_url))
    write_state(state.model_copy(update={"mcp_url": url}), path)
    return path
