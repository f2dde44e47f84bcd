"""Turn a requested ``scope`` string into the one resource it names and the scope values asked of it."""

from __future__ import annotations

from dataclasses import dataclass

import mcp_server.localcloud.identity.errors as errors
from mcp_server.localcloud.tenant import AppRegistration, Resource, Tenant

OIDC_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})
GRAPH = "https://graph.microsoft.com"


@dataclass(frozen=True)
class Target:
    """The resource a token is for: one of the tenant's app registrations, or a first-party resource."""

    app: AppRegistration | None = None
    resource: Resource | None = None

    def _registration(self) -> AppRegistration:
        assert self.app is not None  # a target that names no resource names an app registration
        return self.app

    @property
    def identifier_uri(self) -> str:
        if self.resource is not None:
            return self.resource.identifier_uri
        app = self._registration()
        return app.identifier_uris[0] if app.identifier_uris else app.client_id

    @property
    def app_id(self) -> str:
        return self.resource.app_id if self.resource is not None else self._registration().client_id

    @property
    def name(self) -> str:
        return self.resource.name if self.resource is not None else self._registration().name

    @property
    def exposed_scopes(self) -> tuple[str, ...]:
        return self.resource.scopes if self.resource is not None else self._registration().scopes

    @property
    def token_version(self) -> int:
        if self.resource is not None:
            return self.resource.token_version
        return self._registration().access_token_version

    @property
    def audience(self) -> str:
        """``aud`` as Entra sets it: the client id for v2 tokens, the identifier URI for v1."""
        return self.app.client_id if self.token_version == 2 and self.app is not None else self.identifier_uri


@dataclass(frozen=True)
class ScopeRequest:
    """A parsed ``scope`` parameter: the resource, the scope values (``.default`` kept), OIDC extras."""

    raw: str
    target: Target
    prefix: str  # the resource part as the client wrote it (echoed back so MSAL's cache key matches)
    values: tuple[str, ...]
    oidc: frozenset[str]

    @property
    def is_default(self) -> bool:
        return ".default" in self.values

    def granted(self, allowed: tuple[str, ...]) -> tuple[str, ...]:
        """The scope values granted: all ``allowed`` for ``.default``, else those asked for."""
        if self.is_default:
            return allowed
        return tuple(v for v in self.values if v in allowed)

    def echo(self, granted: tuple[str, ...]) -> str:
        """The ``scope`` of the token response: granted values in full form (+ ``.default`` if asked)."""
        parts = [f"{self.prefix}/{v}" for v in granted]
        if self.is_default:
            parts.append(f"{self.prefix}/.default")
        return " ".join(parts)


def parse_scope(tenant: Tenant, scope: str) -> ScopeRequest:
    """Resolve ``scope`` against ``tenant``; errors as Entra answers them (70011, 500011)."""
    words = scope.split()
    oidc = frozenset(w for w in words if w in OIDC_SCOPES)
    rest = [w for w in words if w not in OIDC_SCOPES]
    if not rest:
        raise errors.invalid_scope(scope, "Request a scope of a resource, e.g. 'api://<client id>/execute'.")
    parsed: list[tuple[str, str]] = []
    for word in rest:
        prefix, sep, value = word.rpartition("/")
        if not sep or not prefix:
            prefix, value = GRAPH, word  # a bare scope value means Microsoft Graph, as in Entra
        parsed.append((prefix, value))
    prefixes = {p.rstrip("/").lower() for p, _ in parsed}
    if len(prefixes) > 1:
        raise errors.EntraError(
            "invalid_scope",
            700022,
            f"The provided value for the input parameter scope is not valid because it contains more than one "
            f"resource. Scope {scope} is not valid.",
        )
    prefix = parsed[0][0].rstrip("/")
    target = _find_target(tenant, prefix)
    values = tuple(v for _, v in parsed)
    unknown = [v for v in values if v != ".default" and v not in target.exposed_scopes]
    if unknown:
        raise errors.invalid_scope(
            scope, f"The resource '{target.identifier_uri}' does not expose {unknown}."
        )
    return ScopeRequest(scope, target, prefix, values, oidc)


def _find_target(tenant: Tenant, prefix: str) -> Target:
    wanted = prefix.lower()
    for app in tenant.apps:
        names = {u.lower() for u in app.identifier_uris} | {app.client_id.lower()}
        if wanted in names:
            return Target(app=app)
    for resource in tenant.resources:
        if wanted in (resource.identifier_uri.rstrip("/").lower(), resource.app_id.lower()):
            return Target(resource=resource)
    raise errors.unknown_resource(prefix, tenant.tenant_id)
