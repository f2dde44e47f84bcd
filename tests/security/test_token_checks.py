"""Hostile tokens at the MCP server, against the real local stack on loopback.

Every refused case goes to ``tools/call get_documents`` while alice's OBO token is cached (so an OBO cache hit
would hand back her documents if validation let the token through), and asserts the exact refusal: HTTP status,
``WWW-Authenticate`` error, the JSON error, ``auth_failures_total{reason}`` up by exactly one, and that the tool
never ran (no tool call, OBO exchange or cache hit counted; no documents in the answer).
"""

from __future__ import annotations

import asyncio
import json
import math
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx2
import jwt as pyjwt
import pytest
from fastmcp import Client
from fastmcp.client import StreamableHttpTransport

from mcp_server.server.app import OboServer, create_server
from mcp_server.server.obo import sign_in_strength
from mcp_server.server.runner import serve_threaded
from mcp_server.server.steps import META_KEY
from mcp_server.stack import LocalStack
from tests.fixtures.stack import OwnServer, api_token
from tests.security.token_forge import FORGED, WRONG_CLAIMS, Case, Forge
from tests.server.helpers import MCP_HEADERS, assert_only_callers_entries, call, expected_names

TOOLS_CALL = {
    "jsonrpc": "2.0",
    "id": 7,
    "method": "tools/call",
    "params": {"name": "get_documents", "arguments": {"query": "*"}},
}
USERS = ("alice", "bob", "carol")


def server_of(stack: LocalStack) -> OboServer:
    assert stack.server is not None
    return stack.server


def auth_failures(server: OboServer) -> dict[str, float]:
    return {
        sample.labels["reason"]: sample.value
        for metric in server.metrics.registry.collect()
        if metric.name == "auth_failures"
        for sample in metric.samples
        if sample.name == "auth_failures_total"
    }


def tool_activity(server: OboServer) -> tuple[float, ...]:
    """Everything the tool counts once it runs: calls (any outcome), OBO exchanges, cache hits."""
    values: list[float] = []
    for metric in server.metrics.registry.collect():
        if metric.name in ("mcp_tool_calls", "obo_exchanges", "obo_cache_hits"):
            values.append(sum(s.value for s in metric.samples if s.name.endswith("_total")))
    return tuple(values)


def post_tools_call(url: str, token: str) -> httpx2.Response:
    headers = dict(MCP_HEADERS) | {"Authorization": f"Bearer {token}"}
    return httpx2.post(url, headers=headers, content=json.dumps(TOOLS_CALL), timeout=30.0, trust_env=False)


def alice_cache_key(stack: LocalStack) -> tuple[str, ...]:
    """The cache key of alice's signed-in token: (tid, oid, scope, sign-in strength), as the tool builds it."""
    alice = stack.tenant.user_by_login("alice")
    assert alice is not None
    claims = pyjwt.decode(api_token(stack, "alice"), options={"verify_signature": False})
    strength = sign_in_strength(claims)
    return (stack.tenant.tenant_id, alice.oid, server_of(stack).config.obo_scope, strength)


@pytest.fixture(scope="module")
def forge(local_stack: LocalStack) -> Forge:
    return Forge(local_stack)


@pytest.fixture
def warm_alice(local_stack: LocalStack) -> Iterator[LocalStack]:
    """alice's OBO token is in the cache: her real signed-in token just read her documents through MCP."""
    key = alice_cache_key(local_stack)
    if server_of(local_stack).cache.peek(key) is None:
        result = asyncio.run(call(local_stack.mcp_url, api_token(local_stack, "alice")))
        assert not result.is_error, result.content
        names = {d["name"] for d in result.structured_content["documents"]}
        assert names == expected_names(local_stack, "alice")
    assert server_of(local_stack).cache.peek(key) is not None
    yield local_stack


