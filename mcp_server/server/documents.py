"""Permission-trimmed search with the user's OBO token (azure-search-documents 12.1.0b2), and the trimming of access
fields down to the entries that admit the caller.

Tool calls use the SDK's async client (``azure.search.documents.aio``): no worker thread per call, and one
connection pool per server, made on the serving loop and closed on shutdown. The synchronous client stays for
readiness probes (on a thread of their own) and for callers without a loop."""

from __future__ import annotations

import os
import threading
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import anyio
from azure.core.exceptions import AzureError, HttpResponseError
from azure.search.documents import SearchClient
from azure.search.documents.aio import SearchClient as AsyncSearchClient
from azure.search.documents.indexes import SearchIndexClient

from mcp_server.search_credential import AsyncSearchAuthentication, refused_redirect
from mcp_server.server.config import ACCESS_FIELDS, ServerConfig
from mcp_server.server.obo import OboToken
from mcp_server.server.search_auth import client_options, server_async_search_auth, server_search_auth
from mcp_server.server.search_rest import search_documents, search_request

PUBLIC = "all"


class SearchFailed(Exception):
    """The search service could not answer; the tool returns this cause and no documents."""


class DocumentSearch:
    """One search client per server (azure-core clients are thread-safe), and one async client per serving loop.

    How the server itself authenticates to the search service is ``OBO_CONSOLE_SEARCH_AUTH`` (search_auth.py); the
    user's identity always travels as the OBO token, whatever the credential.
    """

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.auth = auth = server_search_auth(config)  # api-key, or keyless (an Entra app token)
        options: dict[str, Any] = {
            "retry_total": config.search_retry_total,
            "retry_backoff_factor": 0.1,
            "connection_timeout": config.search_timeout,
            "read_timeout": config.search_timeout,
            **client_options(config),
        }
        self.client = SearchClient(
            config.search_endpoint, config.search_index, **auth.client_kwargs(), **options
        )
        self.index_client = SearchIndexClient(config.search_endpoint, **auth.client_kwargs(), **options)
        # Readiness probes get a client of their own: no retries, and never queued behind tool calls' connections.
        self.probe_client = SearchClient(
            config.search_endpoint,
            config.search_index,
            **auth.client_kwargs(),
            retry_total=0,
            **client_options(config),
        )
        self._options = options
        self._async_auth: AsyncSearchAuthentication | None = None
        self._async_client: AsyncSearchClient | None = None
        self._fields: tuple[str, ...] | None = None
        self._lock = threading.Lock()

    def fields(self) -> tuple[str, ...]:
        """The allowlisted fields the index actually has (read once from the index definition)."""
        with self._lock:
            if self._fields is None:
                try:
                    index = self.index_client.get_index(self.config.search_index)
                except AzureError as exc:
                    raise SearchFailed(_describe(exc)) from exc
                missing = missing_permission_filtering(index)
                if missing:
                    # Fail closed: without them the service would return every document to everyone.
                    raise SearchFailed(
                        f"the index {self.config.search_index} has no document-level access ({missing}): "
                        "refusing to search, the results would not be trimmed to the user"
                    )
                present = {f.name for f in index.fields}
                self._fields = tuple(f for f in self.config.search_fields if f in present)
            return self._fields

    def forget_index(self) -> None:
        """Read the index definition again on the next search (the index was rebuilt)."""
        with self._lock:
            self._fields = None

    def search(self, query: str, top: int, obo: OboToken) -> list[dict[str, Any]]:
        """Search as the user the OBO token names. There is no way to call it without one."""
        token = _user_token(obo)
        try:
            results = self.client.search(**_request(query, top, token, self.fields()))
            return [dict(r) for r in results]
        except AzureError as exc:
            raise SearchFailed(_describe(exc)) from exc

    def search_as(
        self,
        query: str,
        top: int,
        obo: OboToken,
        caller_oid: str,
        caller_groups: Iterable[str] | None,
        groups_unknown: str | None = None,
    ) -> list[dict[str, Any]]:
        """Search as the OBO token's user and trim each document for that caller (blocking: run off the loop).
        ``caller_groups`` None: the memberships are unknown (``groups_unknown`` says why)."""
        raw = self.search(query, top, obo)
        return _trimmed(raw, self.fields(), caller_oid, caller_groups, groups_unknown)

    def _aio(self) -> AsyncSearchClient:
        """The async client, made on first use on the running (serving) loop: its connections belong to it."""
        if self._async_client is None:
            self._async_auth = auth = server_async_search_auth(self.config)
            self._async_client = AsyncSearchClient(
                self.config.search_endpoint,
                self.config.search_index,
                **auth.client_kwargs(),
                **self._options,
                use_env_settings=environment_settings_apply(),
            )
        return self._async_client

    async def search_async(self, query: str, top: int, obo: OboToken) -> list[dict[str, Any]]:
        """``search`` on the async client: the same request, no worker thread, pooled connections, the answer read
        as JSON (search_rest.py)."""
        token = _user_token(obo)
        fields = self._fields if self._fields is not None else await anyio.to_thread.run_sync(self.fields)
        request = search_request(
            self.config.search_index, query, top, token, fields, self.config.search_api_version
        )
        try:
            return await search_documents(self._aio(), request)
        except AzureError as exc:
            raise SearchFailed(_describe(exc)) from exc

    async def search_as_async(
        self,
        query: str,
        top: int,
        obo: OboToken,
        caller_oid: str,
        caller_groups: Iterable[str] | None,
        groups_unknown: str | None = None,
    ) -> list[dict[str, Any]]:
        """``search_as`` on the async client (what tool calls use)."""
        raw = await self.search_async(query, top, obo)
        return _trimmed(
            raw, self.fields(), caller_oid, caller_groups, groups_unknown
        )  # fields: cached by now

    async def aclose(self) -> None:
        """Close the async client (on the loop that made it); the next call makes a new one."""
        client, self._async_client = self._async_client, None
        auth, self._async_auth = self._async_auth, None
        if client is not None:
            await client.close()
        if auth is not None:
            await auth.close()

    def probe(self, timeout: float) -> int:
        """Readiness within ``timeout`` seconds: the index exists and answers (document count)."""
        try:
            count = self.probe_client.get_document_count(connection_timeout=timeout, read_timeout=timeout)
            return int(count)
        except AzureError as exc:
            raise SearchFailed(_describe(exc)) from exc

    def close(self) -> None:
        self.client.close()
        self.index_client.close()
        self.probe_client.close()
        self.auth.close()


