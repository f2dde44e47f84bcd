""" "Why you can see it" with groups as Entra sends them: in the token, absent (the registration asks for none), or
the overage claims (erin, 241 groups) — the server then asks Microsoft Graph (OBO, cached per user). A Graph
failure leaves the search result as it is and says the reason is unknown. Real MSAL sign-ins, the real stack."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from mcp_server.localcloud.tenant import Tenant, load_demo_tenant
from mcp_server.server.app import create_server
from mcp_server.server.config import GRAPH_SCOPE
from mcp_server.server.runner import serve_threaded
from mcp_server.stack import LocalStack, StackPorts
from tests.fixtures.stack import OwnServer, api_token
from tests.server.helpers import call, expected_names

META = "obo_console"


def _group_id(tenant: Tenant, name: str) -> str:
    return next(g.id for g in tenant.groups if g.name == name)


def _run(url: str, token: str) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    result = asyncio.run(call(url, token))
    assert not result.is_error, result.content
    documents = {d["name"]: d for d in result.structured_content["documents"]}
    return documents, result.meta[META]


@pytest.fixture
def paging_server(local_stack: LocalStack) -> Iterator[OwnServer]:
    """A server of its own (cold cache) that reads Graph 100 memberships a page, so erin's list takes three."""
    server = create_server(local_stack.server_config(port=0, graph_page_size=100))
    threaded = serve_threaded(server)
    try:
        yield OwnServer(server, f"{threaded.base_url}/mcp")
    finally:
        threaded.stop()


def test_groups_in_the_token_explain_visibility_without_asking_graph(
    local_stack: LocalStack, own_mcp_server: OwnServer
) -> None:
    tenant = local_stack.tenant
    calls = local_stack.identity.graph.calls
    documents, meta = _run(own_mcp_server.mcp_url, api_token(local_stack, "alice"))
    assert set(documents) == expected_names(local_stack, "alice")
    finance = _group_id(tenant, "Finance")
    assert documents["Q3 budget forecast"]["visible_because"] == [
        {"field": "group", "value": finance, "reason": "group"}
    ]
    assert meta["ran_as"]["groups_source"] == "token" and "groups_error" not in meta["ran_as"]
    alice = tenant.user_by_login("alice")
    assert alice is not None and meta["ran_as"]["groups"] == list(alice.groups)
    assert meta["steps"][-1]["groups"] == "token" and isinstance(meta["steps"][-1]["groups_ms"], float)
    assert local_stack.identity.graph.calls == calls  # nobody asked Graph


def test_overage_groups_come_from_graph_paged_and_the_graph_token_is_cached(
    local_stack: LocalStack, paging_server: OwnServer
) -> None:
    tenant = local_stack.tenant
    erin = tenant.user_by_login("erin")
    assert erin is not None
    token = api_token(local_stack, "erin")
    calls = local_stack.identity.graph.calls
    documents, meta = _run(paging_server.mcp_url, token)
    assert set(documents) == expected_names(local_stack, "erin")
    assert {"Project 007 status report", "Project 233 risk register"} <= set(documents)
    for name, group in (
        ("Project 007 status report", "Project 007"),
        ("Project 233 risk register", "Project 233"),
    ):
        gid = _group_id(tenant, group)
        assert documents[name]["group"] == [gid]
        assert documents[name]["visible_because"] == [{"field": "group", "value": gid, "reason": "group"}]
    assert meta["ran_as"]["groups_source"] == "graph" and meta["ran_as"]["groups"] == list(erin.groups)
    assert meta["steps"][-1]["groups"] == "graph"
    assert local_stack.identity.graph.calls == calls + 3  # 100 + 100 + 41, following @odata.nextLink
    key = (tenant.tenant_id, erin.oid, GRAPH_SCOPE)
    graph_token = paging_server.server.cache.peek(key)
    assert graph_token is not None and graph_token.claims["aud"] == "https://graph.microsoft.com"
    _run(paging_server.mcp_url, token)
    assert paging_server.server.cache.peek(key) is graph_token  # reused, not exchanged again


@pytest.fixture(scope="module")
def no_groups_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """A stack whose API registration sets no groupMembershipClaims: its tokens carry no groups at all."""
    base = load_demo_tenant()
    api = replace(base.api_app, group_membership_claims=None)
    tenant = replace(base, apps=tuple(api if a.key == "api" else a for a in base.apps))
    home = Path(tmp_path_factory.mktemp("no-groups-stack"))
    stack = LocalStack(
        home=home,
        ports=StackPorts(identity=0, search=0, mcp=0, calculator=None),
        state_file=home / "state.json",
        tenant=tenant,
    )
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


def test_without_a_groups_claim_the_memberships_come_from_graph(no_groups_stack: LocalStack) -> None:
    token = api_token(no_groups_stack, "carol")
    state = no_groups_stack.state
    assert state is not None and state.mcp_url
    documents, meta = _run(state.mcp_url, token)
    assert set(documents) == expected_names(no_groups_stack, "carol")
    hr = _group_id(no_groups_stack.tenant, "HR")
    assert documents["Salary bands 2026"]["visible_because"] == [
        {"field": "group", "value": hr, "reason": "group"}
    ]
    carol = no_groups_stack.tenant.user_by_login("carol")
    assert carol is not None
    assert meta["ran_as"]["groups_source"] == "graph" and meta["ran_as"]["groups"] == list(carol.groups)


def _assert_unknown_but_unchanged(
    stack: LocalStack, documents: dict[str, dict[str, Any]], meta: dict[str, Any], detail: str
) -> None:
    assert set(documents) == expected_names(stack, "erin")  # the search service's answer, untouched
    for name in ("Project 007 status report", "Project 233 risk register", "Travel expense policy"):
        assert documents[name]["group"] == []  # no group entry is shown when the groups are unknown
        assert documents[name]["visible_because"] == [
            {"field": "group", "value": None, "reason": "unknown", "detail": detail}
        ]
    assert documents["Company handbook"]["visible_because"] == [
        {"field": "oid", "value": "all", "reason": "public"}
    ]
    assert meta["ran_as"]["groups_source"] == "unknown" and meta["ran_as"]["groups"] is None
    assert meta["ran_as"]["groups_error"] == detail


def test_graph_consent_missing_leaves_results_and_says_unknown(
    local_stack: LocalStack, own_mcp_server: OwnServer
) -> None:
    token = api_token(local_stack, "erin")
    with local_stack.identity.consent_revoked("erin", "https://graph.microsoft.com"):
        documents, meta = _run(own_mcp_server.mcp_url, token)
    _assert_unknown_but_unchanged(
        local_stack,
        documents,
        meta,
        "the OBO token for Microsoft Graph was refused (AADSTS65001): consent for Microsoft Graph is missing "
        "(grant User.Read or GroupMember.Read.All with admin consent)",
    )


def test_a_graph_outage_leaves_results_and_says_unknown(
    local_stack: LocalStack, own_mcp_server: OwnServer
) -> None:
    token = api_token(local_stack, "erin")
    local_stack.identity.graph.fail_with(503)
    try:
        documents, meta = _run(own_mcp_server.mcp_url, token)
    finally:
        local_stack.identity.graph.fail_with(None)
    _assert_unknown_but_unchanged(
        local_stack,
        documents,
        meta,
        "Microsoft Graph answered HTTP 503 serviceNotAvailable: The service is temporarily unavailable.",
    )
