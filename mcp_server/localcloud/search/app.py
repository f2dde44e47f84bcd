"""The request logic of the local search service: Azure AI Search's REST subset, in both route styles.

Starlette routes match each path, in both styles (``/indexes('name')/docs('key')`` and ``/indexes/name/docs/key``),
to a handler that takes one ``SearchRequest``. Every request is checked (api-key, api-version, method) and handled
by synchronous code, which the HTTP face (asgi.py) runs on a worker thread (SQLite and JWKS fetches block), so the
service's event loop keeps accepting requests. Requests no route matches get the service's own 404, after the same
checks.
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
from urllib.parse import quote

from pydantic import SecretStr
from starlette.responses import Response
from starlette.routing import Route

from mcp_server import search_versions

from .auth import TokenValidator, require_user, strip_bearer, unverified_audience
from .errors import SearchError, bad_request
from .paths import INDEXES, KEY_STYLES, on_index
from .request import SearchParams, params_from_body, params_from_query
from .roles import Caller, Operation, RoleLookup, bearer_caller, foreign_tenant
from .store import QueryIdentity, SearchStore
from .versions import check_definition, definition_for, keep_permissions

log = logging.getLogger(__name__)

API_VERSIONS = frozenset(search_versions.SDK_API_VERSIONS)
MAX_BODY = 16 * 1024 * 1024
MAX_BATCH = 1000
DOCS_JSON = "application/json; odata.metadata=none"
META_JSON = "application/json; odata.metadata=minimal"
QUERY_AUTH_HEADER = "x-ms-query-source-authorization"

Directory = Callable[[str, str], "list[str] | tuple[str, ...] | None"]

HTTP_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH"]  # Starlette adds HEAD; others get its plain 405


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


def error_reply(exc: SearchError) -> Reply:
    return Reply(exc.status, exc.body(), META_JSON)


@dataclass(frozen=True)
class HttpRequest:
    """A request as read from the connection, before any check."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    path_params: dict[str, str]


@dataclass(frozen=True)
class SearchRequest:
    """A request that passed the api-key and api-version checks: what every route handler takes."""

    method: str
    path: str
    index: str  # "" on /indexes
    key: str | None  # the document key, on the document route
    api_version: str  # as sent (Azure compares case-insensitively)
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    user_token: str | None  # x-ms-query-source-authorization's token, not yet validated (None: no header)
    elevated_read: bool  # x-ms-enable-elevated-read: true
    caller: Caller

    @property
    def permission_filtering(self) -> bool:
        """Whether the request's api-version has document-level access control (a preview feature)."""
        return search_versions.has_permission_filtering(self.api_version)


Handler = Callable[[SearchRequest], Reply]


@dataclass(frozen=True)
class Endpoint:
    """A route's handler and the operation of each method it accepts (None: any, for the not-found handler)."""

    handler: Handler
    operations: dict[str, Operation] | None

    def operation(self, method: str) -> Operation:
        if self.operations is None:
            return Operation.ANY
        operation = self.operations.get(method)
        if operation is None:
            raise SearchError(405, f"The HTTP method '{method}' is not supported for this resource.")
        return operation


