"""What the MCP server makes of a search service that answers with hostile or broken responses.

A real loopback listener stands in for a compromised or misconfigured search endpoint; a second one plays the
address a redirect names and records every request that reaches it. The server must never follow a redirect (it
would carry the api-key and the user's OBO token in ``x-ms-query-source-authorization`` to that address) and must
turn every answer it cannot read into ``SearchFailed`` naming the status, with no documents."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mcp_server import provision
from mcp_server.localcloud.serve import ThreadedServer
from mcp_server.search_versions import SDK_DEFAULT_API_VERSION
from mcp_server.server.config import ServerConfig
from mcp_server.server.documents import DocumentSearch, SearchFailed
from mcp_server.server.obo import OboToken
from mcp_server.stack import LocalStack

USER_TOKEN = "the-users-obo-token-never-to-leave"
OBO = OboToken(access_token=SecretStr(USER_TOKEN), expires_at=0.0, claims={})
REDIRECT_REFUSED = (
    "the search service answered HTTP {status}, a redirect: refused (Azure AI Search never redirects, and following "
    "it would send the credentials to another address). Check OBO_CONSOLE_SEARCH_ENDPOINT."
)


@dataclass
class Recorder:
    """A listener that records every request's path and headers (the address a redirect points to)."""

    seen: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Starlette:
        async def anything(request: Request) -> Response:
            with self.lock:
                self.seen.append((request.url.path, dict(request.headers)))
            return Response('{"value": []}', media_type="application/json")

        return Starlette(routes=[Route("/{path:path}", anything, methods=["GET", "POST", "PUT", "DELETE"])])


@dataclass
class Hostile:
    """A search endpoint that serves the real index definition and answers everything else as a test sets it."""

    index_definition: bytes
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    searches: list[tuple[str, str, str, dict[str, str], bytes]] = field(default_factory=list)

    def app(self) -> Starlette:
        async def anything(request: Request) -> Response:
            if request.method == "GET" and not request.url.path.endswith("/docs/search.post.search"):
                return Response(self.index_definition, media_type="application/json")
            body = await request.body()
            self.searches.append(
                (request.method, request.url.path, request.url.query, dict(request.headers), body)
            )
            return Response(self.body, self.status, self.headers)

        return Starlette(routes=[Route("/{path:path}", anything, methods=["GET", "POST", "PUT", "DELETE"])])


@pytest.fixture(scope="module")
def recorder() -> Iterator[tuple[Recorder, str]]:
    record = Recorder()
    server = ThreadedServer(record.app(), name="redirect-target").start()
    try:
        yield record, f"http://127.0.0.1:{server.port}"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def hostile(local_stack: LocalStack) -> Iterator[tuple[Hostile, ServerConfig]]:
    config = local_stack.server_config()
    definition = requests.get(
        f"{config.search_endpoint}/indexes('{config.search_index}')",
        params={"api-version": SDK_DEFAULT_API_VERSION},
        headers={"api-key": config.search_api_key.get_secret_value()},
        timeout=10,
    )
    definition.raise_for_status()
    answer = Hostile(index_definition=definition.content)
    server = ThreadedServer(answer.app(), name="hostile-search").start()
    try:
        yield answer, dataclasses.replace(config, search_endpoint=f"http://127.0.0.1:{server.port}")
    finally:
        server.stop()


def _answer(hostile: Hostile, status: int, body: Any = b"", headers: dict[str, str] | None = None) -> None:
    hostile.status = status
    hostile.body = body if isinstance(body, bytes) else json.dumps(body).encode()
    hostile.headers = headers if headers is not None else {"content-type": "application/json"}


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_a_redirect_is_refused_and_carries_no_credential_anywhere(
    hostile: tuple[Hostile, ServerConfig], recorder: tuple[Recorder, str], status: int
) -> None:
    answer, config = hostile
    record, target = recorder
    record.seen.clear()
    _answer(answer, status, b"", {"location": f"{target}/indexes('x')/docs/search.post.search?api-version=1"})
    search = DocumentSearch(config)
    try:
        with pytest.raises(SearchFailed) as tool_path:
            await search.search_as_async("*", 5, OBO, "oid", [])
        with pytest.raises(SearchFailed) as sync_path:
            search.search_as("*", 5, OBO, "oid", [])
    finally:
        await search.aclose()
        search.close()
    assert str(tool_path.value) == REDIRECT_REFUSED.format(status=status)
    assert str(sync_path.value) == REDIRECT_REFUSED.format(status=status)
    assert record.seen == []  # neither the api-key nor the user's token went anywhere else