def assert_refused_warm(stack: LocalStack, case: Case, token: str) -> None:
    server = server_of(stack)
    assert server.cache.peek(alice_cache_key(stack)) is not None, "alice's OBO cache must be warm"
    before_failures, before_activity = auth_failures(server), tool_activity(server)
    response = post_tools_call(stack.mcp_url, token)
    assert response.status_code == case.status, f"{case.name}: {response.status_code} {response.text[:300]}"
    header = response.headers.get("www-authenticate", "")
    assert header.startswith("Bearer ") and f'error="{case.error}"' in header, header
    metadata_url = stack.mcp_url.replace("/mcp", "/.well-known/oauth-protected-resource/mcp")
    assert f'resource_metadata="{metadata_url}"' in header
    assert response.json()["error"] == case.error
    assert "documents" not in response.text and "obo_console" not in response.text
    after = auth_failures(server)
    assert after.get(case.reason, 0.0) == before_failures.get(case.reason, 0.0) + 1, (case.name, after)
    assert sum(after.values()) == sum(before_failures.values()) + 1, (
        f"{case.name} counted under another reason"
    )
    assert tool_activity(server) == before_activity, f"{case.name}: the tool ran"


# -- forged tokens: not validly signed by the platform, or not a JWS at all --------------------------------------


@pytest.mark.parametrize("case", FORGED, ids=[f"forged-{c.name}" for c in FORGED])
def test_forged_token_is_refused_with_a_warm_cache(warm_alice: LocalStack, forge: Forge, case: Case) -> None:
    assert_refused_warm(warm_alice, case, case.build(forge))


# -- wrongly-claimed tokens: signed with the platform's own key ------------------------------------------------


@pytest.mark.parametrize("case", WRONG_CLAIMS, ids=[f"claims-{c.name}" for c in WRONG_CLAIMS])
def test_wrongly_claimed_token_is_refused_with_a_warm_cache(
    warm_alice: LocalStack, forge: Forge, case: Case
) -> None:
    assert_refused_warm(warm_alice, case, case.build(forge))


def test_the_cases_differ_from_an_accepted_token_only_by_their_defect(
    warm_alice: LocalStack, forge: Forge
) -> None:
    """The control: the same builders with nothing bent give alice's documents through the same raw call."""
    for token in (
        forge.signed(forge.claims()),
        forge.with_claims(nbf=int(time.time()) + 10),
        forge.with_claims(exp=time.time() + 600.5),
    ):  # nbf within the skew; a fractional NumericDate
        response = post_tools_call(warm_alice.mcp_url, token)
        assert response.status_code == 200, response.text[:300]
        assert '"documents"' in response.text and "Alice Example" in response.text


def test_a_scope_claim_never_grants_what_scp_does_not(warm_alice: LocalStack, forge: Forge) -> None:
    """``scope`` is ignored (Entra carries delegated scopes in ``scp`` only): the same token with ``scp`` fixed is
    accepted, so the 403 above is the ``scope`` claim being ignored, nothing else."""
    accepted = forge.with_claims(scope="read", scp="execute")
    assert post_tools_call(warm_alice.mcp_url, accepted).status_code == 200
    verifier = server_of(warm_alice).verifier
    assert verifier is not None
    validated = asyncio.run(verifier.load_access_token(accepted))
    assert validated is not None and validated.scopes == ["execute"]


def test_unreachable_jwks_is_counted_as_jwks_unavailable(local_stack: LocalStack, forge: Forge) -> None:
    """A server whose authority does not answer cannot check any signature: it refuses and says why."""
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    authority = f"https://127.0.0.1:{dead}/{local_stack.tenant.tenant_id}"
    server = create_server(local_stack.server_config(authority=authority, port=0))
    threaded = serve_threaded(server)
    try:
        claims = forge.claims() | {"iss": f"{authority}/v2.0"}
        response = post_tools_call(f"{threaded.base_url}/mcp", forge.signed(claims))
        assert response.status_code == 401 and response.json()["error"] == "invalid_token"
        assert auth_failures(server) == {"jwks_unavailable": 1.0}
    finally:
        threaded.stop()


