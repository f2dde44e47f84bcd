"""The access guard of ``obo-console web``: an aiohttp middleware in front of every route textual-serve registers.

Nothing is served without the access token minted at start (printed once, in the URL, as Jupyter does). The token
is valid until the command stops and may open any number of tabs; the first request that carries it is answered
with a session cookie (HttpOnly, SameSite=Strict, named for the port) and redirected to the same page without the
token, so it leaves the address bar and history. Later requests (the page's assets, its websocket, downloads)
carry the cookie. On loopback the Host header must name a loopback address with the served port (DNS rebinding),
and any request with an ``Origin`` header must come from the page's own origin (cross-site websockets).
"""

from __future__ import annotations

import asyncio
import html
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from pydantic import SecretStr

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
TOKEN_PARAM = "token"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
# Every response: never cached, never sends a Referer (the page loads a web font from another origin).
SAFE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


@dataclass(frozen=True)
class Refusal:
    status: int
    title: str
    detail: str


MISSING = Refusal(
    401,
    "Access token needed",
    "Open the address that `obo-console web` printed when it started: it ends in ?token=….",
)
WRONG = Refusal(
    403, "Wrong access token", "This token is not the one `obo-console web` printed. Copy its URL again."
)
BAD_HOST = Refusal(
    403, "Unexpected Host", "Open the console at the loopback address `obo-console web` printed."
)
CROSS_ORIGIN = Refusal(403, "Cross-origin request refused", "Only the console's own page may talk to it.")


def refusal_response(refusal: Refusal) -> web.Response:
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>OBO Console — "
        f"{html.escape(refusal.title)}</title></head><body><h1>{refusal.status} — {html.escape(refusal.title)}"
        f"</h1><p>{html.escape(refusal.detail)}</p></body></html>"
    )
    return web.Response(status=refusal.status, text=page, content_type="text/html", headers=SAFE_HEADERS)


class AccessGuard:
    """The token, the session cookie it is exchanged for, and the checks every request passes."""

    def __init__(self, *, token: str | None = None, loopback_only: bool = True) -> None:
        self.token = SecretStr(token or secrets.token_urlsafe(32))
        self._session = SecretStr(secrets.token_urlsafe(32))  # the cookie: not the token itself
        self.loopback_only = loopback_only
        self.port = 0  # set once the socket is bound
        self._websockets: set[asyncio.Task[object]] = set()

    @property
    def cookie_name(self) -> str:
        # Cookies ignore ports: two consoles on one host must not overwrite each other's session.
        return f"obo_console_web_{self.port}"

    def allowed_hosts(self) -> frozenset[str]:
        return frozenset(f"{name}:{self.port}" for name in LOOPBACK_NAMES)

    def check(self, request: web.Request) -> Refusal | None:
        """Why ``request`` is refused, or None when it may go on."""
        if self.loopback_only and request.headers.get("Host", "").lower() not in self.allowed_hosts():
            return BAD_HOST
        origin = request.headers.get("Origin")
        if origin is not None and origin.lower() != f"http://{request.headers.get('Host', '').lower()}":
            return CROSS_ORIGIN
        given = request.query.get(TOKEN_PARAM)
        if given is not None:
            return None if _same(given, self.token) else WRONG
        cookie = request.cookies.get(self.cookie_name)
        if cookie is not None and _same(cookie, self._session):
            return None
        return MISSING

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        refusal = self.check(request)
        if refusal is not None:
            return refusal_response(refusal)
        if TOKEN_PARAM in request.query and request.method == "GET" and request.path == "/":
            return self._enter(request)
        if request.path == "/ws":
            return await self._tracked(handler, request)
        response = await handler(request)
        response.headers.update(SAFE_HEADERS)
        return response

    def _enter(self, request: web.Request) -> web.Response:
        """The token's first use in a browser: set the session cookie, drop the token from the address."""
        query = {k: v for k, v in request.query.items() if k != TOKEN_PARAM}
        location = str(request.rel_url.with_query(query))
        response = web.Response(status=302, headers={**SAFE_HEADERS, "Location": location})
        response.set_cookie(
            self.cookie_name, self._session.get_secret_value(), httponly=True, samesite="Strict", path="/"
        )
        return response

    async def _tracked(self, handler: Handler, request: web.Request) -> web.StreamResponse:
        """A websocket drives one console process until it closes; ``close_websockets`` ends them all."""
        task = asyncio.current_task()
        if task is not None:
            self._websockets.add(task)
        try:
            return await handler(request)
        finally:
            if task is not None:
                self._websockets.discard(task)

    async def close_websockets(self, timeout: float = 30.0) -> None:
        """Cancel every open websocket: textual-serve then tells its console to quit and waits for it."""
        tasks = list(self._websockets)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)


def _same(given: str, secret: SecretStr) -> bool:
    """Constant time, and exact: tokens are case-sensitive."""
    return secrets.compare_digest(given.encode("utf-8", "replace"), secret.get_secret_value().encode())