def test_provisioning_refuses_a_redirect_too(
    hostile: tuple[Hostile, ServerConfig], recorder: tuple[Recorder, str]
) -> None:
    """The provisioner carries the admin key: a redirect is an error there as well, and the key stays home."""
    answer, config = hostile
    record, target = recorder
    record.seen.clear()
    _answer(answer, 307, b"", {"location": f"{target}/indexes('x')?api-version=1"})
    with pytest.raises(provision.ProvisionError) as refused:
        provision.provision(config.search_endpoint, config.search_api_key, "x", {})
    said = REDIRECT_REFUSED.format(status=307).removeprefix("the search service answered ")
    assert str(refused.value) == f"The search service at {config.search_endpoint} answered {said}"
    assert record.seen == []


@pytest.mark.parametrize(
    ("status", "body", "content_type", "expected"),
    [
        (200, b"<html>not json</html>", "text/html", "answered HTTP 200: the search answer is not JSON"),
        (200, {"value": 5}, None, "answered HTTP 200: the search answer has no list of documents"),
        (200, [{"id": "1"}], None, "answered HTTP 200: the search answer has no list of documents"),
        (200, {"documents": []}, None, "answered HTTP 200: the search answer has no list of documents"),
        (200, {"value": ["id-1", 7]}, None, "answered HTTP 200: the search answer has no list of documents"),
        (
            500,
            {"error": {"code": "InternalServerError", "message": "boom"}},
            None,
            "answered HTTP 500: (InternalServerError) boom",
        ),
        (
            404,
            {"error": {"code": "", "message": "The index 'x' was not found."}},
            None,
            "answered HTTP 404: () The index 'x' was not found.",
        ),
        (401, b"", None, "answered HTTP 401: Operation returned an invalid status 'Unauthorized'"),
        (503, b"\xff\xfe garbage", "text/plain", "answered HTTP 503: Operation returned an invalid status"),
    ],
)
async def test_an_answer_the_server_cannot_read_fails_the_search_with_its_status(
    hostile: tuple[Hostile, ServerConfig],
    status: int,
    body: Any,
    content_type: str | None,
    expected: str,
) -> None:
    answer, config = hostile
    _answer(answer, status, body, {"content-type": content_type or "application/json"})
    search = DocumentSearch(config)
    try:
        with pytest.raises(SearchFailed) as failed:
            await search.search_as_async("*", 5, OBO, "oid", [])
    finally:
        await search.aclose()
        search.close()
    assert str(failed.value).startswith(f"the search service {expected}")
    assert USER_TOKEN not in str(failed.value)


async def test_the_tool_path_sends_the_request_the_sdks_search_sends(
    hostile: tuple[Hostile, ServerConfig],
) -> None:
    """search_async reads the answer itself (search_rest.py) but asks exactly what ``SearchClient.search`` asks:
    the same method, path, api-version, body, and the user's token in the same header."""
    answer, config = hostile
    _answer(answer, 200, {"value": []})
    answer.searches.clear()
    search = DocumentSearch(config)
    try:
        assert search.search("report", 7, OBO) == []  # the SDK's search()
        assert await search.search_async("report", 7, OBO) == []
    finally:
        await search.aclose()
        search.close()
    sdk, ours = answer.searches
    compared = ("accept", "content-type", "x-ms-query-source-authorization", "api-key")
    assert ours[:3] == sdk[:3]  # method, path, query (the api-version)
    assert {k: ours[3].get(k) for k in compared} == {k: sdk[3].get(k) for k in compared}
    assert ours[3]["x-ms-query-source-authorization"] == USER_TOKEN
    assert (
        json.loads(ours[4])
        == json.loads(sdk[4])
        == {
            "search": "report",
            "select": ",".join(search.fields()),
            "top": 7,
        }
    )
