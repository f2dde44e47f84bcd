"""Azure mode: the same server built from Azure settings (pointed at the local stack) behaves the same; v1 tokens
only when configured; missing settings are named; the local CA is never picked up implicitly."""

from __future__ import annotations

from collections.abc import Iterator

import httpx2
import pytest

from console.core.settings import Settings
from mcp_server.errors import UserError
from mcp_server.localcloud.serve import ThreadedServer
from mcp_server.server.app import create_server
from mcp_server.server.config import ServerConfig
from mcp_server.server.runner import serve_threaded
from mcp_server.stack import LocalStack
from tests.fixtures.stack import api_token
from tests.server.helpers import (
    assert_only_callers_entries,
    expected_names,
    plain_client_get_documents,
    post_mcp,
)


def azure_settings(stack: LocalStack, **extra: object) -> Settings:
    state = stack.state
    assert state is not None
    return Settings(
        mode="azure",
        tenant_id=state.tenant_id,
        authority=state.authority,  # Entra would be https://login.microsoftonline.com/<tid>
        api_client_id=state.api_client_id,
        api_client_secret=state.api_client_secret,
        search_endpoint=state.search_endpoint,
        search_index=state.search_index,
        search_api_key=state.search_api_key,
        ca_cert=state.ca_cert,  # set explicitly: Azure mode never finds the local CA by itself
        mcp_port=0,
        **extra,
    )


@pytest.fixture
def azure_server(
    local_stack: LocalStack, request: pytest.FixtureRequest
) -> Iterator[tuple[ThreadedServer, ServerConfig]]:
    extra = dict(getattr(request, "param", {}))
    if extra.get("graph_endpoint") == "GRAPH":  # the stack's port is known only now
        extra["graph_endpoint"] = local_stack.identity.graph_endpoint
    config = ServerConfig.from_settings(azure_settings(local_stack, **extra))
    threaded = serve_threaded(create_server(config))
    try:
        yield threaded, config
    finally:
        threaded.stop()


async def test_azure_mode_server_gives_each_user_their_documents(
    local_stack: LocalStack, azure_server: tuple[ThreadedServer, ServerConfig]
) -> None:
    threaded, config = azure_server
    assert config.mode == "azure" and config.issuer == f"{local_stack.state.authority}/v2.0"
    for login in ("alice", "bob", "carol"):
        documents = await plain_client_get_documents(
            f"{threaded.base_url}/mcp", api_token(local_stack, login)
        )
        assert {d["name"] for d in documents} == expected_names(local_stack, login)
        assert_only_callers_entries(local_stack, login, documents)


@pytest.mark.parametrize("azure_server", [{"graph_endpoint": "GRAPH"}], indirect=True)
async def test_azure_mode_reads_overage_groups_from_the_configured_graph(
    local_stack: LocalStack, azure_server: tuple[ThreadedServer, ServerConfig]
) -> None:
    """OBO_CONSOLE_GRAPH_ENDPOINT (here the local identity host's Graph subset) is where erin's groups come from."""
    threaded, config = azure_server
    assert config.graph_endpoint == local_stack.identity.graph_endpoint
    documents = await plain_client_get_documents(f"{threaded.base_url}/mcp", api_token(local_stack, "erin"))
    assert {d["name"] for d in documents} == expected_names(local_stack, "erin")
    assert_only_callers_entries(local_stack, "erin", documents)
    assert all(r["reason"] != "unknown" for d in documents for r in d["visible_because"])


def v1_token(stack: LocalStack) -> str:
    idp = stack.identity
    api = stack.tenant.api_app.client_id
    return idp.issue_access_token(
        "alice", issuer=idp.v1_issuer, extra_claims={"ver": "1.0", "aud": f"api://{api}"}
    )


def test_v1_tokens_are_refused_by_default(
    local_stack: LocalStack, azure_server: tuple[ThreadedServer, ServerConfig]
) -> None:
    threaded, _ = azure_server
    assert post_mcp(f"{threaded.base_url}/mcp", v1_token(local_stack)).status_code == 401
    assert post_mcp(f"{threaded.base_url}/mcp", api_token(local_stack, "alice")).status_code == 200


@pytest.mark.parametrize("azure_server", [{"accept_v1_tokens": True}], indirect=True)
def test_v1_tokens_are_accepted_when_configured_but_not_mixed(
    local_stack: LocalStack, azure_server: tuple[ThreadedServer, ServerConfig]
) -> None:
    threaded, _ = azure_server
    url = f"{threaded.base_url}/mcp"
    idp = local_stack.identity
    api = local_stack.tenant.api_app.client_id
    assert post_mcp(url, v1_token(local_stack)).status_code == 200
    assert post_mcp(url, api_token(local_stack, "alice")).status_code == 200  # v2 still fine
    # A v1 issuer with a v2 audience (or the reverse) is not a token Entra issues: refused.
    mixed = idp.issue_access_token("alice", issuer=idp.v1_issuer, extra_claims={"ver": "1.0", "aud": api})
    assert post_mcp(url, mixed).status_code == 401
    mixed2 = idp.issue_access_token("alice", extra_claims={"aud": f"api://{api}"})
    assert post_mcp(url, mixed2).status_code == 401


def test_missing_azure_settings_are_named() -> None:
    with pytest.raises(UserError) as caught:
        ServerConfig.from_settings(Settings(mode="azure", tenant_id="t", api_client_id="c"))
    message = str(caught.value)
    for name in ("API_CLIENT_SECRET", "SEARCH_ENDPOINT", "SEARCH_API_KEY"):
        assert name in message
    assert "TENANT_ID" not in message


def test_azure_mode_loads_no_ca_unless_told(local_stack: LocalStack) -> None:
    settings = azure_settings(local_stack).model_copy(update={"ca_cert": None})
    config = ServerConfig.from_settings(settings)
    assert config.ca_cert is None
    assert config.authority == local_stack.state.authority
    threaded = serve_threaded(create_server(config))
    try:  # the machine's CA bundle does not vouch for the local identity platform: JWKS unreachable, token refused
        health = httpx2.get(f"{threaded.base_url}/healthz", trust_env=False, timeout=30)
        assert health.status_code == 503 and not health.json()["parts"]["jwks"]["ready"]
        assert post_mcp(f"{threaded.base_url}/mcp", api_token(local_stack, "alice")).status_code == 401
    finally:
        threaded.stop()
    default = ServerConfig.from_settings(settings.model_copy(update={"authority": None}))
    assert default.authority == f"https://login.microsoftonline.com/{local_stack.state.tenant_id}"
    assert default.issuer == f"https://login.microsoftonline.com/{local_stack.state.tenant_id}/v2.0"
