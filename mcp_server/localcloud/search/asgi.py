"""The local search service's HTTP face: a plain ASGI app in front of ``SearchHandler``.

Starlette's routes match the paths (both styles, their convertors, a method a route does not take), and the handler
builds Starlette responses; what is left out is Starlette's application stack — its middleware, ``Request`` and the
``anyio`` thread hop — which cost about 0.1 ms of CPU on each 0.6 ms request (benchmarks/bench_server.py measures the
whole path). The request logic runs on this app's own worker threads (SQLite and JWKS fetches block), so the event
loop keeps accepting requests.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qsl

from starlette.responses import PlainTextResponse, Response
from starlette.routing import Match, Route
from starlette.types import Receive, Scope, Send

from .app import MAX_BODY, Endpoint, HttpRequest, SearchHandler, error_reply
from .errors import SearchError

WORKER_THREADS = 40  # as anyio's default limit: concurrent requests beyond it wait for a thread


class SearchApp:
    """ASGI: every HTTP request to ``handler``, on a worker thread; lifespan acknowledged; websockets refused."""

    def __init__(self, handler: SearchHandler) -> None:
        self.handler = handler
        self.routes: list[tuple[Route, Endpoint]] = handler.routes()
        self._threads = ThreadPoolExecutor(WORKER_THREADS, thread_name_prefix="local-search")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1000})
        else:
            response = await self._answer(scope, receive)
            if response is not None:
                await response(scope, receive, send)

    def _route(self, scope: Scope) -> tuple[Endpoint, Scope] | set[str]:
        """The first route taking the path and method, with its path parameters; else the methods the first route
        taking the path allows (every path matches the catch-all route, so only a method no route takes fails)."""
        allowed: set[str] | None = None
        for route, endpoint in self.routes:
            match, child = route.matches(scope)
            if match is Match.FULL:
                return endpoint, child
            if match is Match.PARTIAL and allowed is None:
                allowed = set(route.methods or ())
        return allowed or set()

    async def _answer(self, scope: Scope, receive: Receive) -> Response | None:
        routed = self._route(scope)
        if isinstance(routed, set):  # as Starlette answers a method the route does not take
            return PlainTextResponse("Method Not Allowed", 405, {"Allow": ", ".join(sorted(routed))})
        endpoint, child = routed
        read = await _body(receive)
        if read is None:
            return None  # the client went away
        body, size = read
        if size > MAX_BODY:
            return error_reply(SearchError(413, "The request body is larger than 16 MB.")).response()
        incoming = HttpRequest(
            method=scope["method"],
            path=scope["path"],
            query=dict(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)),
            headers={
                name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]
            },
            body=body,
            path_params=dict(child["path_params"]),
        )
        loop = asyncio.get_running_loop()
        reply = await loop.run_in_executor(self._threads, self.handler.handle, incoming, endpoint)
        return reply.response()

    def close(self) -> None:
        """Let the worker threads go (after the server stopped: no request is in flight any more)."""
        self._threads.shutdown(wait=False, cancel_futures=True)


async def _body(receive: Receive) -> tuple[bytes, int] | None:
    """The request body and its full size, or None when the client disconnected. Past ``MAX_BODY`` the rest is read
    and dropped: the answer is 413 either way, and a hostile sender cannot make the service hold more than that."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= MAX_BODY:
            chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), size


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
