"""The impostor for the --connect tests: a real loopback HTTP listener that answers like an MCP server, serves
whatever protected-resource metadata a test gives it (typically a copy of the real server's), and records every
request it receives, so a test can prove no credential ever reached it."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from console.core.clock import FixedClock
from console.core.link_state import LinkState
from console.core.mcp_trust import OriginRefused, TrustRequest
from console.core.mcp_urls import canonical_url
from console.core.server_checks import metadata_url
from console.core.settings import Settings
from console.core.workspace import Workspace
from mcp_server.errors import UserError
from mcp_server.localcloud.serve import ThreadedServer
from mcp_server.stack import LocalStack
from tests.fixtures.workspace import FAST

METADATA_PATH = "/.well-known/oauth-protected-resource/mcp"

# ---------------------------------------------------------------------------------------------------------------
# The impostor


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Impostor:
    """A real HTTP listener that answers like an MCP server and records every request it receives."""

    metadata: dict[str, Any] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def app(self) -> Starlette:
        async def anything(request: Request) -> Response:
            body = await request.body()
            with self.lock:
                self.seen.append(
                    Seen(
                        request.method,
                        request.url.path,
                        {k.lower(): v for k, v in request.headers.items()},
                        body,
                    )
                )
            path = request.url.path
            if path == METADATA_PATH:
                return JSONResponse(self.metadata)
            if path == "/healthz":
                return PlainTextResponse("ok")
            if path.rstrip("/") == "/mcp":
                return PlainTextResponse("", status_code=401, headers={"WWW-Authenticate": "Bearer"})
            return PlainTextResponse("not found", status_code=404)

        methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
        return Starlette(routes=[Route("/{path:path}", anything, methods=methods)])

    def requests(self) -> list[Seen]:
        with self.lock:
            return list(self.seen)

    def credentials_received(self) -> list[str]:
        """Every header or body that carried a bearer token or a JWT: must stay empty."""
        found = []
        for seen in self.requests():
            for name, value in seen.headers.items():
                if (
                    name in ("authorization", "proxy-authorization")
                    or "bearer" in value.lower()
                    or "eyJ" in value
                ):
                    found.append(f"{seen.method} {seen.path} {name}")
            if b"eyJ" in seen.body or b"earer " in seen.body:
                found.append(f"{seen.method} {seen.path} body")
        return found


@contextlib.contextmanager
def impostors() -> Iterator[Callable[[], Impostor]]:
    """Start impostors on demand; on exit stop them and fail if any of them received a credential."""
    servers: list[tuple[ThreadedServer, Impostor]] = []

    def start() -> Impostor:
        fake = Impostor()
        server = ThreadedServer(fake.app(), name="impostor").start()
        fake.url = f"{server.base_url}/mcp"
        servers.append((server, fake))
        return fake

    try:
        yield start
    finally:
        for server, _ in servers:
            server.stop()
    for _, fake in servers:
        assert fake.credentials_received() == [], "a credential reached the impostor"


def real_metadata(stack: LocalStack) -> dict[str, Any]:
    """The real server's protected-resource metadata, as anyone may fetch it (no token)."""
    assert stack.state is not None and stack.state.mcp_url
    response = requests.get(metadata_url(stack.state.mcp_url), timeout=10)
    assert response.status_code == 200
    document = response.json()
    # It names the real server as its resource.
    assert canonical_url(document["resource"]) == canonical_url(stack.state.mcp_url)
    return dict(document)


def copied(impostor: Impostor, stack: LocalStack, *, rewrite_resource: bool) -> Impostor:
    """Serve the real metadata verbatim, or with ``resource`` rewritten to the impostor's own URL."""
    impostor.metadata = real_metadata(stack)
    if rewrite_resource:
        impostor.metadata["resource"] = impostor.url
    return impostor


@dataclass
class Person:
    """Stands for the person at the console's confirmation screen: records what was shown and answers."""

    answer: bool | None
    watching: Impostor | None = None
    asked: list[TrustRequest] = field(default_factory=list)
    requests_before_asked: list[int] = field(default_factory=list)

    def __call__(self, request: TrustRequest) -> bool | None:
        self.asked.append(request)
        if self.watching is not None:
            self.requests_before_asked.append(len(self.watching.requests()))
        return self.answer


def refuses_to_be_asked(request: TrustRequest) -> bool:
    raise AssertionError(f"asked about {request.origin}, but the answer was remembered")


def sign_in_alice() -> None:
    """alice signed in (her tokens in this test's keyring): a token an impostor would want exists."""
    ws = Workspace(Settings(), clock=FixedClock(), link_timings=FAST)
    ws.start()
    try:
        ws.sign_in_as("alice")
    finally:
        ws.close()


def api_identifier(stack: LocalStack) -> str:
    assert stack.state is not None and stack.state.api_scope
    return stack.state.api_scope.rsplit("/", 1)[0]


def connect_workspace(url: str, prompt: Any = None, **settings: Any) -> Workspace:
    return Workspace(
        Settings(**settings), connect=url, clock=FixedClock(), link_timings=FAST, trust_prompt=prompt
    )


def start_refused(ws: Workspace) -> OriginRefused:
    try:
        with pytest.raises(OriginRefused) as info:
            ws.start()
        assert ws.link.mcp_url is None and ws.link.status.state is LinkState.DOWN
        with pytest.raises(UserError, match="not started yet"):
            ws.auth  # noqa: B018 - nothing after the refusal ran: no sign-in, no token acquired
    finally:
        ws.close()
    return info.value
