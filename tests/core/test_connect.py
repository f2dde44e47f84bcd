"""`--connect URL`: the server must prove, in its RFC 9728 metadata, that it is the URL connected to, trusts this
console's authority and serves this console's API, before any token goes to it. Real HTTP servers on loopback, no
mocks. (Trust of the origin itself: tests/security/test_connect_trust.py.)"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from console.core.events import EventBus, Notice, ServerStatusChanged
from console.core.link_state import LinkState, LinkTimings
from console.core.mcp_urls import validate_mcp_url
from console.core.server_checks import check_resource_metadata, health_url, metadata_url
from console.core.server_link import ServerLink
from console.core.settings import Settings
from mcp_server.errors import UserError
from mcp_server.localcloud.serve import ThreadedServer

TENANT = "11111111-2222-3333-4444-555555555555"
API = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
AUTHORITY = f"https://login.example.test/{TENANT}"


def azure_settings(*trusted: str) -> Settings:
    """Azure-mode settings; ``trusted``: MCP URLs listed in OBO_CONSOLE_TRUSTED_MCP_URLS."""
    return Settings(
        mode="azure",
        authority=AUTHORITY,
        tenant_id=TENANT,
        console_client_id="99999999-8888-7777-6666-555555555555",
        api_client_id=API,
        trusted_mcp_urls=list(trusted),
    )


@dataclass
class FakeServer:
    """A real HTTP server publishing whatever protected-resource metadata a test gives it."""

    metadata: dict[str, Any]
    healthy: bool = True
    seen: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Starlette:
        async def meta(request: Request) -> JSONResponse:
            self._record(request)
            return JSONResponse(self.metadata)

        async def health(request: Request) -> PlainTextResponse:
            self._record(request)
            return PlainTextResponse(
                "ok" if self.healthy else "starting", status_code=200 if self.healthy else 503
            )

        async def mcp(request: Request) -> PlainTextResponse:
            self._record(request)
            return PlainTextResponse("", status_code=401)

        return Starlette(
            routes=[
                Route("/.well-known/oauth-protected-resource/mcp", meta),
                Route("/healthz", health),
                Route("/mcp", mcp, methods=["GET", "POST"]),
            ]
        )

    def _record(self, request: Request) -> None:
        with self.lock:
            self.seen.append((request.url.path, {k.lower(): v for k, v in request.headers.items()}))


def good_metadata(url: str) -> dict[str, Any]:
    return {
        "resource": url,
        "authorization_servers": [f"{AUTHORITY}/v2.0"],
        "scopes_supported": [f"api://{API}/execute"],
        "bearer_methods_supported": ["header"],
    }


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[ThreadedServer] = []

    def start(fake: FakeServer, port: int = 0) -> str:
        server = ThreadedServer(fake.app(), name="fake-mcp", port=port).start()
        servers.append(server)
        return f"{server.base_url}/mcp"

    yield start
    for server in servers:
        server.stop()


FAST = LinkTimings(startup_timeout=5, poll_interval=0.1, probe_timeout=1, backoff_base=0.05, backoff_max=0.2)


def test_urls_are_built_as_rfc9728_says() -> None:
    assert (
        metadata_url("https://mcp.example.com/mcp")
        == "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
    )
    assert (
        metadata_url("http://127.0.0.1:8000/a/mcp/")
        == "http://127.0.0.1:8000/.well-known/oauth-protected-resource/a/mcp"
    )
    assert health_url("http://127.0.0.1:8000/mcp") == "http://127.0.0.1:8000/healthz"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/mcp",
        "http://localhost:9/mcp",
        "http://[::1]:8000/mcp",
        "https://mcp.example.com/mcp",
    ],
)
def test_https_or_loopback_http_accepted(url: str) -> None:
    assert validate_mcp_url(url).startswith(url.split(":")[0])


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://mcp.example.com/mcp", "unencrypted"),
        ("http://10.0.0.5:8000/mcp", "unencrypted"),
        ("http://127.0.0.1.nip.io/mcp", "unencrypted"),
        ("ftp://127.0.0.1/mcp", "Not an MCP server URL"),
        ("127.0.0.1:8000/mcp", "Not an MCP server URL"),
        ("https://user:pw@mcp.example.com/mcp", "credentials"),
    ],
)
def test_other_urls_refused(url: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        validate_mcp_url(url)
    with pytest.raises(UserError, match=message):
        ServerLink(azure_settings(), connect_url=url)


URL = "https://mcp.example.test/mcp"


def test_metadata_naming_the_url_the_authority_or_its_issuer_and_the_api_is_accepted() -> None:
    for server in (AUTHORITY, AUTHORITY + "/", AUTHORITY + "/v2.0"):
        for scopes in ([f"api://{API}/execute"], ["other", f"api://{API}/read"]):
            for resource in (
                URL,
                URL + "/",
                "HTTPS://MCP.example.test:443/mcp",
            ):  # one URL, spelled three ways
                doc = {
                    "resource": resource,
                    "authorization_servers": ["https://elsewhere.test/x", server],
                    "scopes_supported": scopes,
                }
                meta = check_resource_metadata(doc, url=URL, authority=AUTHORITY, identifier=f"api://{API}")
                assert server in meta.authorization_servers and meta.resource == resource


@pytest.mark.parametrize(
    ("doc", "complaint"),
    [
        (
            {
                "authorization_servers": ["https://evil.test/tid/v2.0"],
                "scopes_supported": [f"api://{API}/execute"],
            },
            "does not name this console's authority",
        ),
        (
            {"authorization_servers": [f"{AUTHORITY}-other"], "scopes_supported": [f"api://{API}/execute"]},
            "does not name this console's authority",
        ),
        ({"scopes_supported": [f"api://{API}/execute"]}, "does not name this console's authority"),
        (
            {"authorization_servers": [AUTHORITY], "scopes_supported": ["api://someone-else/execute"]},
            "does not name the API",
        ),
        (
            {"authorization_servers": [AUTHORITY], "scopes_supported": [f"api://{API}x/execute"]},
            "does not name the API",
        ),
        ({"authorization_servers": [AUTHORITY]}, "does not name the API"),
    ],
)
def test_metadata_not_naming_both_is_refused(doc: dict[str, Any], complaint: str) -> None:
    doc = {"resource": "http://127.0.0.1:1/mcp", **doc}
    with pytest.raises(UserError, match=complaint) as info:
        check_resource_metadata(
            doc, url="http://127.0.0.1:1/mcp", authority=AUTHORITY, identifier=f"api://{API}"
        )
    assert "No token was sent" in info.value.message


def test_connect_accepts_the_right_server_without_sending_a_token(serve: Any) -> None:
    fake = FakeServer(metadata={})
    url = serve(fake)
    fake.metadata = good_metadata(url)
    bus = EventBus()
    events: list[Any] = []
    bus.subscribe(events.append)
    link = ServerLink(azure_settings(url), connect_url=url, bus=bus, timings=FAST)
    try:
        status = link.start()
        assert status.state is LinkState.READY and status.url == url and not status.launched
        assert link.mcp_url == url
        assert link.metadata is not None and link.metadata.scopes_supported == [f"api://{API}/execute"]
    finally:
        link.close()
    assert link.status.state is LinkState.STOPPED
    paths = [path for path, _ in fake.seen]
    assert paths[0] == "/.well-known/oauth-protected-resource/mcp"  # checked before anything else
    assert all("authorization" not in headers for _, headers in fake.seen)
    states = [e.state for e in events if isinstance(e, ServerStatusChanged)]
    assert states[0] == "connecting" and "ready" in states and states[-1] == "stopped"
    assert any(isinstance(e, Notice) and "connected to" in e.message for e in events)


def test_connect_refuses_a_server_trusting_another_authority(serve: Any) -> None:
    fake = FakeServer(metadata={})
    url = serve(fake)
    fake.metadata = {
        "resource": url,
        "authorization_servers": ["https://login.attacker.test/common/v2.0"],
        "scopes_supported": [f"api://{API}/execute"],
    }
    bus = EventBus()
    notices: list[Notice] = []
    bus.subscribe(lambda e: notices.append(e) if isinstance(e, Notice) else None)
    link = ServerLink(azure_settings(url), connect_url=url, bus=bus, timings=FAST)
    with pytest.raises(UserError) as info:
        link.start()
    message = str(info.value)
    assert "https://login.attacker.test/common/v2.0" in message  # says what the server claimed
    assert AUTHORITY in message and "No token was sent" in message
    assert link.mcp_url is None  # nothing may use it
    assert link.status.state is LinkState.DOWN
    assert notices and notices[-1].level == "error" and "attacker" in notices[-1].message
    assert [path for path, _ in fake.seen] == ["/.well-known/oauth-protected-resource/mcp"]
    link.close()


def test_connect_refuses_a_server_without_metadata(serve: Any) -> None:
    fake = FakeServer(metadata={})
    url = serve(fake).replace("/mcp", "/other")
    link = ServerLink(azure_settings(url), connect_url=url, timings=FAST)
    with pytest.raises(UserError, match="HTTP 404"):
        link.start()
    link.close()


def test_reconnect_rechecks_whoever_answers_now(serve: Any) -> None:
    """A server replaced by one trusting another authority is not reconnected to."""
    fake = FakeServer(metadata={})
    url = serve(fake)
    fake.metadata = good_metadata(url)
    link = ServerLink(azure_settings(url), connect_url=url, timings=FAST)
    link.start()
    try:
        fake.metadata = {**good_metadata(url), "authorization_servers": ["https://login.attacker.test/x"]}
        fake.healthy = False
        status = link.wait_for(LinkState.RECONNECTING, timeout=5)
        assert status.attempt >= 1
        fake.healthy = True
        # Healthy again but untrusted: stays reconnecting, with the refusal as the detail.
        deadline_status = _wait_detail(link, "attacker")
        assert deadline_status.state is LinkState.RECONNECTING
        fake.metadata = good_metadata(url)
        assert link.wait_for(LinkState.READY, timeout=5).detail.startswith("reconnected")
    finally:
        link.close()


def _wait_detail(link: ServerLink, needle: str, timeout: float = 5.0) -> Any:
    done = threading.Event()
    found: list[Any] = []

    def watch(status: Any) -> None:
        if needle in status.detail:
            found.append(status)
            done.set()

    unsubscribe = link.subscribe_status(watch)
    try:
        assert done.wait(timeout), f"no status mentioning {needle!r}; last: {link.status}"
    finally:
        unsubscribe()
    return found[0]
