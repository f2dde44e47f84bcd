"""Serving the console to browsers with textual-serve: one console process per websocket (browser tab), behind
the access guard (``web_guard``), on a socket bound before the URL is printed (so ``--port 0`` prints the real
port), until SIGINT/SIGTERM; then every tab's console is told to quit and awaited."""

from __future__ import annotations

import asyncio
import signal
import socket
import threading
from collections.abc import Callable
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web
from textual_serve.server import Server

from console.core.web_guard import AccessGuard
from mcp_server.errors import UserError


class GuardedServer(Server):
    """textual-serve's server on an application of our own: the guard is its first middleware (every route), and
    the routes are textual-serve's public handlers under the names its page template asks the router for."""

    def __init__(self, command: str, guard: AccessGuard, **kwargs: Any) -> None:
        super().__init__(command, **kwargs)
        self.guard = guard

    async def make_app(self) -> web.Application:
        """The guarded aiohttp application. Built here rather than by textual-serve's private ``_make_app`` so
        only its public handlers are used; the static folder lists no index (textual-serve's would)."""
        app = web.Application(middlewares=[self.guard.middleware])
        aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(self.templates_path))
        app.add_routes(
            [
                web.get("/", self.handle_index, name="index"),
                web.get("/ws", self.handle_websocket, name="websocket"),
                web.get("/download/{key}", self.handle_download, name="download"),
                web.static("/static", self.statics_path, show_index=False, name="static"),
            ]
        )
        return app

    async def handle_index(self, request: web.Request) -> web.StreamResponse:
        # The template builds absolute URLs from public_url: use the origin the browser sees, so the websocket
        # goes to the same host its session cookie belongs to (127.0.0.1 and localhost are different sites).
        self.public_url = f"http://{request.host}"
        response: web.StreamResponse = await super().handle_index(request)
        return response

    async def on_startup(self, app: web.Application) -> None:
        """textual-serve prints its logo and address here; the command prints the address with the token."""


async def _reaped(timeout: float = 5.0) -> None:
    """Let asyncio reap the consoles that just exited before the loop closes (a child reaped after that logs
    "Loop ... is closed"). asyncio's threaded child watcher names its threads waitpid-<pid>."""
    deadline = asyncio.get_running_loop().time() + timeout
    while any(t.name.startswith("waitpid-") for t in threading.enumerate()):
        if asyncio.get_running_loop().time() > deadline:
            return
        await asyncio.sleep(0.02)


def bind(host: str, port: int) -> socket.socket:
    """Listen on ``host:port`` now (port 0: any free port); UserError when that is impossible."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _name, address = infos[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        raise UserError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}",
            hint="Choose another --port (0 picks a free one), or stop what holds this one.",
        ) from exc
    sock.listen(128)
    sock.setblocking(False)
    return sock


def url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


async def serve(
    server: GuardedServer,
    sock: socket.socket,
    on_ready: Callable[[], None],
    stop: asyncio.Event | None = None,
) -> None:
    """Serve until ``stop`` is set (without one: until SIGINT/SIGTERM); then end every tab's console and close the
    listener."""
    signals = (signal.SIGINT, signal.SIGTERM) if stop is None else ()
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    app = await server.make_app()
    # No access log: its request lines would carry the token of the first request.
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=5)
    await runner.setup()
    try:
        await web.SockSite(runner, sock).start()
        on_ready()
        await stop.wait()
        await server.guard.close_websockets()
        await _reaped()
    finally:
        await runner.cleanup()
        for signum in signals:
            loop.remove_signal_handler(signum)
