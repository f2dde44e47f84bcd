"""The flow model on REAL event streams: agent turns (offline model) against the real local stack's MCP server —
the normal server, one with a wrong client secret (the identity platform answers AADSTS7000215), and a token the
server refuses (401). What the presenter would show is derived from the events the console really receives."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from pydantic import SecretStr

from console.core.agents.mcp_link import McpTarget
from console.core.agents.runner import AgentRunner
from console.core.claims import decode_claims
from console.core.events import ErrorCode, Event, EventBus, FailedStep, Notice, SearchResults, ToolEnded
from console.core.flow import FlowModel, StepState
from console.core.settings import Settings
from mcp_server.localcloud.serve import ThreadedServer
from mcp_server.server.app import create_server
from mcp_server.server.runner import serve_threaded
from mcp_server.stack import LocalStack
from tests.agents.helpers import agent, load_configs, write_configs
from tests.fixtures.stack import api_token

DONE, HIT, FAILED, PENDING = StepState.DONE, StepState.CACHE_HIT, StepState.FAILED, StepState.PENDING


@pytest.fixture
def settings(tmp_path: Path, use_local_stack: LocalStack) -> Settings:
    directory = write_configs(
        tmp_path / "configs", {"library": agent("Library Agent", mcp_servers=["documents"])}
    )
    return Settings(configs_dir=directory)


@pytest.fixture
def wrong_secret_server(local_stack: LocalStack) -> Iterator[str]:
    threaded: ThreadedServer = serve_threaded(
        create_server(local_stack.server_config(port=0, api_client_secret=SecretStr("not-the-secret")))
    )
    try:
        yield f"{threaded.base_url}/mcp"
    finally:
        threaded.stop()


async def events_of_a_turn(
    settings: Settings, token: str, target: McpTarget | None = None
) -> tuple[list[Event], str]:
    bus = EventBus()
    events: list[Event] = []
    bus.subscribe(events.append)
    runner = AgentRunner(
        settings=settings,
        configs=load_configs(settings),
        bus=bus,
        account="alice",
        token_provider=lambda: token,
        mcp_target=target,
    )
    try:
        result = await runner.run_turn("show my documents")
    finally:
        runner.close()
    return events, result.output


def flow_of(token: str, events: list[Event]) -> FlowModel:
    model = FlowModel()
    model.signed_in("alice", decode_claims(token))
    return model.replay(events)


async def flow_of_a_turn(
    settings: Settings, token: str, target: McpTarget | None = None
) -> tuple[FlowModel, str]:
    events, output = await events_of_a_turn(settings, token, target)
    return flow_of(token, events), output


async def test_real_success_lights_every_step_with_the_audience_change(
    settings: Settings, local_stack: LocalStack
) -> None:
    assert local_stack.state is not None
    model, _ = await flow_of_a_turn(settings, api_token(local_stack, "alice"))
    assert [s.state for s in model.steps][:3] == [DONE, DONE, DONE]
    assert model.step("obo").state in (DONE, HIT) and model.step("search").state is DONE
    obo = model.step("obo")
    assert obo.fact("audience before") == local_stack.state.api_client_id
    assert "search.azure.com" in (obo.fact("audience after") or "")
    alice = next(u for u in local_stack.state.users if u.username.startswith("alice@"))
    assert alice.oid in (model.step("search").fact("ran as") or "")
    assert model.documents and model.step("search").fact("documents") == f"{model.documents} visible"


async def test_real_wrong_client_secret_stops_at_the_obo_step(
    settings: Settings, local_stack: LocalStack, wrong_secret_server: str
) -> None:
    token = api_token(local_stack, "alice")
    events, _ = await events_of_a_turn(settings, token, McpTarget(wrong_secret_server))
    model = flow_of(token, events)
    assert [s.state for s in model.steps] == [DONE, DONE, DONE, FAILED, PENDING]
    assert (model.step("obo").error or "").startswith("AADSTS7000215")
    assert model.documents is None
    # The failure as data on the events that report it: the server's failed step and the identity platform's code.
    (results,) = [e for e in events if isinstance(e, SearchResults)]
    assert (results.aadsts, results.step) == ("AADSTS7000215", FailedStep.OBO_EXCHANGE)
    (ended,) = [e for e in events if isinstance(e, ToolEnded)]
    assert (ended.code, ended.http_status, ended.step) == ("AADSTS7000215", None, FailedStep.OBO_EXCHANGE)


async def test_real_refused_token_stops_before_any_exchange(
    settings: Settings, local_stack: LocalStack
) -> None:
    """A token for another audience: the server answers 401 on connect. The MCP client library reports only
    "Server returned an error response"; the runner reports the status and the WWW-Authenticate error it saw, so
    the flow stops at step 3 (validation) with the server's words."""
    foreign = local_stack.identity.issue_access_token("alice", audience="https://graph.microsoft.com")
    model, _ = await flow_of_a_turn(settings, foreign)
    assert [s.state for s in model.steps] == [DONE, DONE, FAILED, PENDING, PENDING]
    assert model.stopped_at is not None and model.stopped_at.key == "validation"
    assert model.step("validation").error == "HTTP 401: the MCP server rejected the user's token"
    said = model.step("validation").fact("server said") or ""
    assert "refused the token: HTTP 401 invalid_token" in said and foreign not in said


async def test_real_token_without_the_scope_stops_at_validation_with_403(
    settings: Settings, local_stack: LocalStack
) -> None:
    unscoped = local_stack.identity.issue_access_token("alice", scopes=("profile",))
    model, _ = await flow_of_a_turn(settings, unscoped)
    assert [s.state for s in model.steps] == [DONE, DONE, FAILED, PENDING, PENDING]
    assert (
        model.step("validation").error == "HTTP 403: the user's token lacks the scope the MCP server requires"
    )
    assert "insufficient_scope" in (model.step("validation").fact("server said") or "")


async def test_a_real_refusal_is_decided_from_the_notice_fields_not_its_words(
    settings: Settings, local_stack: LocalStack
) -> None:
    """The runner's notice carries the refusal as data; the flow reads those fields: with the words replaced it
    still stops at validation, and with the fields cleared the same words stop nothing."""
    foreign = local_stack.identity.issue_access_token("alice", audience="https://graph.microsoft.com")
    events, _ = await events_of_a_turn(settings, foreign)
    (notice,) = [e for e in events if isinstance(e, Notice) and e.level == "error"]
    assert (notice.code, notice.http_status, notice.step) == (
        ErrorCode.TOKEN_REFUSED,
        401,
        FailedStep.VALIDATE,
    )

    wordless = [replace(e, message="(no words)") if e is notice else e for e in events]
    model = flow_of(foreign, wordless)
    assert [s.state for s in model.steps] == [DONE, DONE, FAILED, PENDING, PENDING]
    assert model.step("validation").error == "HTTP 401: the MCP server rejected the user's token"

    factless = [replace(e, code=None, http_status=None, step=None) if e is notice else e for e in events]
    model = flow_of(foreign, factless)
    assert model.stopped_at is None and model.step("validation").state is not FAILED
