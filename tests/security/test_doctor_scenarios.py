"""Hostile input to the scenario admin endpoint and the server's OBO diagnostic path: each refusal exact."""

from __future__ import annotations

import json
import stat

import httpx2
import pytest

from console.cli import main
from mcp_server.scenarios import SCENARIOS
from mcp_server.server.diagnostics import REPORTED_CLAIMS
from mcp_server.stack import LocalStack
from mcp_server.stack_state import read_state
from tests.fixtures.stack import api_token


def _admin(stack: LocalStack) -> tuple[str, str]:
    assert stack.state is not None and stack.state.admin_url and stack.state.admin_secret
    return stack.state.admin_url, stack.state.admin_secret.get_secret_value()


def test_admin_endpoint_without_or_with_a_wrong_secret_is_refused(local_stack: LocalStack) -> None:
    url, secret = _admin(local_stack)
    assert url.startswith("http://127.0.0.1:")  # loopback only
    for method, path in (("GET", "/scenarios"), ("POST", "/scenarios/apply"), ("POST", "/scenarios/reset")):
        body = {"name": "search-down"}
        missing = httpx2.request(method, url + path, json=body, trust_env=False)
        assert missing.status_code == 401 and missing.json()["error"] == "unauthorized"
        assert "admin_secret in the local stack state file" in missing.json()["message"]
        assert missing.headers["www-authenticate"].startswith("Bearer ")
        for wrong in ("Bearer not-the-secret", f"Bearer {secret}x", f"Basic {secret}", "Bearer"):
            refused = httpx2.request(
                method, url + path, json=body, headers={"Authorization": wrong}, trust_env=False
            )
            expected = (
                (401, "unauthorized")
                if not wrong.startswith("Bearer ") or not wrong[7:].strip()
                else (403, "forbidden")
            )
            assert (refused.status_code, refused.json()["error"]) == expected, wrong
    # Nothing was switched by any of them.
    listing = httpx2.get(url + "/scenarios", headers={"Authorization": f"Bearer {secret}"}, trust_env=False)
    assert listing.status_code == 200 and listing.json()["active"] is None
    assert [s["name"] for s in listing.json()["scenarios"]] == list(SCENARIOS)


def test_unknown_scenario_and_bad_bodies_get_clear_errors(local_stack: LocalStack) -> None:
    url, secret = _admin(local_stack)
    auth = {"Authorization": f"Bearer {secret}"}
    unknown = httpx2.post(
        url + "/scenarios/apply", json={"name": "drop-all-checks"}, headers=auth, trust_env=False
    )
    assert unknown.status_code == 404 and unknown.json() == {
        "error": "unknown_scenario",
        "message": f"No scenario named 'drop-all-checks'. Scenarios: {', '.join(SCENARIOS)}.",
    }
    for body in (b"not json", b"[]", b'{"name": 3}', b"{}"):
        bad = httpx2.post(url + "/scenarios/apply", content=body, headers=auth, trust_env=False)
        assert bad.status_code == 400 and bad.json() == {
            "error": "bad_request",
            "message": 'Send JSON {"name": "<scenario>"}.',
        }
    # The session stack manages no Redis: it says so, and nothing changes.
    unavailable = httpx2.post(
        url + "/scenarios/apply", json={"name": "redis-down"}, headers=auth, trust_env=False
    )
    assert unavailable.status_code == 409 and unavailable.json()["error"] == "unavailable"
    assert unavailable.json()["message"].startswith(
        "This local stack manages no Redis, so it cannot take one down"
    )
    huge = httpx2.post(url + "/scenarios/apply", content=b"x" * 5000, headers=auth, trust_env=False)
    assert huge.status_code == 413 and huge.json()["error"] == "too_large"
    listing = httpx2.get(url + "/scenarios", headers=auth, trust_env=False)
    assert listing.json()["active"] is None


def test_the_admin_secret_lives_only_in_the_private_state_file(local_stack: LocalStack) -> None:
    state = read_state(local_stack.state_file)
    assert state is not None and state.admin_secret is not None
    assert stat.S_IMODE(local_stack.state_file.stat().st_mode) == 0o600
    assert "admin_secret=SecretStr('**********')" in repr(state)  # masked wherever it is printed


def test_cli_unknown_scenario_and_azure_mode_are_refused(
    use_local_stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["scenario", "apply", "nope"]) == 2
    assert f"No scenario named 'nope'. Scenarios: {', '.join(SCENARIOS)}." in capsys.readouterr().err
    assert main(["--mode", "azure", "scenario", "list"]) == 2
    assert "Scenarios switch the local stack: they work in local mode only." in capsys.readouterr().err


def _diagnostic(stack: LocalStack) -> str:
    assert stack.state is not None and stack.state.mcp_url
    return stack.state.mcp_url.removesuffix("/mcp") + "/diagnostics/obo"


def test_obo_diagnostic_refuses_what_the_tool_refuses(local_stack: LocalStack) -> None:
    url = _diagnostic(local_stack)
    base = url.removesuffix("/diagnostics/obo")
    metadata = f'resource_metadata="{base}/.well-known/oauth-protected-resource/mcp"'
    none = httpx2.get(url, trust_env=False)
    assert none.status_code == 401 and none.json()["error"] == "invalid_token"
    assert none.headers["www-authenticate"] == f'Bearer error="invalid_token", {metadata}'
    identity = local_stack.identity
    forged = identity.issue_access_token("alice", sign_with=identity.forge_key())
    expired = identity.issue_access_token("alice", lifetime=-60)
    for bad in (forged, expired, "not-a-jwt"):
        refused = httpx2.get(url, headers={"Authorization": f"Bearer {bad}"}, trust_env=False)
        assert refused.status_code == 401 and refused.json()["error"] == "invalid_token"
    no_scope = identity.issue_access_token("alice", scopes=["other"])
    refused = httpx2.get(url, headers={"Authorization": f"Bearer {no_scope}"}, trust_env=False)
    assert refused.status_code == 403 and refused.json()["error"] == "insufficient_scope"


def test_obo_diagnostic_reports_claims_never_a_token(local_stack: LocalStack) -> None:
    token = api_token(local_stack, "alice")
    answer = httpx2.get(
        _diagnostic(local_stack), headers={"Authorization": f"Bearer {token}"}, trust_env=False
    )
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert body["ok"] is True and body["scope"] == "https://search.azure.com/.default"
    assert (
        set(body["obo_claims"]) <= set(REPORTED_CLAIMS)
        and body["obo_claims"]["aud"] == "https://search.azure.com"
    )
    assert body["caller"]["oid"] == body["obo_claims"]["oid"]
    text = json.dumps(body)
    assert "eyJ" not in text and token not in text  # no JWT of any kind
