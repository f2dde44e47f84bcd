"""A Microsoft Graph compatible subset on the identity host (docs/identity.md, Microsoft Graph): the signed-in
user (``GET /v1.0/me``), ``POST /v1.0/me/getMemberObjects`` and ``GET /v1.0/me/transitiveMemberOf`` (paged with
``@odata.nextLink``), answering in Graph's shapes, errors included (401 ``InvalidAuthenticationToken``, 403
``Authorization_RequestDenied``). It accepts only tokens this platform issued for Graph."""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import jwt
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mcp_server.localcloud.signing_keys import SigningKeyStore
from mcp_server.localcloud.tenant import Group, Tenant, User

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
GRAPH_AUDIENCES = frozenset({"https://graph.microsoft.com", "https://graph.microsoft.com/", GRAPH_APP_ID})
DEFAULT_PAGE, MAX_PAGE = 100, 999  # Graph's default and maximum page size for directory objects
# Delegated permissions that let the signed-in user read each thing (least privileged first, as Graph lists them).
READ_ME = frozenset(
    {"User.Read", "User.ReadWrite", "User.ReadBasic.All", "User.Read.All", "Directory.Read.All"}
)
READ_MEMBER_OBJECTS = frozenset({"User.Read", "User.Read.All", "Directory.Read.All", "User.ReadWrite.All"})
READ_MEMBERSHIPS = frozenset(
    {"User.Read", "User.Read.All", "GroupMember.Read.All", "Group.Read.All", "Directory.Read.All"}
)
# Without one of these a group in a membership list shows only its type and id (Graph's "limited information").
READ_GROUPS = frozenset({"GroupMember.Read.All", "Group.Read.All", "Directory.Read.All"})
GROUP_PROPERTIES = ("id", "displayName", "description", "securityEnabled", "mailEnabled")
ODATA_JSON = (
    "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
)


class GraphError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class GraphApi:
    """The handlers; ``fail_with`` makes every call answer an error (tests: Graph down)."""

    def __init__(self, tenant: Tenant, keys: SigningKeyStore, base_url: Callable[[], str]) -> None:
        self.tenant = tenant
        self.keys = keys
        self.base_url = base_url
        self._outage: int | None = None
        self._lock = threading.Lock()
        self.calls = 0  # requests answered (tests: what the MCP server asked)

    def fail_with(self, status: int | None) -> None:
        """Answer every request with ``status`` (503, 500, ...) until called with None."""
        with self._lock:
            self._outage = status

    def routes(self) -> list[Route]:
        return [
            Route("/v1.0/me", self.me, methods=["GET"]),
            Route("/v1.0/me/getMemberObjects", self.get_member_objects, methods=["POST"]),
            Route("/v1.0/me/transitiveMemberOf", self.transitive_member_of, methods=["GET"]),
            Route(
                "/v1.0/me/transitiveMemberOf/microsoft.graph.group", self.transitive_groups, methods=["GET"]
            ),
        ]

    # -- handlers ----------------------------------------------------------------------------------------
    async def me(self, request: Request) -> Response:
        try:
            user, _ = self._caller(request, READ_ME)
        except GraphError as exc:
            return _error(request, exc)
        body = {
            "@odata.context": f"{self.base_url()}/v1.0/$metadata#users/$entity",
            "id": user.oid,
            "displayName": user.name,
            "userPrincipalName": user.upn,
            "mail": user.upn,
        }
        return _json(request, body)

    async def get_member_objects(self, request: Request) -> Response:
        try:
            user, _ = self._caller(request, READ_MEMBER_OBJECTS)
            body = await _json_body(request)
            security_only = body.get("securityEnabledOnly")
            if not isinstance(security_only, bool):
                raise GraphError(
                    400,
                    "Request_BadRequest",
                    "The parameter 'securityEnabledOnly' in the request payload is not a valid parameter for "
                    "the operation 'getMemberObjects'. It is required and must be true or false.",
                )
        except GraphError as exc:
            return _error(request, exc)
        ids = [g.id for g in self._groups(user) if g.security_enabled or not security_only]
        return _json(
            request,
            {"@odata.context": f"{self.base_url()}/v1.0/$metadata#Collection(Edm.String)", "value": ids},
        )

    async def transitive_member_of(self, request: Request) -> Response:
        return self._memberships(request, cast=False)

    async def transitive_groups(self, request: Request) -> Response:
        return self._memberships(request, cast=True)

    def _memberships(self, request: Request, *, cast: bool) -> Response:
        try:
            user, scopes = self._caller(request, READ_MEMBERSHIPS)
            select = _select(request.query_params.get("$select"))
            top = _top(request.query_params.get("$top"))
            offset = _skip(request.query_params.get("$skiptoken"), user.oid)
        except GraphError as exc:
            return _error(request, exc)
        groups = self._groups(user)
        page = groups[offset : offset + top]
        full = bool(READ_GROUPS & scopes)
        body: dict[str, Any] = {
            "@odata.context": f"{self.base_url()}/v1.0/$metadata#{'groups' if cast else 'directoryObjects'}",
            "value": [_group_json(g, select, full=full, typed=not cast) for g in page],
        }
        if offset + top < len(groups):
            path = request.url.path
            token = _skiptoken(user.oid, offset + top)
            query = (
                f"$top={top}" + (f"&$select={','.join(select)}" if select else "") + f"&$skiptoken={token}"
            )
            body["@odata.nextLink"] = f"{self.base_url()}{path}?{query}"
        return _json(request, body)

    # -- helpers -----------------------------------------------------------------------------------------
    def _groups(self, user: User) -> list[Group]:
        return [g for g in (self.tenant.group_by_id(i) for i in user.groups) if g is not None]

    def _caller(self, request: Request, allowed: frozenset[str]) -> tuple[User, frozenset[str]]:
        """The signed-in user and the token's delegated scopes, or the error Graph answers."""
        with self._lock:
            self.calls += 1
            outage = self._outage
        if outage is not None:
            raise GraphError(outage, "serviceNotAvailable", "The service is temporarily unavailable.")
        claims = self._verify(request.headers.get("authorization", ""))
        if "scp" not in claims:  # an app-only token: /me needs a signed-in user
            raise GraphError(
                400, "BadRequest", "/me request is only valid with delegated authentication flow."
            )
        scopes = frozenset(str(claims["scp"]).split())
        if not scopes & allowed:
            raise GraphError(
                403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
            )
        user = self.tenant.user_by_oid(str(claims.get("oid", "")))
        if user is None:
            raise GraphError(
                404, "Request_ResourceNotFound", f"Resource '{claims.get('oid')}' does not exist."
            )
        return user, scopes

    def _verify(self, authorization: str) -> dict[str, Any]:
        if not authorization.lower().startswith("bearer ") or not authorization[7:].strip():
            raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.")
        token = authorization[7:].strip()
        try:
            key = self.keys.find(str(jwt.get_unverified_header(token).get("kid", "")))
            if key is None:
                raise GraphError(401, "InvalidAuthenticationToken", "Access token validation failure.")
            claims: dict[str, Any] = jwt.decode(
                token, key.private_key.public_key(), algorithms=["RS256"], options={"verify_aud": False}
            )
        except jwt.ExpiredSignatureError as exc:
            raise GraphError(
                401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired."
            ) from exc
        except jwt.PyJWTError as exc:
            raise GraphError(
                401, "InvalidAuthenticationToken", "IDX14100: JWT is not well formed or is not valid."
            ) from exc
        if claims.get("aud") not in GRAPH_AUDIENCES:
            raise GraphError(
                401, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience."
            )
        if claims.get("tid") != self.tenant.tenant_id:
            raise GraphError(401, "InvalidAuthenticationToken", "Access token validation failure.")
        return claims


