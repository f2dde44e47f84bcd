"""Azure-mode `doctor`, pointed at the local stack through Azure-mode settings only (no state file, the local CA
trusted the way a machine trusts a CA: SSL_CERT_FILE / REQUESTS_CA_BUNDLE), gives the same results as local mode."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from mcp_server.localcloud.serve import ThreadedServer
from mcp_server.scenarios import SCENARIOS
from mcp_server.search_versions import SDK_DEFAULT_API_VERSION
from mcp_server.stack_state import read_state
from tests.doctor.conftest import ScenarioStack, run_json
from tests.fixtures.stack import azure_mode_env


def _azure_env(stack: ScenarioStack, monkeypatch: pytest.MonkeyPatch) -> None:
    state = read_state(stack.stack.state_file)
    assert state is not None and state.search_api_key is not None and state.ca_cert
    settings = {
        **azure_mode_env(state, str(state.mcp_url), stack.home / "no-such-state.json"),
        "OBO_CONSOLE_SEARCH_ENDPOINT": str(state.search_endpoint),
        "OBO_CONSOLE_SEARCH_INDEX": str(state.search_index),
        "OBO_CONSOLE_SEARCH_API_KEY": state.search_api_key.get_secret_value(),
        "SSL_CERT_FILE": state.ca_cert,
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)


def _verdicts(report: dict[str, object]) -> list[tuple[str, object]]:
    checks = report["checks"]
    assert isinstance(checks, list)
    return [(c["id"], c["ok"]) for c in checks if c["id"] != "local_ca"]  # Azure mode trusts the system's CAs


@pytest.mark.parametrize("name", [None, *SCENARIOS])
def test_azure_mode_doctor_matches_local_mode(
    name: str | None,
    with_redis: ScenarioStack,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if name is not None:
        assert run_json(capsys, "scenario", "apply", name)[0] == 0
    try:
        local_code, local = run_json(capsys, "doctor")
        with monkeypatch.context() as azure:
            _azure_env(with_redis, azure)
            azure_code, remote = run_json(capsys, "doctor")
    finally:
        if name is not None:
            assert run_json(capsys, "scenario", "reset")[0] == 0
    assert [c["id"] for c in remote["checks"]][:2] == ["settings", "authority"]
    assert (azure_code, remote["ok"], _verdicts(remote)) == (local_code, local["ok"], _verdicts(local)), (
        remote
    )
    assert local["ok"] is (name is None)


@pytest.mark.parametrize(
    "version",
    [
        "2024-07-01",  # GA: no permission filtering
        "2099-01-01-preview",  # shaped like one, known to no SDK
        "2026-08-01-preview'&top=1000",  # the query string of the doctor's own request must not take it
    ],
)
def test_a_configured_api_version_without_document_level_access_is_named_with_its_setting(
    version: str,
    with_redis: ScenarioStack,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The doctor checks the api-version the MCP server would send: OBO_CONSOLE_SEARCH_API_VERSION when set."""
    with monkeypatch.context() as azure:
        _azure_env(with_redis, azure)
        azure.setenv("OBO_CONSOLE_SEARCH_API_VERSION", version)
        code, report = run_json(capsys, "doctor")
    failed = [c for c in report["checks"] if c["ok"] is False]
    assert code == 1 and [c["id"] for c in failed] == ["api_version"]
    assert failed[0]["detail"] == f"api-version {version} has no document-level access"
    assert failed[0]["fix"] == (
        "Set OBO_CONSOLE_SEARCH_API_VERSION to a preview version with document-level access (from "
        "2025-05-01-preview on, e.g. 2026-08-01-preview), or unset it for the SDK's default."
    )
    skipped = {c["id"]: c["detail"] for c in report["checks"] if c["skipped"]}
    assert skipped == {
        "search_service": "skipped: needs 'api_version', which failed",
        "index": "skipped: needs 'search_service', which was skipped",
        "query": "skipped: needs 'search_service', which was skipped",
    }


@pytest.mark.parametrize("configured", [None, "2025-05-01-preview"])
def test_a_search_service_refusing_the_api_version_is_named_with_the_version_fix(
    configured: str | None,
    with_redis: ScenarioStack,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A service that knows the version the static check admits may still refuse it (an older service, a region
    without the preview): its 400 names the version and the version fix, not the endpoint."""
    asked: list[str] = []

    async def refuse(request: Request) -> JSONResponse:
        asked.append(request.query_params.get("api-version", ""))
        error = {"code": "", "message": f"Invalid or unsupported api-version '{asked[-1]}'."}
        return JSONResponse({"error": error}, status_code=400)

    app = Starlette(routes=[Route("/{path:path}", refuse, methods=["GET", "POST"])])
    with ThreadedServer(app, "old-search-service") as old_service, monkeypatch.context() as azure:
        _azure_env(with_redis, azure)
        azure.setenv("OBO_CONSOLE_SEARCH_ENDPOINT", old_service.base_url)
        if configured is None:
            azure.delenv("OBO_CONSOLE_SEARCH_API_VERSION", raising=False)
        else:
            azure.setenv("OBO_CONSOLE_SEARCH_API_VERSION", configured)
        code, report = run_json(capsys, "doctor")
    version = configured or SDK_DEFAULT_API_VERSION
    assert asked and set(asked) == {version}  # the version the MCP server would send, and only that one
    (failed,) = [c for c in report["checks"] if c["id"] == "search_service"]
    assert code == 1 and failed["ok"] is False
    assert failed["detail"] == f"the search service does not accept api-version {version}"
    expected_fix = (
        "Install azure-search-documents==12.1.0b2"
        if configured is None
        else "Set OBO_CONSOLE_SEARCH_API_VERSION to a preview version with document-level access"
    )
    assert failed["fix"].startswith(expected_fix)
    assert "OBO_CONSOLE_SEARCH_ENDPOINT" not in failed["fix"]
