"""Run an ASGI app with uvicorn on its own thread and event loop, on a port bound before it starts.

Each local service gets one of these (docs/architecture.md: each on its own port and event loop), so a
slow request in one never stalls another, and tests can use port 0 and read the port back.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn

KEEP_ALIVE_SECONDS = 75


class _Server(uvicorn.Server):
    """uvicorn's server, whose stop does not wait on idle TLS connections.

    uvicorn closes idle keep-alive connections when it stops, but closing a TLS connection waits for the client's
    close_notify, which an idle keep-alive client (MSAL's session, a browser on the sign-in page) never sends: every
    stop sat out the whole graceful timeout and logged "timeout graceful shutdown exceeded". Once no request has
    been in flight for ``SETTLE_SECONDS`` (the last answers are on their way: loopback clients read them at once),
    a connection with nothing left to send is aborted instead."""

    SETTLE_SECONDS = 0.2

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        reaper = asyncio.create_task(self._abort_idle_connections())
        try:
            await super().shutdown(sockets)
        finally:
            reaper.cancel()

    async def _abort_idle_connections(self) -> None:
        quiet_since = asyncio.get_running_loop().time()  # uvicorn asks every connection to close meanwhile
        while True:
            await asyncio.sleep(0.05)
            now = asyncio.get_running_loop().time()
            if self.server_state.tasks:  # a request is still being answered: its connection closes after it
                quiet_since = now
                continue
            if now - quiet_since < self.SETTLE_SECONDS:
                continue
            for connection in list(self.server_state.connections):
                transport = getattr(connection, "transport", None)
                if isinstance(transport, asyncio.Transport) and not transport.get_write_buffer_size():
                    transport.abort()


@dataclass
class TLSFiles:
    certfile: Path
    keyfile: Path


@dataclass
class ThreadedServer:
    """An ASGI app served on ``host:port`` (0 = any free port) from a daemon thread."""

    app: Any
    name: str
    host: str = "127.0.0.1"
    port: int = 0
    tls: TLSFiles | None = None
    log_level: str = "warning"
    proxy_headers: bool = True  # uvicorn's default: trust X-Forwarded-For from loopback clients
    _server: uvicorn.Server | None = field(default=None, init=False, repr=False)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)
    _sock: socket.socket | None = field(default=None, init=False, repr=False)
    _error: BaseException | None = field(default=None, init=False, repr=False)

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def start(self, timeout: float = 15.0) -> ThreadedServer:
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted connections only when the socket says it is
        # TCP; with proto 0 every keep-alive response waited ~40 ms on Nagle + delayed ACK (measured).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise OSError(
                f"{self.name}: cannot listen on {self.host}:{self.port} ({exc.strerror}). "
                "Another process uses that port: stop it, or choose another port in settings."
            ) from exc
        sock.listen(128)
        sock.setblocking(False)
        self._sock = sock
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_level=self.log_level,
            lifespan="auto",
            ssl_certfile=str(self.tls.certfile) if self.tls else None,
            ssl_keyfile=str(self.tls.keyfile) if self.tls else None,
            timeout_graceful_shutdown=2,
            # Idle connections stay open as long as behind a typical load balancer (uvicorn's 5 s default closes
            # them so soon that a client reusing one after a short pause races the close: RemoteDisconnected).
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
            access_log=False,
            proxy_headers=self.proxy_headers,
        )
        # uvicorn captures signals only on the main thread; this server runs on its own, so the console keeps
        # Ctrl+C and SIGTERM.
        self._server = _Server(config)
        self._thread = threading.Thread(target=self._run, name=f"svc-{self.name}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if self._error is not None or not self._thread.is_alive():
                raise RuntimeError(f"{self.name} failed to start: {self._error!r}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} did not start within {timeout} s")
            time.sleep(0.01)
        wait_until_accepting(self.host, self.port, timeout=timeout, tls=self.tls is not None)
        return self

    def _run(self) -> None:
        assert self._server is not None and self._sock is not None
        try:
            asyncio.run(self._server.serve(sockets=[self._sock]))
        except BaseException as exc:  # surfaced by start()/stop()
            self._error = exc

    def stop(self, timeout: float = 10.0) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout)
        if self._sock is not None:
            self._sock.close()
        self._server = None
        self._thread = None

    def __enter__(self) -> ThreadedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_until_accepting(host: str, port: int, *, timeout: float = 15.0, tls: bool = False) -> None:
    """Block until ``host:port`` accepts a TCP connection (and completes a TLS handshake when ``tls``)."""
    deadline = time.monotonic() + timeout
    last: OSError | None = None
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1.0) as conn:
                if tls:
                    ctx = ssl.create_default_context()
                    ctx.check_hostname = False
                    ctx.verify_mode = ssl.CERT_NONE  # reachability only; clients verify against the CA
                    with ctx.wrap_socket(conn, server_hostname=host):
                        pass
                return
        except OSError as exc:
            last = exc
            time.sleep(0.02)
    raise TimeoutError(f"{host}:{port} did not accept connections within {timeout} s: {last}")
