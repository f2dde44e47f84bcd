"""Serve an ``OboServer`` on its own thread and event loop (``ThreadedServer``), on a port that may be 0.

The auth provider must know the server's public URL (RFC 9728 ``resource``) before the app exists, and with port 0
the port is only known once the socket is bound; so the app is built on the first ASGI call (the lifespan
startup), after ``ThreadedServer`` has bound the socket.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from mcp_server.localcloud.serve import ThreadedServer
from mcp_server.server.app import OboServer


class DeferredApp:
    def __init__(self, build: Callable[[], ASGIApp]) -> None:
        self._build = build
        self._app: ASGIApp | None = None
        self._lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._app is None:
            with self._lock:
                if self._app is None:
                    self._app = self._build()
        await self._app(scope, receive, send)


def serve_threaded(server: OboServer, *, host: str | None = None, port: int | None = None) -> ThreadedServer:
    """Start ``server`` on ``host:port`` (defaults from its config) and return the running ThreadedServer."""
    threaded = ThreadedServer(
        app=None,
        name="mcp-server",
        host=host or server.config.host,
        port=server.config.port if port is None else port,
    )

    def build() -> ASGIApp:
        base = server.config.public_url or f"http://{threaded.host}:{threaded.port}"
        return server.asgi_app(base)

    threaded.app = DeferredApp(build)
    return threaded.start()
