"""A server that answers but names a dependency that is not ready is DEGRADED, not DOWN: the console says which part
and still sends turns (the MCP server works from its caches, the console from the cached token), as headless
``ask`` does. One that does not answer is DOWN. Real HTTP servers and a real stack whose identity platform stops."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from console.core.clock import FixedClock
from console.core.events import Event, Notice, ServerStatusChanged
from console.core.link_state import LinkState, LinkStatus
from console.core.server_checks import Health, probe_health
from console.core.settings import Settings
from console.core.workspace import Workspace
from mcp_server.localcloud.serve import ThreadedServer
from mcp_server.stack import LocalStack, StackPorts
from tests.fixtures.workspace import FAST

NOT_READY = {
    "status": "unavailable",
    "checked_age_s": 0.0,
    "parts": {
        "mcp": {"ready": True},
        "jwks": {"ready": False, "error": "JWKS unreachable (ConnectError)"},
        "search": {"ready": True, "documents": 3},
    },
}


@pytest.fixture
def healthz() -> Iterator[object]:
    """Serve ``/healthz`` answering ``(status, body)`` (a dict is sent as JSON); returns its MCP URL."""
    servers: list[ThreadedServer] = []

    def serve(status: int, body: dict[str, object] | str) -> str:
        async def health(request: Request) -> Response:
            if isinstance(body, dict):
                return JSONResponse(body, status_code=status)
            return PlainTextResponse(body, status_code=status)

        server = ThreadedServer(Starlette(routes=[Route("/healthz", health)]), name="healthz").start()
        servers.append(server)
        return f"{server.base_url}/mcp"

    yield serve
    for server in servers:
        server.stop()


def test_healthz_answers_map_to_ready_degraded_or_down(healthz: object) -> None:
    serve = healthz  # type: ignore[assignment]
    assert probe_health(serve(200, {"status": "ready"})) == Health(LinkState.READY, "healthy")  # type: ignore[operator]
    assert probe_health(serve(503, NOT_READY)) == Health(  # type: ignore[operator]
        LinkState.DEGRADED, "not ready: jwks (JWKS unreachable (ConnectError))", ("jwks",)
    )
    # A 503 that names no part (a proxy, a server starting) and any other status: the server is not answering.
    assert probe_health(serve(503, "starting")) == Health(  # type: ignore[operator]
        LinkState.DOWN, "/healthz answered HTTP 503: starting"
    )
    assert probe_health(serve(502, {"error": "bad gateway"})).state is LinkState.DOWN  # type: ignore[operator]
    assert probe_health("http://127.0.0.1:9/mcp", timeout=2).state is LinkState.DOWN


def test_a_degraded_status_says_which_part_and_still_accepts_turns() -> None:
    status = LinkStatus(
        LinkState.DEGRADED,
        url="http://127.0.0.1:8000/mcp",
        detail="not ready: jwks (JWKS unreachable (ConnectError))",
    )
    assert status.accepts_turns and not status.ready
    assert status.describe() == (
        "connected to http://127.0.0.1:8000/mcp, but not ready: jwks (JWKS unreachable (ConnectError))"
    )
    assert [s for s in LinkState if s.accepts_turns] == [LinkState.READY, LinkState.DEGRADED]


@pytest.fixture
def private_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStack]:
    """A stack of this test's own: its identity platform is stopped mid-test, which the shared one must never see."""
    home = tmp_path / "stack-home"
    stack = LocalStack(
        home=home,
        ports=StackPorts(identity=0, search=0, mcp=0, calculator=None),
        state_file=home / "local-stack.json",
    )
    stack.start()
    monkeypatch.setenv("OBO_CONSOLE_STATE_FILE", str(stack.state_file))
    try:
        yield stack
    finally:
        stack.stop()


def test_identity_platform_stopped_the_link_is_degraded_naming_it_and_turns_still_run(
    private_stack: LocalStack,
) -> None:
    seen: list[Event] = []
    ws = Workspace(Settings(), clock=FixedClock(), link_timings=FAST)
    ws.bus.subscribe(seen.append)
    try:
        ws.start()
        ws.sign_in_as("alice")
        assert ws.send_sync("show my documents", timeout=60).error is None  # warms the server's caches
        private_stack.identity.stop()

        status = ws.link.wait_for(LinkState.DEGRADED, LinkState.DOWN, timeout=60)
        assert status.state is LinkState.DEGRADED and status.url == ws.link.mcp_url
        assert status.detail.startswith("not ready: jwks (JWKS unreachable (ConnectError))")
        assert ws.server_status() == status
        changes = [e.state for e in seen if isinstance(e, ServerStatusChanged)]
        assert changes[-1] is LinkState.DEGRADED and LinkState.DOWN not in changes
        warning = [e.message for e in seen if isinstance(e, Notice) and e.source == "server"][-1]
        assert warning == status.describe()

        outcome = ws.send_sync("show my documents", timeout=60)  # not refused: the server still answers
        assert outcome.error is None
        results = ws.last_search()
        assert results is not None and results.error is None and results.documents
        assert ws.link.status.state is LinkState.DEGRADED  # and it stayed so, never down
    finally:
        ws.close()