class SearchHandler:
    """The request logic; ``routes()`` puts it behind Starlette."""

    def __init__(
        self,
        store: SearchStore,
        api_key: SecretStr,
        token_validator: TokenValidator,
        directory: Directory,
        endpoint: Callable[[], str],
        roles_of: RoleLookup | None = None,
    ) -> None:
        self.store = store
        self.api_key = api_key
        self.validator = token_validator
        self.directory = directory
        self.roles_of = roles_of  # None: role-based (Bearer) authentication is not enabled
        self.endpoint = endpoint
        self.audiences_seen = AudienceCounter()

    # ---- routing -----------------------------------------------------------------------------------------------

    def routes(self) -> list[tuple[Route, Endpoint]]:
        """Both path styles onto the handlers below, tried in this order; anything else is the service's 404. The
        Starlette routes only match (path, convertors, methods): the HTTP face calls ``handle`` with the endpoint."""
        define, manage, query = Operation.READ_DEFINITIONS, Operation.MANAGE, Operation.QUERY
        table: list[tuple[list[str], Handler, dict[str, Operation] | None]] = [
            (INDEXES, self.indexes, {"GET": define, "POST": manage}),
            (on_index("", "/"), self.index, {"GET": define, "PUT": manage, "DELETE": manage}),
            (on_index("/search.stats", "/stats"), self.stats, {"GET": manage}),
            (on_index("/docs/$count"), self.count, {"GET": query}),
            (on_index("/docs/search.post.search", "/docs/search"), self.search_post, {"POST": query}),
            (
                on_index("/docs/search.index", "/docs/index"),
                self.index_docs,
                {"POST": Operation.WRITE_DOCUMENTS},
            ),
            (on_index("/docs", "/docs/"), self.search_get, {"GET": query}),
            (on_index(*(f"/docs{key}" for key in KEY_STYLES)), self.document, {"GET": query}),
            (["/{path:path}"], self.not_found, None),
        ]
        return [
            (Route(path, _matched_only, methods=HTTP_METHODS), Endpoint(handler, operations))
            for paths, handler, operations in table
            for path in paths
        ]

    def handle(self, incoming: HttpRequest, endpoint: Endpoint) -> Reply:
        """Check the request, then run the route's handler; every failure becomes the service's error reply."""
        raw_token = incoming.headers.get(QUERY_AUTH_HEADER)
        user_token = strip_bearer(raw_token) if raw_token is not None else None
        if user_token is not None:
            # Counted for every request that carries a user token, before anything can reject it.
            self.audiences_seen.add(unverified_audience(user_token))
        try:
            caller = self._authenticate(incoming.headers)
            version = _api_version(incoming.query)
            caller.authorize(endpoint.operation(incoming.method))
            request = SearchRequest(
                method=incoming.method,
                path=incoming.path,
                index=incoming.path_params.get("index", ""),
                key=incoming.path_params.get("key"),
                api_version=version,
                query=incoming.query,
                headers=incoming.headers,
                body=incoming.body,
                user_token=user_token,
                elevated_read=incoming.headers.get("x-ms-enable-elevated-read", "").lower() == "true",
                caller=caller,
            )
            return endpoint.handler(request)
        except SearchError as exc:
            return error_reply(exc)
        except Exception:
            log.exception("local search: unexpected error on %s %s", incoming.method, incoming.path)
            return error_reply(SearchError(500, "An internal error occurred in the local search service."))

    def _authenticate(self, headers: dict[str, str]) -> Caller:
        """The api-key holder, or the Entra principal of ``Authorization: Bearer`` (api-key wins when both)."""
        key = headers.get("api-key")
        if key is None:
            authorization = headers.get("authorization", "")
            if authorization[:7].lower() == "bearer ":
                if self.roles_of is None:
                    raise SearchError(
                        401,
                        "Bearer (role-based) authentication is not enabled on this search service; send an "
                        "api-key.",
                    )
                return bearer_caller(authorization[7:].strip(), self.validator, self.roles_of)
            raise SearchError(
                401,
                "Authentication required: send the service's admin key in the api-key header, or an Entra "
                "token in Authorization: Bearer.",
            )
        if not hmac.compare_digest(key.encode(), self.api_key.get_secret_value().encode()):
            raise SearchError(403, "Authorization failed.")
        return Caller(api_key=True)

    # ---- identity ----------------------------------------------------------------------------------------------

    def _identity(self, request: SearchRequest) -> QueryIdentity | None:
        if not request.permission_filtering:
            # A version without document-level access control knows neither header: the query runs with no user
            # (public documents only on a permission-filtered index), never with the token's wider view.
            return None
        if request.elevated_read:
            if not request.caller.api_key:
                raise SearchError(
                    400, "Elevated read is not implemented by the local search service; remove the header."
                )
            raise SearchError(
                403,
                "Elevated read requires the Search Index Data Contributor role (Entra authentication); "
                "it is not available with an api-key.",
            )
        token = request.user_token
        if token is None:
            return None
        if not token:
            raise SearchError(401, "The x-ms-query-source-authorization header is empty.")
        claims = self.validator.validate(token)
        tenant, oid = claims.get("tid"), claims.get("oid")
        if not isinstance(tenant, str) or not isinstance(oid, str) or not tenant or not oid:
            raise SearchError(401, "The JWT token has no 'oid' or 'tid' claim.")
        require_user(claims)  # whatever the validator: trimming is for a user, never for an application
        return QueryIdentity(tenant, oid, self._groups(tenant, oid))

    def _groups(self, tenant: str, oid: str) -> tuple[str, ...]:
        """The user's groups, as Azure asks Microsoft Graph; a tenant the service does not serve is a 401."""
        try:
            groups = self.directory(tenant, oid)
        except Exception:
            log.exception("local search: directory lookup failed")
            # As Azure does when Graph cannot be reached: fail the query, never return a less trimmed result.
            raise SearchError(
                503, "The group memberships of the query's user could not be resolved. Try again later."
            ) from None
        if groups is None:
            raise foreign_tenant(tenant, "query source authorization token")
        return tuple(str(g) for g in groups)

    # ---- routes ------------------------------------------------------------------------------------------------

    def indexes(self, request: SearchRequest) -> Reply:
        if request.method == "POST":
            body = check_definition(_json(request.body), request.api_version)
            return Reply(201, definition_for(self.store.create_index(body), request.api_version), META_JSON)
        indexes = [definition_for(i, request.api_version) for i in self.store.list_indexes()]
        select = request.query.get("$select")
        if select and select.strip() == "name":
            return Reply(200, {"value": [{"name": i["name"]} for i in indexes]}, META_JSON)
        return Reply(200, {"value": indexes}, META_JSON)

    def index(self, request: SearchRequest) -> Reply:
        if request.method == "GET":
            return Reply(
                200, definition_for(self.store.get_index(request.index), request.api_version), META_JSON
            )
        if request.method == "DELETE":
            self.store.delete_index(request.index)
            return Reply(204)
        body = keep_permissions(
            check_definition(_json(request.body), request.api_version),
            self._stored_definition(request.index),
            request.api_version,
        )
        representation, created = self.store.create_or_update_index(request.index, body)
        representation = definition_for(representation, request.api_version)
        if request.headers.get("prefer", "").lower() == "return=minimal":
            return Reply(201 if created else 204)
        return Reply(201 if created else 200, representation, META_JSON)

    def _stored_definition(self, name: str) -> dict[str, Any] | None:
        try:
            return self.store.get_index(name)
        except SearchError:
            return None  # a new index

    def stats(self, request: SearchRequest) -> Reply:
        return Reply(200, self.store.stats(request.index), META_JSON)

    def count(self, request: SearchRequest) -> Reply:
        return Reply(200, str(self.store.count(request.index)))

    def search_post(self, request: SearchRequest) -> Reply:
        return self._search(request, params_from_body(_json(request.body)))

    def search_get(self, request: SearchRequest) -> Reply:
        return self._search(request, params_from_query(request.query))

    def _search(self, request: SearchRequest, params: SearchParams) -> Reply:
        name = request.index
        self.store.get_index(name)  # 404 before any token work
        identity = self._identity(request)
        page = self.store.search(name, params, identity)
        out: dict[str, Any] = {}
        if page.count is not None:
            out["@odata.count"] = page.count
        out["value"] = page.rows
        if page.next_params is not None:
            out["@odata.nextLink"] = (
                f"{self.endpoint()}/indexes('{quote(name)}')/docs/search.post.search"
                f"?api-version={request.api_version}"
            )
            out["@search.nextPageParameters"] = page.next_params.to_body()
        return Reply(200, out)

    def index_docs(self, request: SearchRequest) -> Reply:
        self.store.get_index(request.index)
        payload = _json(request.body)
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
        results = self.store.index_documents(request.index, actions)
        status = 200 if all(r["status"] for r in results) else 207
        return Reply(status, {"value": results})

    def document(self, request: SearchRequest) -> Reply:
        assert request.key is not None  # both document routes capture a key
        self.store.get_index(request.index)
        identity = self._identity(request)
        return Reply(
            200, self.store.get_document(request.index, request.key, request.query.get("$select"), identity)
        )

    def not_found(self, request: SearchRequest) -> Reply:
        raise SearchError(404, f"The resource '{request.path}' was not found on this search service.")


def _api_version(query: dict[str, str]) -> str:
    version = query.get("api-version")
    if not version:
        raise bad_request("The api-version query parameter (?api-version=) is required for all requests.")
    if not search_versions.is_known(version):
        raise bad_request(
            f"Invalid or unsupported api-version '{version}'. Supported versions: "
            + ", ".join(sorted(API_VERSIONS))
            + "."
        )
    return version


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


async def _matched_only(_request: object) -> Response:
    """The endpoint Starlette's ``Route`` requires; never called (routes here only match)."""
    raise NotImplementedError
