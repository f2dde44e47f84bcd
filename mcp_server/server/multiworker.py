"""``obo-console server --workers N``: N MCP server processes on one port, on uvicorn's own multiprocess
supervisor; the kernel balances (``SO_REUSEPORT``: each worker listens on a socket of its own on the same port and
the kernel spreads new connections evenly over them — with one shared socket, whichever worker woke first took a
whole burst of connections, and keep-alive clients stayed there).

The calling process reserves the port (bound, not listening, so port 0 works and the port is known at once) and
starts a supervisor process (``python -m mcp_server.server.multiworker``): uvicorn's ``Multiprocess``, which spawns
the workers, restarts one that dies and stops them all on SIGTERM. Each worker builds
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

from prometheus_client.multiprocess import mark_process_dead
from pydantic import SecretStr
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn import Config as UvicornConfig
from uvicorn.importer import import_from_string
from uvicorn.supervisors.multiprocess import Multiprocess, Process

from mcp_server.localcloud.serve import KEEP_ALIVE_SECONDS, wait_until_accepting
from mcp_server.processes import pid_alive
from mcp_server.server.config import ServerConfig
from mcp_server.server.metrics import MULTIPROC_ENV

CONFIG_ENV = "OBO_CONSOLE_WORKER_CONFIG"  # the ServerConfig as JSON, secrets included: environment only
PARENT_ENV = "OBO_CONSOLE_WORKER_PARENT"  # the supervisor stops when this pid is gone
WORKERS_ENV = "OBO_CONSOLE_WORKERS"
APP_ENV = (
    "OBO_CONSOLE_WORKER_APP"  # the app factory's import string (benchmarks serve other apps the same way)
)
DEFAULT_APP = "mcp_server.server.multiworker:worker_app"
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
    """The default app factory, run in each worker process: this worker's ``OboServer``."""
    from mcp_server.server.app import create_server  # deferred: loaded in worker processes only

    config = config_from_json(os.environ[CONFIG_ENV])
    return create_server(config).asgi_app(config.base_url())


def named_app() -> ASGIApp:
    """uvicorn's app factory in each worker: the configured factory's app, answering with the worker's pid."""
    factory = import_from_string(os.environ.get(APP_ENV, DEFAULT_APP))
    return _NamedWorker(factory())


class WorkerPool:
    """The supervisor process and its N workers, serving ``config`` on ``host:port`` (0: a free port)."""

    def __init__(
        self,
        config: ServerConfig,
        workers: int,
        *,
        host: str | None = None,
        port: int | None = None,
        app: str = DEFAULT_APP,
    ) -> None:
        if workers < 1:
            raise ValueError("--workers must be at least 1")
        self.config = config
        self.app = app
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
        try:
            sock = _reserve_port(self.host, self.port)
        except OSError as exc:
            raise OSError(
                f"mcp-server: cannot listen on {self.host}:{self.port} ({exc.strerror}). "
                "Another process uses that port: stop it, or choose another port in settings."
            ) from exc
        self._sock = sock
        self.port = sock.getsockname()[1]
        config = dataclasses.replace(
            self.config, host=self.host, port=self.port, public_url=self.config.public_url or self.base_url
        )
        self.metrics_dir = Path(tempfile.mkdtemp(prefix="obo-console-metrics-"))
        env = {
            **os.environ,
            CONFIG_ENV: config_to_json(config),
            PARENT_ENV: str(os.getpid()),
            WORKERS_ENV: str(self.workers),
            APP_ENV: self.app,
            MULTIPROC_ENV: str(self.metrics_dir),
        }
        self._process = subprocess.Popen([sys.executable, "-m", "mcp_server.server.multiworker"], env=env)
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
                seen.add(response.headers["x-obo-console-worker"])
            except httpx2.HTTPError:
                time.sleep(0.05)

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


def _reserve_port(host: str, port: int) -> socket.socket:
    """A free port (``port``, or any if 0), held for the workers by a bound, not listening, SO_REUSEPORT socket.

    Found first with a plain bind: with SO_REUSEPORT alone the kernel would let this server join another
    process's group on the same port (even pick one for port 0), and the two would share connections."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT leftovers are no conflict
        probe.bind((host, port))
        port = probe.getsockname()[1]
    return reuse_port_socket(host, port, listen=False)


def reuse_port_socket(host: str, port: int, *, listen: bool = True) -> socket.socket:
    # IPPROTO_TCP explicitly, as in serve.py: asyncio sets TCP_NODELAY only on sockets that say they are TCP.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        if listen:
            sock.listen(1024)
    except OSError:
        sock.close()
        raise
    return sock


class _WorkerProcess(Process):
    """A uvicorn worker with a listening socket of its own on the shared port (``SO_REUSEPORT``). The supervisor
    closes its copy once the worker has it, so a dead worker's socket leaves the kernel's group with it."""

    address: tuple[str, int] = ("127.0.0.1", 0)

    def __init__(self, config: UvicornConfig, sockets: list[socket.socket]) -> None:
        self._own = reuse_port_socket(*self.address)
        super().__init__(config, [self._own])

    def start(self) -> None:
        super().start()
        self._own.close()


class _Supervisor(Multiprocess):
    """uvicorn's supervisor, making ``_WorkerProcess`` workers (start, replace a dead one); signals as uvicorn."""

    def init_processes(self) -> None:
        for _ in range(self.processes_num):
            process = _WorkerProcess(self.config, self.sockets)
            process.start()
            self.processes.append(process)

    def keep_subprocess_alive(self) -> None:
        for index, process in enumerate(self.processes):
            if self.should_exit.is_set() or process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            process.kill()
            process.join()
            _forget_metrics_of(process.pid)
            replacement = _WorkerProcess(self.config, self.sockets)
            replacement.start()
            self.processes[index] = replacement

    def restart_all(self) -> None:  # SIGHUP: replace every worker, one at a time
        for index, old in enumerate(self.processes):
            replacement = _WorkerProcess(self.config, self.sockets)
            replacement.start()
            old.terminate()
            old.join()
            _forget_metrics_of(old.pid)
            self.processes[index] = replacement


def _forget_metrics_of(pid: int | None) -> None:
    """A dead worker's live gauges leave /metrics with it (its counters stay in the sums, as they should)."""
    if pid is not None:
        mark_process_dead(pid, os.environ[MULTIPROC_ENV])


def _supervise() -> None:
    directory = os.environ[MULTIPROC_ENV]
    for name in os.listdir(directory):  # a fresh run counts from zero
        os.unlink(os.path.join(directory, name))
    server = config_from_json(os.environ[CONFIG_ENV])
    _WorkerProcess.address = (server.host, server.port)
    config = UvicornConfig(
        "mcp_server.server.multiworker:named_app",
        factory=True,
        workers=int(os.environ[WORKERS_ENV]),
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=2,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,  # as the single-process server (localcloud/serve.py)
    )
    threading.Thread(target=_watch_parent, args=(int(os.environ[PARENT_ENV]),), daemon=True).start()
    _Supervisor(config, sockets=[]).run()


if __name__ == "__main__":
    _supervise()
