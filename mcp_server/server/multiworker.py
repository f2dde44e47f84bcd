"""``obo-console server --workers N``: N MCP server processes on one port, on uvicorn's own multiprocess
supervisor (no balancer of ours: the kernel hands each accepted connection to one worker).

The calling process binds the port (so port 0 works and the port is known at once) and starts a supervisor process
(``python -m mcp_server.server.multiworker``) that inherits the listening socket; the supervisor is uvicorn's
``Multiprocess``, which spawns the workers, restarts one that dies and stops them all on SIGTERM. Each worker builds
its own ``OboServer`` from the configuration passed in its environment (never on disk). Metrics are in
prometheus_client's multiprocess mode (a fresh directory per run), so ``/metrics`` on any worker is the sum over all;
share the OBO cache between workers with ``OBO_CONSOLE_OBO_CACHE=redis``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mcp_server.localcloud.serve import wait_until_accepting
from mcp_server.processes import pid_alive
from mcp_server.server.config import ServerConfig
from mcp_server.server.metrics import MULTIPROC_ENV

CONFIG_ENV = "OBO_CONSOLE_WORKER_CONFIG"  # the ServerConfig as JSON, secrets included: environment only
FD_ENV = "OBO_CONSOLE_WORKER_FD"  # the inherited listening socket
PARENT_ENV = "OBO_CONSOLE_WORKER_PARENT"  # the supervisor stops when this pid is gone
WORKERS_ENV = "OBO_CONSOLE_WORKERS"
_TUPLES = {"allowed_tenants", "search_fields"}
_PATHS = {"ca_cert"}


def config_to_json(config: ServerConfig) -> str:
    values: dict[str, Any] = {}
    for item in dataclasses.fields(config):
        value = getattr(config, item.name)
        if isinstance(value, SecretStr):
            value = {"secret": value.get_secret_value()}
        elif isinstance(value, Path):
            value = str(value)
        elif isinstance(value, tuple):
            value = list(value)
        values[item.name] = value
    return json.dumps(values)


def config_from_json(text: str) -> ServerConfig:
    values: dict[str, Any] = json.loads(text)
    for name, value in list(values.items()):
        if isinstance(value, dict) and set(value) == {"secret"}:
            values[name] = SecretStr(value["secret"])
        elif name in _TUPLES:
            values[name] = tuple(value)
        elif name in _PATHS and value is not None:
            values[name] = Path(value)
    return ServerConfig(**values)


class _NamedWorker:
    """Adds ``x-obo-console-worker: <pid>`` to every response: which worker answered (start-up checks, tests)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.header = (b"x-obo-console-worker", str(os.getpid()).encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def named(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), self.header]
            await send(message)

        await self.app(scope, receive, named if scope["type"] == "http" else send)


def worker_app() -> ASGIApp:
    """uvicorn's app factory, run in each worker process: this worker's ``OboServer``."""
    from mcp_server.server.app import create_server  # deferred: loaded in worker processes only

    config = config_from_json(os.environ[CONFIG_ENV])
    server = create_server(config)
    return _NamedWorker(server.asgi_app(config.base_url()))


class WorkerPool:
    """The supervisor process and its N workers, serving ``config`` on ``host:port`` (0: a free port)."""

    def __init__(
        self, config: ServerConfig, workers: int, *, host: str | None = None, port: int | None = None
    ):
        if workers < 1:
            raise ValueError("--workers must be at least 1")
        self.config = config
        self.workers = workers
        self.host = host or config.host
        self.port = config.port if port is None else port
        self.metrics_dir: Path | None = None
        self._sock: socket.socket | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 60.0) -> WorkerPool:
        # IPPROTO_TCP explicitly, as in serve.py: asyncio sets TCP_NODELAY only on sockets that say they are TCP.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise OSError(
                f"mcp-server: cannot listen on {self.host}:{self.port} ({exc.strerror}). "
                "Another process uses that port: stop it, or choose another port in settings."
            ) from exc
        sock.listen(1024)
        self._sock = sock
        self.port = sock.getsockname()[1]
        config = dataclasses.replace(
            self.config, host=self.host, port=self.port, public_url=self.config.public_url or self.base_url
        )
        self.metrics_dir = Path(tempfile.mkdtemp(prefix="obo-console-metrics-"))
        env = {
            **os.environ,
            CONFIG_ENV: config_to_json(config),
            FD_ENV: str(sock.fileno()),
            PARENT_ENV: str(os.getpid()),
            WORKERS_ENV: str(self.workers),
            MULTIPROC_ENV: str(self.metrics_dir),
        }
        self._process = subprocess.Popen(
            [sys.executable, "-m", "mcp_server.server.multiworker"], env=env, pass_fds=[sock.fileno()]
        )
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout: float) -> None:
        """Every worker has started serving (each answers ``/healthz`` with its own pid)."""
        import httpx2  # deferred: only the parent polls

        wait_until_accepting(self.host, self.port, timeout=timeout)
        deadline = time.monotonic() + timeout
        seen: set[str] = set()
        while len(seen) < self.workers:
            if self._process is None or self._process.poll() is not None:
                raise RuntimeError(
                    "the MCP server's worker supervisor exited while starting (see its log above)"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{len(seen)} of {self.workers} MCP server workers started within {timeout} s"
                )
            try:
                # A new connection each time: the kernel spreads them over the workers.
                response = httpx2.get(f"{self.base_url}/healthz", timeout=5.0, trust_env=False)
                seen.add(response.headers.get("x-obo-console-worker", ""))
            except httpx2.HTTPError:
                time.sleep(0.05)
        seen.discard("")

    def stop(self, timeout: float = 15.0) -> None:
        if self._process is not None:
            if self._process.poll() is None:
                self._process.send_signal(signal.SIGTERM)
                try:
                    self._process.wait(timeout)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait()
            self._process = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self.metrics_dir is not None:
            shutil.rmtree(self.metrics_dir, ignore_errors=True)
            self.metrics_dir = None

    def __enter__(self) -> WorkerPool:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _watch_parent(parent: int) -> None:
    """The supervisor stops (SIGTERM to itself: the workers stop too) once the process that started it is gone."""
    while pid_alive(parent):
        time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGTERM)


def _supervise() -> None:
    import uvicorn  # deferred: the supervisor process only
    from uvicorn.supervisors import Multiprocess  # deferred: the supervisor process only

    for name in os.listdir(os.environ[MULTIPROC_ENV]):  # a fresh run counts from zero
        os.unlink(os.path.join(os.environ[MULTIPROC_ENV], name))
    sock = socket.socket(fileno=int(os.environ[FD_ENV]))
    workers = int(os.environ[WORKERS_ENV])
    config = uvicorn.Config(
        "mcp_server.server.multiworker:worker_app",
        factory=True,
        workers=workers,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=2,
    )
    threading.Thread(target=_watch_parent, args=(int(os.environ[PARENT_ENV]),), daemon=True).start()
    Multiprocess(config, sockets=[sock]).run()


if __name__ == "__main__":
    _supervise()
