"""get_documents end to end: a plain MCP client, per-user trimming, concurrency, no token passed through."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import pytest

from mcp_server.stack import LocalStack
from tests.fixtures.stack import OwnServer, api_token
from tests.server.helpers import (
    assert_only_callers_entries,
    call,
    expected_names,
    plain_client_get_documents,
)

USERS = ("alice", "bob", "carol")
SEARCH_AUDIENCE = "https://search.azure.com"


@pytest.mark.parametrize("login", USERS)
async def test_a_plain_client_gets_exactly_the_users_documents(local_stack: LocalStack, login: str) -> None:
    documents = await plain_client_get_documents(local_stack.mcp_url, api_token(local_stack, login))
    names = [d["name"] for d in documents]
    assert len(names) == len(set(names))
    assert set(names) == expected_names(local_stack, login)
    assert_only_callers_entries(local_stack, login, documents)


def test_demo_data_gives_each_user_a_different_partial_view(local_stack: LocalStack) -> None:
    from tests.server.helpers import demo_documents

    everything = {d["name"] for d in demo_documents(local_stack)}
    views = [frozenset(expected_names(local_stack, u)) for u in USERS]
    assert len(set(views)) == 3 and all(v and v < everything for v in views)


async def test_top_bounds_the_result_and_out_of_range_is_a_validation_error(local_stack: LocalStack) -> None:
    token = api_token(local_stack, "alice")
    two = await call(local_stack.mcp_url, token, {"query": "*", "top": 2})
    assert not two.is_error and len(two.structured_content["documents"]) == 2
    for bad in (0, 51, -1):
        result = await call(local_stack.mcp_url, token, {"query": "*", "top": bad})
        assert result.is_error and "top" in result.content[0].text
        assert result.structured_content is None or not result.structured_content.get("documents")


async def test_the_model_cannot_pass_a_filter(local_stack: LocalStack) -> None:
    token = api_token(local_stack, "bob")
    result = await call(local_stack.mcp_url, token, {"query": "*", "filter": "oid/any(o: o eq 'x')"})
    assert result.is_error and "filter" in result.content[0].text.lower()


async def _many(stack: LocalStack, url: str, count: int) -> list[tuple[str, list[dict]]]:
    tokens = {u: api_token(stack, u) for u in USERS}
    order = [USERS[i % 3] for i in range(count)]
    random.Random(7).shuffle(order)

    async def one(login: str) -> tuple[str, list[dict]]:
        result = await call(url, tokens[login])
        assert not result.is_error, result.content
        return login, result.structured_content["documents"]

    return await asyncio.gather(*(one(u) for u in order))


async def test_fifty_concurrent_calls_from_three_users_cold_then_warm(
    local_stack: LocalStack, own_mcp_server: OwnServer
) -> None:
    server = own_mcp_server.server  # a cold OBO cache of its own
    assert server is not None
    for u in USERS:
        api_token(local_stack, u)  # sign-ins happen before the burst
    before = server.metrics.value("obo_exchanges_total", outcome="started")
    seen_before = Counter(local_stack.search.audiences_seen)

    cold = await _many(local_stack, own_mcp_server.mcp_url, 50)
    after_cold = server.metrics.value("obo_exchanges_total", outcome="started")
    warm = await _many(local_stack, own_mcp_server.mcp_url, 50)
    after_warm = server.metrics.value("obo_exchanges_total", outcome="started")

    for login, documents in cold + warm:
        assert {d["name"] for d in documents} == expected_names(local_stack, login)
        assert_only_callers_entries(local_stack, login, documents)
    assert after_cold - before == 3  # one exchange per user, however many calls raced for it
    assert after_warm == after_cold  # warm cache: no exchange at all
    # The search service saw 100 user tokens, every one an OBO token for Azure AI Search, none passed through.
    assert Counter(local_stack.search.audiences_seen) - seen_before == {SEARCH_AUDIENCE: 100}


async def test_no_user_token_ever_reaches_the_search_service(local_stack: LocalStack) -> None:
    await call(local_stack.mcp_url, api_token(local_stack, "carol"))
    api_client_id = local_stack.tenant.api_app.client_id
    seen = local_stack.search.audiences_seen
    assert seen.get(SEARCH_AUDIENCE, 0) > 0
    assert set(seen) == {SEARCH_AUDIENCE} and api_client_id not in seen