def _select(raw: str | None) -> tuple[str, ...]:
    if not raw:
        return ()
    names = tuple(n.strip() for n in raw.split(",") if n.strip())
    for name in names:
        if name not in GROUP_PROPERTIES:
            raise GraphError(
                400,
                "Request_BadRequest",
                f"Could not find a property named '{name}' on type 'microsoft.graph.directoryObject'.",
            )
    return names


def _top(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_PAGE
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise GraphError(
            400,
            "Request_BadRequest",
            f"Invalid page size specified: '{raw}'. Must be between 1 and {MAX_PAGE} inclusive.",
        )
    return int(raw)


def _skiptoken(oid: str, offset: int) -> str:
    # Opaque to clients, as Graph's; bound to the user so one user's token cannot page another's list.
    raw = json.dumps({"u": oid, "o": offset}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _skip(raw: str | None, oid: str) -> int:
    if raw is None:
        return 0
    try:
        decoded = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        if decoded["u"] != oid or not isinstance(decoded["o"], int) or decoded["o"] < 0:
            raise ValueError("not this listing")
        return int(decoded["o"])
    except (ValueError, KeyError, TypeError) as exc:
        raise GraphError(
            400, "Request_BadRequest", "The specified page token value has expired or is invalid."
        ) from exc


def _group_json(group: Group, select: tuple[str, ...], *, full: bool, typed: bool) -> dict[str, Any]:
    values: dict[str, Any] = {
        "id": group.id,
        "displayName": group.name,
        "description": group.description or None,
        "securityEnabled": group.security_enabled,
        "mailEnabled": not group.security_enabled,
    }
    if not full:  # limited information: type and id, every other property null
        values = {k: (v if k == "id" else None) for k, v in values.items()}
    out: dict[str, Any] = {"@odata.type": "#microsoft.graph.group"} if typed else {}
    out |= {k: values[k] for k in (select or GROUP_PROPERTIES)}
    return out


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError as exc:
        raise GraphError(400, "BadRequest", "Unable to read JSON request payload.") from exc
    if not isinstance(body, dict):
        raise GraphError(400, "BadRequest", "Unable to read JSON request payload.")
    return body


def _ids(request: Request) -> dict[str, str]:
    request_id = str(uuid.uuid4())
    client_id = request.headers.get("client-request-id") or request_id
    return {"request-id": request_id, "client-request-id": client_id}


def _json(request: Request, body: dict[str, Any]) -> Response:
    return JSONResponse(body, headers=_ids(request) | {"Content-Type": ODATA_JSON})


def _error(request: Request, exc: GraphError) -> Response:
    """Graph's error envelope: ``{"error": {"code", "message", "innerError": {date, request-id, ...}}}``."""
    ids = _ids(request)
    inner = {"date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")} | ids
    headers = dict(ids)
    if exc.status == 401:
        headers["WWW-Authenticate"] = f'Bearer realm="", client_id="{GRAPH_APP_ID}"'
    return JSONResponse(
        {"error": {"code": exc.code, "message": exc.message, "innerError": inner}},
        status_code=exc.status,
        headers=headers,
    )
