"""get_documents on the real local stack (identity platform, search service, MCP server) as alice and bob, through
an agent-as-tool, with the server's steps and the search results as events labelled with the calling agent."""

from __future__ import annotations

from pathlib import Path

from console.core.agents.runner import AgentRunner
from console.core.events import EventBus
from console.core.settings import Settings
from mcp_server.stack import LocalStack
from tests.agents.helpers import Recorder, agent, load_configs, write_configs
from tests.fixtures.stack import api_token


def _configs(tmp_path: Path) -> Settings:
    directory = write_configs(
        tmp_path / "configs",
        {
            "front": agent(
                "Front Agent",
                agents_as_tools=[
                    {"agent": "library", "description": "Finds the documents the user may read."}
                ],
            ),
            "library": agent("Library Agent", mcp_servers=["documents"]),
        },
    )
    return Settings(configs_dir=directory)


async def test_get_documents_as_alice_and_bob(tmp_path: Path, use_local_stack: LocalStack) -> None:
    settings = _configs(tmp_path)
    configs = load_configs(settings)
    seen: dict[str, set[str]] = {}
    for login in ("alice", "bob"):
        bus = EventBus()
        rec = Recorder(bus)
        token = api_token(use_local_stack, login)
        runner = AgentRunner(
            settings=settings,
            configs=configs,
            bus=bus,
            account=login,
            token_provider=lambda t=token: t,
            require_mcp=True,
        )
        assert runner.mcp.target.url == use_local_stack.state.mcp_url  # type: ignore[union-attr]
        result = await runner.run_turn("show my documents")
        assert result.error is None

        calls = [(e.agent, e.tool, e.tool_type) for e in rec.of("tool_started")]
        assert calls == [("Front Agent", "library", "agent"), ("Library Agent", "get_documents", "mcp")]
        steps = rec.of("server_step")
        assert [s.step for s in steps] == ["validate", "obo_exchange", "search"]
        assert all(
            s.agent == "Library Agent" and s.tool == "get_documents" and s.duration_ms is not None
            for s in steps
        )
        assert steps[1].status in ("ok", "cache_hit")
        (search,) = rec.of("search_results")
        assert search.agent == "Library Agent" and search.error is None
        assert search.ran_as["preferred_username"].startswith(f"{login}@")
        assert search.obo_claims and search.obo_claims.get("oid") == search.ran_as["oid"]
        names = {d["name"] for d in search.documents}
        assert names
        # The answer is composed from the tool output: every visible document by name.
        assert all(name in result.output for name in names)
        # Events come in order: the server's steps inside the MCP tool call, inside the agent-as-tool.
        kinds = rec.kinds(result.turn_id)
        inner_start = kinds.index("tool_started", kinds.index("tool_started") + 1)
        assert kinds[inner_start : inner_start + 6] == [
            "tool_started",
            "server_step",
            "server_step",
            "server_step",
            "search_results",
            "tool_ended",
        ]
        # The token never appears in any event.
        assert not any(token in str(e.to_dict()) for e in rec.events)
        seen[login] = names
    assert seen["alice"] != seen["bob"]


async def test_calculator_found_through_the_stack_state_file(
    tmp_path: Path, use_local_stack: LocalStack
) -> None:
    calculator_url = getattr(use_local_stack.state, "calculator_url", None)
    assert calculator_url, "the local stack serves the remote calculator agent"
    settings = Settings(
        configs_dir=write_configs(tmp_path / "calc", {"c": agent("Helper", tools=["ask_calculator"])})
    )
    runner = AgentRunner(settings=settings, configs=load_configs(settings))
    assert runner.calculator_url == calculator_url
    result = await runner.run_turn("what is 6 * 7?")
    assert result.output == "6 * 7 = 42"
