"""No scenario weakens a security invariant: under each one a forged token is still refused, and the tool returns
either an error with no documents or only documents that admit the caller (never an untrimmed result)."""

from __future__ import annotations

import pytest

from console.core.auth.manager import AuthManager
from mcp_server.scenarios import SCENARIOS
from tests.doctor.conftest import ScenarioStack, run_json
from tests.server.helpers import assert_only_callers_entries, call, post_mcp


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_a_scenario_only_ever_makes_things_refuse(
    name: str, scenario_stack: ScenarioStack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = scenario_stack.stack
    assert stack.state is not None and stack.state.mcp_url
    url = stack.state.mcp_url
    with AuthManager.from_settings() as manager:
        token = manager.acquire_token().token.get_secret_value()
    assert run_json(capsys, "scenario", "apply", name)[0] == 0
    try:
        forged = stack.identity.issue_access_token("alice", sign_with=stack.identity.forge_key())
        assert post_mcp(url, forged).status_code == 401
        if name == "redis-down":  # the config store's Redis: the tool does not use it
            assert not scenario_stack.redis.running
        if name == "signing-key-rotated":  # alice's token is refused like any other the keys do not sign
            assert post_mcp(url, token).status_code == 401
            return
        result = await call(url, token)
        documents = (result.structured_content or {}).get("documents", [])
        if result.is_error:
            assert documents == [] and (result.meta or {}).get("obo_console", {}).get("hits") == 0
        else:
            assert documents, name
            assert_only_callers_entries(stack, "alice", documents)
    finally:
        assert run_json(capsys, "scenario", "reset")[0] == 0
