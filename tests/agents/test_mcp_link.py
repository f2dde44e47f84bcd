"""The user's token goes only to the MCP server settings name; config names resolve through settings, unknown names
get no server and no token; each account has its own connection; tokens are refreshed before they expire."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from console.core.agents.mcp_link import BearerTokenAuth, McpLink, McpTarget, resolve_server
from console.core.agents.runner import AgentRunner
from console.core.events import EventBus
from console.core.settings import Settings
from mcp_server.localcloud.serve import ThreadedServer
from tests.agents.helpers import Recorder, agent, config


def fake_jwt(exp: float, sub: str = "user") -> str:
    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part({'sub': sub, 'exp': int(exp)})}.sig"


class Recording:
    """An HTTP endpoint on loopback that records the Authorization header of every request (and refuses them)."""

    def __init__(self) -> None:
        self.authorizations: list[str | None] = []

        async def mcp(request: Request) -> JSONResponse:
            self.authorizations.append(request.headers.get("authorization"))
            return JSONResponse({"error": "invalid_token"}, status_code=401)

        self.server = ThreadedServer(
            Starlette(routes=[Route("/mcp", mcp, methods=["GET", "POST", "DELETE"])]), name="recording"
        )


@pytest.fixture(scope="module")
def recording() -> Iterator[Recording]:
    rec = Recording()
    rec.server.start()
    try:
        yield rec
    finally:
        rec.server.stop()


def _settings(recording: Recording, **extra: object) -> Settings:
    return Settings(mcp_url=f"{recording.server.base_url}/mcp", mcp_servers={"documents": "local"}, **extra)  # type: ignore[arg-type]


def test_names_resolve_only_through_settings(recording: Recording) -> None:
    settings = _settings(recording)
    bundled = McpTarget(f"{recording.server.base_url}/mcp")
    assert resolve_server("documents", settings, bundled) == bundled
    assert resolve_server("elsewhere", settings, bundled) is None
    # A settings entry naming another URL is refused: the token goes only to the bundled server.
    other = Settings(
        mcp_url=bundled.url, mcp_servers={"evil": "https://evil.example/mcp", "same": bundled.url}
    )
    assert resolve_server("evil", other, bundled) is None
    assert resolve_server("same", other, bundled) == bundled


async def test_unknown_server_name_gets_no_token(recording: Recording) -> None:
    asked: list[str] = []

    def provider() -> str:
        asked.append("token")
        return fake_jwt(time.time() + 3600)

    bus = EventBus()
    rec = Recorder(bus)
    configs = {"docs": config("docs", agent("Docs", mcp_servers=["not-in-settings"]))}
    before = len(recording.authorizations)
    runner = AgentRunner(settings=_settings(recording), configs=configs, bus=bus, token_provider=provider)
    result = await runner.run_turn("show my documents")
    assert result.error is None
    assert runner.graph.agents["docs"].mcp_servers == []
    assert asked == [] and len(recording.authorizations) == before  # no token fetched, nothing sent anywhere
    assert any(
        "'not-in-settings' is not defined in settings" in n.message and "no token" in n.message
        for n in rec.of("notice")
    )


async def test_known_name_carries_each_accounts_own_token(recording: Recording) -> None:
    configs = {"docs": config("docs", agent("Docs", mcp_servers=["documents"]))}
    tokens = {"alice": fake_jwt(time.time() + 3600, "alice"), "bob": fake_jwt(time.time() + 3600, "bob")}
    runners = {
        who: AgentRunner(
            settings=_settings(recording),
            configs=configs,
            account=who,
            token_provider=lambda who=who: tokens[who],
        )
        for who in tokens
    }
    assert runners["alice"].mcp.servers[0] is not runners["bob"].mcp.servers[0]  # one connection per account
    for who, runner in runners.items():
        start = len(recording.authorizations)
        result = await runner.run_turn("show my documents")
        # The stand-in server refuses (401): the turn goes on without its tools and says so.
        assert result.error is None
        sent = recording.authorizations[start:]
        assert sent and set(sent) == {f"Bearer {tokens[who]}"}


async def test_server_down_fails_the_turn_clearly_when_required(recording: Recording) -> None:
    from mcp_server.errors import UserError

    configs = {"docs": config("docs", agent("Docs", mcp_servers=["documents"]))}
    settings = Settings(mcp_url="http://127.0.0.1:9/mcp", mcp_servers={"documents": "local"})
    runner = AgentRunner(
        settings=settings,
        configs=configs,
        token_provider=lambda: fake_jwt(time.time() + 3600),
        require_mcp=True,
    )
    with pytest.raises(UserError, match=r"MCP server at http://127.0.0.1:9/mcp is not reachable"):
        await runner.run_turn("show my documents")


async def test_token_reused_until_near_expiry_then_refreshed() -> None:
    issued: list[str] = []
    lifetimes = iter([3600.0, 60.0, 3600.0])

    async def provider() -> str:
        token = fake_jwt(time.time() + next(lifetimes), f"t{len(issued)}")
        issued.append(token)
        return token

    auth = BearerTokenAuth(provider, refresh_margin=120)
    seen: list[str] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request.headers["authorization"])
        return httpx2.Response(200)

    async with httpx2.AsyncClient(transport=httpx2.MockTransport(handler), auth=auth) as client:
        await client.get("http://127.0.0.1/a")
        await client.get("http://127.0.0.1/b")  # reused: an hour left
        assert auth.fetches == 1
        auth._exp = time.time() + 30  # the token is about to expire
        await client.get("http://127.0.0.1/c")  # fetched again (this one lives 60 s: inside the margin)
        await client.get("http://127.0.0.1/d")  # so it is fetched again right away
    assert auth.fetches == 3
    assert seen == [
        f"Bearer {issued[0]}",
        f"Bearer {issued[0]}",
        f"Bearer {issued[1]}",
        f"Bearer {issued[2]}",
    ]


def test_link_without_signed_in_user_connects_nowhere(recording: Recording) -> None:
    link = McpLink(_settings(recording), token_provider=None)
    assert link.server_for("documents") is None and link.servers == [] and "documents" in link.refused


def test_plain_http_off_loopback_is_refused(tmp_path: Path) -> None:
    from console.core.agents.mcp_link import bundled_target
    from mcp_server.errors import UserError

    with pytest.raises(UserError, match="Refusing plain http"):
        bundled_target(Settings(mode="azure", mcp_url="http://mcp.example.com/mcp"))
