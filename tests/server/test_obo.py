"""The OBO exchange: cached per (tenant, oid, scope), single-flight, fail closed with the AADSTS code."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from pydantic import SecretStr

from mcp_server.localcloud.search.auth import EntraTokenValidator
from mcp_server.localcloud.search.service import SearchService
from mcp_server.localcloud.serve import ThreadedServer
from mcp_server.server.app import create_server
from mcp_server.server.config import ServerConfig
from mcp_server.server.obo import OboCache, OboError, OboExchanger, OboToken
from mcp_server.server.runner import serve_threaded
from mcp_server.server.steps import META_KEY
from mcp_server.stack import LocalStack
from tests.fixtures.stack import api_token
from tests.server.helpers import call, expected_names


class CountingExchanger:
    def __init__(self, config: ServerConfig) -> None:
        self.inner = OboExchanger(config)
        self.calls = 0

    async def __call__(self, assertion: str) -> OboToken:
        self.calls += 1
        return await asyncio.to_thread(self.inner.exchange, assertion)


def cache_key(token: str, scope: str = "https://search.azure.com/.default") -> tuple[str, str, str]:
    claims = jwt.decode(token, options={"verify_signature": False})
    return claims["tid"], claims["oid"], scope


async def test_a_thousand_calls_from_one_user_cost_one_exchange(local_stack: LocalStack) -> None:
    exchanger = CountingExchanger(local_stack.server_config())
    cache = OboCache()
    token = api_token(local_stack, "alice")
    key = cache_key(token)
    results = await asyncio.gather(*(cache.get(key, lambda: exchanger(token)) for _ in range(500)))
    results += [await cache.get(key, lambda: exchanger(token)) for _ in range(500)]
    assert exchanger.calls == 1
    statuses = [status for _, status in results]
    assert statuses.count("miss") == 1 and statuses.count("joined") == 499 and statuses.count("hit") == 500
    assert len({id(obo) for obo, _ in results}) == 1
    exchanger.inner.close()


async def test_each_user_has_their_own_entry_and_token(local_stack: LocalStack) -> None:
    exchanger = CountingExchanger(local_stack.server_config())
    cache = OboCache()
    tokens = {u: api_token(local_stack, u) for u in ("alice", "bob", "carol")}
    got = await asyncio.gather(*(cache.get(cache_key(t), lambda t=t: exchanger(t)) for t in tokens.values()))
    assert exchanger.calls == 3 and len(cache) == 3
    for (login, _), (obo, _) in zip(tokens.items(), got, strict=True):
        assert obo.claims["oid"] == local_stack.tenant.user_by_login(login).oid
        assert obo.claims["aud"] == "https://search.azure.com"
    exchanger.inner.close()


async def test_a_token_expiring_within_the_margin_is_not_reused(local_stack: LocalStack) -> None:
    exchanger = CountingExchanger(local_stack.server_config())
    cache = OboCache(margin=10 * 3600)  # every OBO token "expires within the margin"
    token = api_token(local_stack, "bob")
    for _ in range(3):
        await cache.get(cache_key(token), lambda: exchanger(token))
    assert exchanger.calls == 3
    exchanger.inner.close()


async def test_a_failed_exchange_is_shared_with_its_waiters_and_not_cached() -> None:
    calls = 0

    async def failing() -> OboToken:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        raise OboError("nope", aadsts="AADSTS65001")

    cache = OboCache()
    key = ("t", "o", "s")
    outcomes = await asyncio.gather(*(cache.get(key, failing) for _ in range(10)), return_exceptions=True)
    assert calls == 1 and all(isinstance(o, OboError) and o.aadsts == "AADSTS65001" for o in outcomes)
    with pytest.raises(OboError):
        await cache.get(key, failing)
    assert calls == 2 and len(cache) == 0


def test_expired_assertion_gives_aadsts500133(local_stack: LocalStack) -> None:
    exchanger = OboExchanger(local_stack.server_config())
    try:
        with pytest.raises(OboError) as caught:
            exchanger.exchange(local_stack.identity.issue_access_token("alice", lifetime=-60))
        assert caught.value.aadsts == "AADSTS500133" and "expired" in str(caught.value)
    finally:
        exchanger.close()


async def test_http_calls_from_one_user_cost_one_exchange(local_stack: LocalStack) -> None:
    server = create_server(local_stack.server_config(port=0))
    threaded = serve_threaded(server)
    try:
        token = api_token(local_stack, "carol")
        for _ in range(20):
            result = await call(f"{threaded.base_url}/mcp", token)
            assert not result.is_error
        assert server.metrics.value("obo_exchanges_total", outcome="started") == 1
        assert server.metrics.value("obo_cache_hits_total") == 19
        assert server.metrics.value("mcp_tool_calls_total", tool="get_documents", outcome="ok") == 20
    finally:
        threaded.stop()


# -- fail closed ----------------------------------------------------------------------------------------------


@pytest.fixture
def serve(local_stack: LocalStack) -> Iterator[callable]:
    started: list[ThreadedServer] = []

    def start(**overrides: object) -> str:
        threaded = serve_threaded(create_server(local_stack.server_config(port=0, **overrides)))
        started.append(threaded)
        return f"{threaded.base_url}/mcp"

    yield start
    for threaded in started:
        threaded.stop()


def assert_failed_closed(result: object, *, code: str | None, words: str) -> dict:
    assert result.is_error
    assert result.structured_content is None or not result.structured_content.get("documents")
    text = result.content[0].text
    assert words in text
    if code:
        assert code in text
    meta = result.meta[META_KEY]
    assert meta["aadsts"] == code
    assert meta["hits"] == 0
    return meta


async def test_wrong_client_secret_is_aadsts7000215_and_no_search(
    local_stack: LocalStack, serve: callable
) -> None:
    url = serve(api_client_secret=SecretStr("not-the-secret"))
    seen = local_stack.search.audiences_seen
    result = await call(url, api_token(local_stack, "alice"))
    meta = assert_failed_closed(result, code="AADSTS7000215", words="client secret")
    assert [s["step"] for s in meta["steps"]] == ["validate", "obo_exchange"]
    assert meta["steps"][1]["status"] == "error"
    assert local_stack.search.audiences_seen == seen  # the search service was never called


async def test_missing_consent_is_aadsts65001(local_stack: LocalStack, serve: callable) -> None:
    url = serve()
    with local_stack.identity.consent_revoked("carol"):
        result = await call(url, api_token(local_stack, "carol"))
    assert_failed_closed(result, code="AADSTS65001", words="consent")
    # Other users are unaffected, and carol works again once consent is back.
    bob = await call(url, api_token(local_stack, "bob"))
    assert {d["name"] for d in bob.structured_content["documents"]} == expected_names(local_stack, "bob")
    # MSAL replays an identical failed request's HTTP 400 for 60 s (its throttling), so a new token is needed.
    carol = await call(url, local_stack.identity.issue_access_token("carol"))
    assert not carol.is_error


async def test_a_stopped_search_service_is_an_error_with_no_documents(
    local_stack: LocalStack, serve: callable, tmp_path: Path
) -> None:
    from mcp_server import provision

    idp = local_stack.identity
    validator = EntraTokenValidator(idp.jwks, issuers={idp.v1_issuer, idp.issuer})
    search = SearchService(
        tmp_path / "search", "key-1", validator, lambda tid, oid: local_stack.tenant.groups_of(oid)
    ).start()
    try:
        provision.provision(
            search.endpoint,
            SecretStr("key-1"),
            "outage-idx",
            provision.principals_from_tenant(local_stack.tenant),
        )
        url = serve(
            search_endpoint=search.endpoint, search_index="outage-idx", search_api_key=SecretStr("key-1")
        )
        token = api_token(local_stack, "alice")
        ok = await call(url, token)
        assert {d["name"] for d in ok.structured_content["documents"]} == expected_names(local_stack, "alice")
    finally:
        search.stop()
    result = await call(url, token)
    meta = assert_failed_closed(result, code=None, words="search service is unreachable")
    assert [s["step"] for s in meta["steps"]] == ["validate", "obo_exchange", "search"]
    assert meta["cache_hit"] is True and meta["steps"][2]["status"] == "error"
