"""The HTTP face of the local search service: Azure AI Search's REST subset, in both route styles.

Every request is handled by one synchronous function run on a worker thread (SQLite and JWKS fetches block), so
the service's event loop keeps accepting requests.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote

import anyio
from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .auth import TokenValidator, require_user, strip_bearer, unverified_audience
from .errors import SearchError, bad_request
from .request import params_from_body, params_from_query
from .store import QueryIdentity, SearchStore

log = logging.getLogger(__name__)

API_VERSIONS = frozenset(
    {"2025-05-01-preview", "2025-11-01-preview", "2026-04-01", "2026-05-01-preview", "2026-08-01-preview"}
)
MAX_BODY = 16 * 1024 * 1024
MAX_BATCH = 1000
DOCS_JSON = "application/json; odata.metadata=none"
META_JSON = "application/json; odata.metadata=minimal"
QUERY_AUTH_HEADER = "x-ms-query-source-authorization"

Directory = Callable[[str, str], "list[str] | tuple[str, ...] | None"]

_INDEX = r"/indexes(?:\('(?P<name>[^']*)'\)|/(?P<name2>[^/()']+))"
_ROUTES: list[tuple[str, re.Pattern[str]]] = [
    ("indexes", re.compile(r"^/indexes/?$")),
    ("index", re.compile(rf"^{_INDEX}/?$")),
    ("stats", re.compile(rf"^{_INDEX}/(?:search\.stats|stats)$")),
    ("count", re.compile(rf"^{_INDEX}/docs/\$count$")),
    ("search_post", re.compile(rf"^{_INDEX}/docs/(?:search\.post\.search|search)$")),
    ("index_docs", re.compile(rf"^{_INDEX}/docs/(?:search\.index|index)$")),
    ("search_get", re.compile(rf"^{_INDEX}/docs/?$")),
    ("document", re.compile(rf"^{_INDEX}/docs(?:\('(?P<key>(?:[^']|'')*)'\)|/(?P<key2>[^/()]+))$")),
]


# Strictly decoded UTF-8 cannot hold a surrogate; only a \uD800-\uDFFF escape can.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _has_lone_surrogate(value: Any) -> bool:
    """Whether a decoded JSON value holds a string SQLite and UTF-8 cannot store (an unpaired surrogate)."""
    pending = [value]  # iterative: a body may nest as deep as the JSON decoder allows
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            try:
                item.encode()
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


@dataclass
class Reply:
    status: int
    payload: Any = None
    content_type: str = DOCS_JSON
    headers: dict[str, str] = field(default_factory=dict)

    def response(self) -> Response:
        if self.payload is None:
            return Response(status_code=self.status, headers=self.headers)
        if isinstance(self.payload, str):
            return Response(self.payload, self.status, self.headers, media_type="text/plain")
        text = json.dumps(self.payload, ensure_ascii=False)
        try:
            body = text.encode()
        except UnicodeEncodeError:  # a lone surrogate echoed from a request: JSON's \u escapes carry it
            body = json.dumps(self.payload).encode()
        return Response(body, self.status, {**self.headers, "content-type": self.content_type})


class AudienceCounter:
    """How many user tokens arrived per (unverified) ``aud``, in bounded memory.

    At most ``max_audiences`` distinct values are kept; any further one, and any value longer than
    ``MAX_AUDIENCE_CHARS``, counts under ``OTHER``. ``None``: the header held no JWT or no ``aud``.
    """

    OTHER = "(other)"
    MAX_AUDIENCE_CHARS = 256

    def __init__(self, max_audiences: int = 32) -> None:
        self.max_audiences = max_audiences
        self._counts: dict[str | None, int] = {}
        self._lock = threading.Lock()

    def add(self, aud: str | list[str] | None) -> None:
        key: str | None = " ".join(str(a) for a in aud) if isinstance(aud, list) else aud
        if key is not None and len(key) > self.MAX_AUDIENCE_CHARS:
            key = self.OTHER
        with self._lock:
            if key not in self._counts and len(self._counts) >= self.max_audiences:
                key = self.OTHER
            self._counts[key] = self._counts.get(key, 0) + 1

    def snapshot(self) -> dict[str | None, int]:
        with self._lock:
            return dict(self._counts)


def _error(exc: SearchError) -> Reply:
    return Reply(exc.status, exc.body(), META_JSON)


class SearchHandler:
    """The request logic, independent of the ASGI plumbing."""

    def __init__(
        self,
        store: SearchStore,
        api_key: SecretStr,
        token_validator: TokenValidator,
        directory: Directory,
        endpoint: Callable[[], str],
    ) -> None:
        self.store = store
        self.api_key = api_key
        self.validator = token_validator
        self.directory = directory
        self.endpoint = endpoint
        self.audiences_seen = AudienceCounter()

    # ---- entry point -------------------------------------------------------------------------------------------

    def handle(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> Reply:
        if QUERY_AUTH_HEADER in headers:
            # Counted for every request that carries a user token, before anything can reject it.
            self.audiences_seen.add(unverified_audience(strip_bearer(headers[QUERY_AUTH_HEADER])))
        try:
            self._authenticate(headers)
            version = query.get("api-version")
            if not version:
                raise bad_request(
                    "The api-version query parameter (?api-version=) is required for all requests."
                )
            if version not in API_VERSIONS:
                raise bad_request(
                    f"Invalid or unsupported api-version '{version}'. Supported versions: "
                    + ", ".join(sorted(API_VERSIONS))
                    + "."
                )
            return self._dispatch(method, path, query, headers, body, version)
        except SearchError as exc:
            return _error(exc)
        except Exception:
            log.exception("local search: unexpected error on %s %s", method, path)
            return _error(SearchError(500, "An internal error occurred in the local search service."))

    def _authenticate(self, headers: dict[str, str]) -> None:
        key = headers.get("api-key")
        if key is None:
            if headers.get("authorization", "").lower().startswith("bearer "):
                raise SearchError(
                    401,
                    "Bearer (role-based) authentication is not enabled on this search service; send an api-key.",
                )
            raise SearchError(
                401, "Authentication required: send the service's admin key in the api-key header."
            )
        if not hmac.compare_digest(key.encode(), self.api_key.get_secret_value().encode()):
            raise SearchError(403, "Authorization failed.")

    def _dispatch(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes,
        version: str,
    ) -> Reply:
        for route, pattern in _ROUTES:
            m = pattern.match(path)
            if m is None:
                continue
            name = m.groupdict().get("name") or m.groupdict().get("name2") or ""
            handler = getattr(self, f"_{route}")
            return handler(method, name, m, query, headers, body, version)
        raise SearchError(404, f"The resource '{path}' was not found on this search service.")

    @staticmethod
    def _json(body: bytes) -> Any:
        if not body:
            raise bad_request("The request is invalid. Details: a JSON body is required.")
        try:
            # Strict UTF-8 first: json.loads(bytes) would let UTF-8-encoded surrogates through.
            value = json.loads(body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise bad_request("The request is invalid. Details: the body is not valid JSON.") from None
        except RecursionError:
            raise bad_request("The request is invalid. Details: the JSON body nests too deeply.") from None
        if _SURROGATE_ESCAPE.search(body) and _has_lone_surrogate(value):
            raise bad_request(
                "The request is invalid. Details: the body holds an unpaired UTF-16 surrogate escape "
                "(\\uD800-\\uDFFF); send valid Unicode text."
            )
        return value

    @staticmethod
    def _method(method: str, *allowed: str) -> None:
        if method not in allowed:
            raise SearchError(405, f"The HTTP method '{method}' is not supported for this resource.")

    # ---- identity ----------------------------------------------------------------------------------------------

    def _identity(self, headers: dict[str, str]) -> QueryIdentity | None:
        if headers.get("x-ms-enable-elevated-read", "").lower() == "true":
            raise SearchError(
                403,
                "Elevated read requires the Search Index Data Contributor role (Entra authentication); "
                "it is not available with an api-key.",
            )
        raw = headers.get(QUERY_AUTH_HEADER)
        if raw is None:
            return None
        token = strip_bearer(raw)
        if not token:
            raise SearchError(401, "The x-ms-query-source-authorization header is empty.")
        claims = self.validator.validate(token)
        tenant, oid = claims.get("tid"), claims.get("oid")
        if not isinstance(tenant, str) or not isinstance(oid, str) or not tenant or not oid:
            raise SearchError(401, "The JWT token has no 'oid' or 'tid' claim.")
        require_user(claims)  # whatever the validator: trimming is for a user, never for an application
        try:
            groups = self.directory(tenant, oid)
        except Exception:
            log.exception("local search: directory lookup failed")
            groups = None
        if groups is None:
            # As Azure does when Graph cannot be reached: fail the query, never return a less trimmed result.
            raise SearchError(
                503, "The group memberships of the query's user could not be resolved. Try again later."
            )
        return QueryIdentity(tenant, oid, tuple(str(g) for g in groups))

    # ---- routes ------------------------------------------------------------------------------------------------

    def _indexes(
        self,
        method: str,
        name: str,
        m: Any,
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes,
        version: str,
    ) -> Reply:
        self._method(method, "GET", "POST")
        if method == "POST":
            return Reply(201, self.store.create_index(self._json(body)), META_JSON)
        indexes = self.store.list_indexes()
        select = query.get("$select")
        if select and select.strip() == "name":
            return Reply(200, {"value": [{"name": i["name"]} for i in indexes]}, META_JSON)
        return Reply(200, {"value": indexes}, META_JSON)

    def _index(
        self,
        method: str,
        name: str,
        m: Any,
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes,
        version: str,
    ) -> Reply:
        self._method(method, "GET", "PUT", "DELETE")
        if method == "GET":
            return Reply(200, self.store.get_index(name), META_JSON)
        if method == "DELETE":
            self.store.delete_index(name)
            return Reply(204)
        representation, created = self.store.create_or_update_index(name, self._json(body))
        if headers.get("prefer", "").lower() == "return=minimal":
            return Reply(201 if created else 204)
        return Reply(201 if created else 200, representation, META_JSON)

    def _stats(
        self,
        method: str,
        name: str,
        m: Any,
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes,
        version: str,
    ) -> Reply:
        self._method(method, "GET")
        return Reply(200, self.store.stats(name), META_JSON)

    def _count(
        self,
        method: str,
        name: str,
        m: Any,
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes,
        version: str,
    ) -> Reply:
        self._method(method, "GET")
        return Reply(200, str(self.store.count(name)))

    def _search_post(
        self,
        method: str,
        name: str,
        m: Any,
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes,
        version: str,
    ) -> Reply:
        self._method(method, "POST")
        params = params_from_body(self._json(body))
        return self._search(name, params, headers, version)

    def _search_get(
        self,
        method: str,
        name: str,
        m: Any,
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes,
        version: str,
    ) -> Reply:
        self._method(method, "GET")
        return self._search(name, params_from_query(query), headers, version)

    def _search(self, name: str, params: Any, headers: dict[str, str], version: str) -> Reply:
        self.store.get_index(name)  # 404 before any token work
        identity = self._identity(headers)
        page = self.store.search(name, params, identity)
        out: dict[str, Any] = {}
        if page.count is not None:
            out["@odata.count"] = page.count
        out["value"] = page.rows
        if page.next_params is not None:
            out["@odata.nextLink"] = (
                f"{self.endpoint()}/indexes('{quote(name)}')/docs/search.post.search?api-version={version}"
            )
            out["@search.nextPageParameters"] = page.next_params.to_body()
        return Reply(200, out)

    def _index_docs(
        self,
        method: str,
        name: str,
        m: Any,
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes,
        version: str,
    ) -> Reply:
        self._method(method, "POST")
        self.store.get_index(name)
        payload = self._json(body)
        actions = payload.get("value") if isinstance(payload, dict) else None
        if not isinstance(actions, list):
            raise bad_request('The request is invalid. Details: the body must be {"value": [documents]}.')
        if not actions:
            raise bad_request("The request is invalid. Details: the batch contains no documents.")
        if len(actions) > MAX_BATCH:
            raise SearchError(
                413,
                f"The batch contains {len(actions)} documents; at most {MAX_BATCH} are allowed per request.",
            )
        results = self.store.index_documents(name, actions)
        status = 200 if all(r["status"] for r in results) else 207
        return Reply(status, {"value": results})

    def _document(
        self,
        method: str,
        name: str,
        m: Any,
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes,
        version: str,
    ) -> Reply:
        self._method(method, "GET")
        key = m.group("key")
        key = key.replace("''", "'") if key is not None else m.group("key2")
        self.store.get_index(name)
        identity = self._identity(headers)
        return Reply(200, self.store.get_document(name, key, query.get("$select"), identity))


def build_app(handler: SearchHandler) -> Any:
    from starlette.applications import Starlette

    async def endpoint(request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_BODY:
            return _error(SearchError(413, "The request body is larger than 16 MB.")).response()
        query = dict(parse_qsl(request.url.query, keep_blank_values=True))
        headers = {k.lower(): v for k, v in request.headers.items()}
        reply = await anyio.to_thread.run_sync(
            handler.handle, request.method, request.url.path, query, headers, body
        )
        return reply.response()

    methods = ["GET", "POST", "PUT", "DELETE", "PATCH"]
    return Starlette(routes=[Route("/{path:path}", endpoint, methods=methods)])
