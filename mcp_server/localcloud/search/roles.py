"""Keyless (Entra) authentication of the calling application, as Azure AI Search does it with role-based access.

A caller sends ``Authorization: Bearer <token>``: an Entra access token for ``https://search.azure.com`` (the
application's own, from client credentials or a managed identity). The service validates it like any Entra token
and then checks the caller's Azure role assignments on the service — kept here in the tenant file — against the
operation: querying needs *Search Index Data Reader* (or *Contributor*), loading documents *Search Index Data
Contributor*, managing indexes *Search Service Contributor*, reading index definitions that or *Reader*.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from enum import Enum
from typing import Any

from .auth import TokenRejected, TokenValidator
from .errors import SearchError

DATA_READER = "Search Index Data Reader"
DATA_CONTRIBUTOR = "Search Index Data Contributor"
SERVICE_CONTRIBUTOR = "Search Service Contributor"
READER = "Reader"
SEARCH_ROLES = frozenset({DATA_READER, DATA_CONTRIBUTOR, SERVICE_CONTRIBUTOR, READER})

# (tenant id, object id) -> the principal's role names on this service; None: a tenant the service does not serve.
RoleLookup = Callable[[str, str], "Collection[str] | None"]


class Operation(Enum):
    """What a route does, and the roles that may do it."""

    QUERY = (DATA_READER, DATA_CONTRIBUTOR)  # search, get document, $count
    WRITE_DOCUMENTS = (DATA_CONTRIBUTOR,)
    READ_DEFINITIONS = (SERVICE_CONTRIBUTOR, READER)  # get / list indexes
    MANAGE = (SERVICE_CONTRIBUTOR,)  # create, update, delete indexes; statistics
    ANY = ()  # a path no route matches: authenticated, then 404

    @property
    def roles(self) -> tuple[str, ...]:
        return tuple(self.value)


@dataclass(frozen=True)
class Caller:
    """Who called: the api-key holder (every operation), or an Entra principal with its role names."""

    api_key: bool
    oid: str | None = None
    roles: frozenset[str] = frozenset()

    def authorize(self, operation: Operation) -> None:
        if self.api_key or operation is Operation.ANY or self.roles & set(operation.roles):
            return
        needed = " or ".join(operation.roles)
        raise SearchError(
            403,
            f"Authorization failed. The principal '{self.oid}' has no role assignment on this search service that "
            f"allows this operation; assign it {needed}.",
        )


def bearer_caller(token: str, validator: TokenValidator, roles_of: RoleLookup) -> Caller:
    """The principal of an ``Authorization: Bearer`` token: a validated Entra token and its role assignments."""
    if not token:
        raise SearchError(401, "The Authorization header holds an empty bearer token.")
    try:
        claims: dict[str, Any] = validator.validate(token)
    except TokenRejected as exc:
        reason = exc.message.replace("The query source authorization token", "The token")
        raise SearchError(401, f"The Authorization bearer token was rejected: {reason}") from None
    tenant, oid = str(claims["tid"]), str(claims["oid"])
    roles = roles_of(tenant, oid)
    if roles is None:
        raise foreign_tenant(tenant, "Authorization bearer token")
    return Caller(api_key=False, oid=oid, roles=frozenset(roles))


def foreign_tenant(tenant: str, what: str) -> SearchError:
    """A validly signed token from a tenant the service does not serve: an authentication error, never a 5xx."""
    return SearchError(
        401,
        f"The {what} was issued for tenant '{tenant}', which this search service does not serve. Sign in to the "
        "service's own tenant.",
    )
