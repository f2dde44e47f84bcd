"""Hostile claims challenges: a forged or garbled ``insufficient_claims`` tool error from an MCP server never
crashes the console, never starts a sign-in, and is refused saying exactly what is wrong with it. Served by a
real FastMCP server on loopback to the real Agents SDK runner; and each refusal, exactly, from the parser."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastmcp import FastMCP
from fastmcp.tools import ToolResult
from mcp.types import TextContent

from console.core.agents.mcp_link import McpTarget
from console.core.agents.runner import AgentRunner
from console.core.describe import describe
from console.core.events import EventBus, Notice, StepUp
from console.core.settings import Settings
from console.core.step_up import ChallengeInvalid, parse_challenge
from mcp_server.localcloud.serve import ThreadedServer
from tests.agents.helpers import agent, config
from tests.agents.test_mcp_link import fake_jwt

GOOD_CLAIMS = {"access_token": {"capolids": {"essential": True, "values": ["9ab03e19"]}}}


def b64(value: Any) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).decode()


def body(**changes: Any) -> dict[str, Any]:
    good = {
        "error": "insufficient_claims",
        "claims": b64(GOOD_CLAIMS),
        "aadsts": 50076,
        "resource": "https://search.azure.com",
    }
    return {**good, **changes}


CASES: list[tuple[str, dict[str, Any], str]] = [
    ("no claims", body(claims=None), "it carries no 'claims' value"),
    ("not base64", body(claims="<script>alert(1)</script>"), "its 'claims' is not base64url"),
    ("huge", body(claims="A" * 5000), "its 'claims' is 5000 characters long (at most 4096)"),
    ("not JSON", body(claims=b64(b"\xff\xfe not json")), "its 'claims' does not decode to JSON"),
    ("a JSON list", body(claims=b64([1, 2])), "its 'claims' is not a JSON object"),
    (
        "foreign member",
        body(claims=b64({"userinfo": {}})),
        "its 'claims' has an unexpected member 'userinfo'",
    ),
    (
        "markup in a policy id",
        body(claims=b64({"access_token": {"capolids": {"values": ["<b>x</b>"]}}})),
        "its 'claims' member 'capolids' is not a list of short ids",
    ),
    (
        "control characters",
        body(claims=b64({"access_token": {"acrs": {"values": ["c1\x1b[2J"]}}})),
        "its 'claims' member 'acrs' is not a list of short ids",
    ),
    (
        "asks for nothing",
        body(claims=b64({"access_token": {"amr": {"values": ["pwd"]}}})),
        "its 'claims' asks for nothing this console can satisfy (capolids, acrs, amr)",
    ),
    ("resource with markup", body(resource="<img src=x>"), "its 'resource' is missing or not a plain URL"),
    ("aadsts not a number", body(aadsts="50076; rm -rf"), "its 'aadsts' is not a number"),
]


@pytest.mark.parametrize(("structured", "why"), [(s, w) for _, s, w in CASES], ids=[c[0] for c in CASES])
def test_each_garbled_challenge_is_refused_saying_why(structured: dict[str, Any], why: str) -> None:
    with pytest.raises(ChallengeInvalid) as caught:
        parse_challenge(structured)
    assert str(caught.value) == why


def test_a_well_formed_challenge_is_read_and_padding_is_optional() -> None:
    challenge = parse_challenge(body(claims=b64(GOOD_CLAIMS).rstrip("=")))
    assert json.loads(challenge.claims) == GOOD_CLAIMS
    assert (challenge.policy_ids, challenge.resource, challenge.aadsts) == (
        ("9ab03e19",),
        "https://search.azure.com",
        50076,
    )


class Forger:
    """A real FastMCP server whose get_documents answers whatever tool error the test sets."""

    def __init__(self) -> None:
        self.structured: dict[str, Any] = {}
        mcp = FastMCP("forger")

        @mcp.tool(name="get_documents")
        async def get_documents(query: str = "*") -> ToolResult:
            return ToolResult(
                content=[TextContent(type="text", text="On-behalf-of token exchange failed")],
                structured_content=self.structured,
                is_error=True,
            )

        self.server = ThreadedServer(mcp.http_app(path="/mcp"), name="forger")


@pytest.fixture(scope="module")
def forger() -> Iterator[Forger]:
    forged = Forger()
    forged.server.start()
    try:
        yield forged
    finally:
        forged.server.stop()


@pytest.mark.parametrize(
    ("structured", "why"), [(s, w) for _, s, w in CASES[1:7]], ids=[c[0] for c in CASES[1:7]]
)
async def test_a_forged_challenge_over_mcp_fails_the_tool_and_never_steps_up(
    forger: Forger, structured: dict[str, Any], why: str
) -> None:
    forger.structured = structured
    bus = EventBus()
    seen: list[Any] = []
    bus.subscribe(seen.append)
    runner = AgentRunner(
        settings=Settings(mcp_servers={"documents": "local"}),
        configs={"docs": config("docs", agent("Docs", mcp_servers=["documents"]))},
        bus=bus,
        account="carol@example",
        token_provider=lambda: fake_jwt(time.time() + 3600),
        mcp_target=McpTarget(f"{forger.server.base_url}/mcp"),
    )
    try:
        result = await runner.run_turn("show my documents")
    finally:
        await runner.aclose()
    assert result.step_up is None and result.tool_failure is not None
    assert result.tool_failure.tool == "get_documents"
    assert not [e for e in seen if isinstance(e, StepUp)]
    warnings = [e.message for e in seen if isinstance(e, Notice) and e.level == "warning"]
    assert warnings == [f"the MCP server sent a claims challenge the console cannot use: {why}"]
    for event in seen:  # every event still has its one description: nothing the views cannot show
        assert describe(event).line()
