"""The search request tool calls send: the one ``SearchClient.search`` sends, through the SDK client's own pipeline
(``send_request``: its credential, retries, timeouts, user agent, logging), with the answer read as plain JSON.

Why not ``search()`` itself: it turns every result into SDK models and back into a dict, which took 0.7–0.9 ms of
a 4–5 ms call with a dozen documents (benchmarks/bench_server.py). The request is what ``search()`` sends (the same
path, api-version, headers and body: a test captures both); the synchronous ``DocumentSearch.search`` still uses
``search()`` and the tests hold both to the same results.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    map_error,
)
from azure.core.rest import AsyncHttpResponse, HttpRequest
from azure.search.documents.aio import SearchClient as AsyncSearchClient

from mcp_server.search_versions import SDK_DEFAULT_API_VERSION

# The headers ``search()`` sends besides the pipeline's own (request id, user agent, credential).
ACCEPT = "application/json;odata.metadata=none"
QUERY_SOURCE_HEADER = "x-ms-query-source-authorization"
_ERRORS: dict[int, type[HttpResponseError]] = {401: ClientAuthenticationError, 404: ResourceNotFoundError}


def search_request(
    index: str, query: str, top: int, token: str, fields: Iterable[str], api_version: str | None
) -> HttpRequest:
    """``POST /indexes('<index>')/docs/search.post.search``: as the user ``token`` names, the fields, at most
    ``top`` (a relative URL: the client puts its endpoint in front)."""
    return HttpRequest(
        "POST",
        f"/indexes('{quote(index, safe='')}')/docs/search.post.search",
        params={"api-version": api_version or SDK_DEFAULT_API_VERSION},
        headers={"Accept": ACCEPT, QUERY_SOURCE_HEADER: token},
        json={"search": query, "select": ",".join(fields), "top": top},
    )


async def search_documents(client: AsyncSearchClient, request: HttpRequest) -> list[dict[str, Any]]:
    """Send ``request`` through ``client``'s pipeline and read the documents: as a stream, so the pipeline does not
    decode the answer on its own (its content-decode policy would parse the JSON once more, and the text decoding
    would parse the content type's charset) — the body is read whole and parsed once, as UTF-8 JSON bytes."""
    response = await client.send_request(request, stream=True)
    try:
        await response.read()
    finally:
        await response.close()
    return search_results(response)


def search_results(response: AsyncHttpResponse) -> list[dict[str, Any]]:
    """The documents of a search answer (``value``, read already), or the error ``search()`` would have raised."""
    if response.status_code != 200:
        map_error(status_code=response.status_code, response=response, error_map=_ERRORS)
        raise HttpResponseError(response=response)
    try:
        body = json.loads(response.content)
    except ValueError as exc:  # UnicodeDecodeError included: the answer must be UTF-8 JSON
        raise HttpResponseError(message="the search answer is not JSON", response=response) from exc
    value = body.get("value") if isinstance(body, dict) else None
    if not isinstance(value, list) or not all(isinstance(doc, dict) for doc in value):
        raise HttpResponseError(message="the search answer has no list of documents", response=response)
    return value