def _user_token(obo: OboToken) -> str:
    token = obo.access_token.get_secret_value()
    if not token:
        raise SearchFailed("no OBO token: refusing to search without the user's identity")
    return token


def _request(query: str, top: int, token: str, fields: Iterable[str]) -> dict[str, Any]:
    """The search both clients send: as the user the token names, the index's fields, at most ``top``."""
    return {"search_text": query, "query_source_authorization": token, "select": list(fields), "top": top}


def _trimmed(
    raw: list[dict[str, Any]],
    fields: Iterable[str],
    caller_oid: str,
    caller_groups: Iterable[str] | None,
    groups_unknown: str | None,
) -> list[dict[str, Any]]:
    """Each document trimmed for the caller (``caller_groups`` None: memberships unknown, ``groups_unknown`` why)."""
    groups = None if caller_groups is None else list(caller_groups)
    return [trim_document(doc, fields, caller_oid, groups, groups_unknown) for doc in raw]


def environment_settings_apply() -> bool:
    """Whether the environment configures anything aiohttp reads for a request: a proxy variable or a netrc file.
    When neither is there, the async client is made without them (``use_env_settings=False``, the same requests):
    otherwise aiohttp looks both up on a worker thread on every request (two thread hops per search)."""
    if urllib.request.getproxies_environment():
        return True
    netrc = os.environ.get("NETRC")
    try:
        return Path(netrc).exists() if netrc else (Path.home() / ".netrc").exists()
    except RuntimeError:  # no home directory: aiohttp finds no netrc either
        return False


def missing_permission_filtering(index: Any) -> str:
    """What an index definition lacks for permission trimming ("" when nothing): a ``userIds`` and a ``groupIds``
    permission filter field, and ``permissionFilterOption`` enabled."""
    kinds = {str(getattr(f.permission_filter, "value", f.permission_filter)).lower() for f in index.fields}
    option = str(getattr(index.permission_filter_option, "value", index.permission_filter_option)).lower()
    missing = [name for name in ("userIds", "groupIds") if name.lower() not in kinds]
    problems = [f"no {' or '.join(missing)} permission filter field"] if missing else []
    if option != "enabled":
        problems.append("permissionFilterOption is not enabled")
    return "; ".join(problems)


def _describe(exc: AzureError) -> str:
    if isinstance(exc, HttpResponseError):
        redirect = refused_redirect(exc.status_code)
        if redirect is not None:
            return f"the search service answered {redirect}"
        message = (exc.message or "").split("\n")[0]
        return f"the search service answered HTTP {exc.status_code}: {message}"
    return f"the search service is unreachable ({type(exc).__name__})"


def _entries(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def trim_document(
    raw: dict[str, Any],
    fields: Iterable[str],
    caller_oid: str,
    caller_groups: Iterable[str] | None,
    groups_unknown: str | None = None,
) -> dict[str, Any]:
    """The document as the caller may see it: allowlisted fields, access fields reduced to the entries that admit
    the caller (their oid, their groups, ``all``), and why it is visible. With the caller's groups unknown
    (``caller_groups`` None) no group entry is shown but ``all``, and a document nothing else explains is visible
    for a reason ``unknown`` (the search service admitted it; ``detail`` says why the server cannot tell)."""
    groups = set(caller_groups or ())
    doc: dict[str, Any] = {}
    because: list[dict[str, str | None]] = []
    for name in fields:
        if name not in ACCESS_FIELDS:
            doc[name] = raw.get(name)
    kept_oids = [v for v in _entries(raw.get("oid")) if v in (caller_oid, PUBLIC)]
    kept_groups = [v for v in _entries(raw.get("group")) if v in groups or v == PUBLIC]
    doc["oid"] = kept_oids
    doc["group"] = kept_groups
    for value in kept_oids:
        because.append({"field": "oid", "value": value, "reason": "public" if value == PUBLIC else "user"})
    for value in kept_groups:
        because.append({"field": "group", "value": value, "reason": "public" if value == PUBLIC else "group"})
    if not because and caller_groups is None:
        detail = groups_unknown or "the caller's groups are unknown"
        because.append({"field": "group", "value": None, "reason": "unknown", "detail": detail})
    doc["score"] = raw.get("@search.score")
    doc["visible_because"] = because
    return doc