@pytest.mark.parametrize(
    ("authorization", "reason", "error"),
    [
        ("Bearer", "missing_token", None),  # the scheme without a token: no token at all
        ("Bearer  " + "x" * 20, "malformed", "invalid_token"),
        ("bearer not.a.token", "malformed", "invalid_token"),
    ],
)
def test_empty_and_odd_bearer_values(
    warm_alice: LocalStack, authorization: str, reason: str, error: str | None
) -> None:
    server = server_of(warm_alice)
    before, activity = auth_failures(server), tool_activity(server)
    headers = dict(MCP_HEADERS) | {"Authorization": authorization}
    response = httpx2.post(
        warm_alice.mcp_url, headers=headers, content=json.dumps(TOOLS_CALL), timeout=30.0, trust_env=False
    )
    assert response.status_code == 401
    header = response.headers["www-authenticate"]
    assert (f'error="{error}"' in header) if error else ("error=" not in header)
    assert auth_failures(server).get(reason, 0.0) == before.get(reason, 0.0) + 1
    assert tool_activity(server) == activity


# -- concurrent users: interleaved calls never cross users ----------------------------------------------------


CLIENTS_PER_USER = 5
CALLS_PER_CLIENT = 10  # 3 users x 5 clients x 10 calls = 150 calls, all in flight together


async def _one_client(url: str, token: str) -> list[Any]:
    transport = StreamableHttpTransport(url=url, headers={"Authorization": f"Bearer {token}"})
    async with Client(transport=transport, timeout=120) as client:
        calls = [
            client.call_tool("get_documents", {"query": "*"}, raise_on_error=False)
            for _ in range(CALLS_PER_CLIENT)
        ]
        return list(await asyncio.gather(*calls))


async def _interleaved(mcp_url: str, tokens: dict[str, str]) -> dict[str, list[Any]]:
    order = [login for _ in range(CLIENTS_PER_USER) for login in USERS]  # alice, bob, carol, alice, ...
    results = await asyncio.gather(*(_one_client(mcp_url, tokens[login]) for login in order))
    by_user: dict[str, list[Any]] = {login: [] for login in USERS}
    for login, batch in zip(order, results, strict=True):
        by_user[login].extend(batch)
    return by_user


def test_150_concurrent_interleaved_calls_by_three_users_never_cross(
    local_stack: LocalStack, own_mcp_server: OwnServer
) -> None:
    tokens = {login: api_token(local_stack, login) for login in USERS}  # real device-code sign-ins
    # A server of its own, its OBO cache cold: the first calls of each user race for one exchange while the
    # others join (the session stack's cache stays as the other tests left it).
    by_user = asyncio.run(_interleaved(own_mcp_server.mcp_url, tokens))
    assert sum(len(r) for r in by_user.values()) == 150
    expected = {login: expected_names(local_stack, login) for login in USERS}
    assert len({frozenset(names) for names in expected.values()}) == 3, (
        "the demo users must see different sets"
    )
    for login, results in by_user.items():
        user = local_stack.tenant.user_by_login(login)
        assert user is not None
        for result in results:
            assert not result.is_error, result.content
            documents = result.structured_content["documents"]
            assert {d["name"] for d in documents} == expected[login]
            assert_only_callers_entries(local_stack, login, documents)
            meta = result.meta[META_KEY]
            assert meta["ran_as"]["oid"] == user.oid and meta["obo_claims"]["oid"] == user.oid


def test_numeric_date_rules() -> None:
    """The NumericDate test the verifier applies to exp, iat and nbf (RFC 7519 §2: a finite JSON number)."""
    from mcp_server.server.auth import is_numeric_date

    assert [is_numeric_date(v) for v in (0, 1.5, 10**12)] == [True, True, True]
    assert not any(is_numeric_date(v) for v in (True, "1", None, [1], math.inf, -math.inf, math.nan))
