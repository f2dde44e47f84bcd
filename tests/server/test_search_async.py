"""The async search path (azure.search.documents.aio, what tool calls use) returns exactly what the synchronous
one did: same users, same queries, same documents in the same order, trimmed the same way."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from mcp_server.server.documents import DocumentSearch, SearchFailed
from mcp_server.server.obo import OboExchanger, OboToken
from mcp_server.stack import LocalStack
from tests.fixtures.stack import api_token

USERS = ("alice", "bob", "carol")
QUERIES = ("*", "report", "plan OR budget", "zzz-no-such-word")


def _obo(stack: LocalStack, login: str) -> tuple[OboToken, str, list[str]]:
    exchanger = OboExchanger(stack.server_config())
    try:
        token = exchanger.exchange(api_token(stack, login))
    finally:
        exchanger.close()
    return token, str(token.claims["oid"]), [str(g) for g in token.claims.get("groups") or []]


@pytest.mark.parametrize("login", USERS)
async def test_async_search_returns_exactly_the_sync_result(local_stack: LocalStack, login: str) -> None:
    obo, oid, groups = _obo(local_stack, login)
    search = DocumentSearch(local_stack.server_config())
    try:
        for query in QUERIES:
            for top in (50, 2):
                expected = search.search_as(query, top, obo, oid, groups)
                got = await search.search_as_async(query, top, obo, oid, groups)
                assert got == expected, (login, query, top)
        assert await search.search_as_async("*", 50, obo, oid, groups)  # the demo data gives everyone some
    finally:
        await search.aclose()
        search.close()


async def test_async_search_refuses_without_a_user_token(local_stack: LocalStack) -> None:
    search = DocumentSearch(local_stack.server_config())
    empty = OboToken(access_token=SecretStr(""), expires_at=0.0, claims={})
    try:
        with pytest.raises(
            SearchFailed, match="no OBO token: refusing to search without the user's identity"
        ):
            await search.search_as_async("*", 5, empty, "x", [])
    finally:
        await search.aclose()
        search.close()


async def test_async_client_is_made_once_and_reused_until_closed(local_stack: LocalStack) -> None:
    obo, oid, groups = _obo(local_stack, "alice")
    search = DocumentSearch(local_stack.server_config())
    try:
        await search.search_as_async("*", 5, obo, oid, groups)
        first = search._aio()
        await search.search_as_async("*", 5, obo, oid, groups)
        assert search._aio() is first  # one client (one connection pool) per server
        await search.aclose()
        assert search._async_client is None
    finally:
        await search.aclose()
        search.close()
