"""The demo tenant of the local identity platform: users, groups, app registrations, resources.

Loaded from the readable ``demo_tenant.json`` shipped next to this module. The search service also uses
``Tenant.groups_of`` as its directory lookup (what Microsoft Graph is for Azure AI Search).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from mcp_server.localcloud.search.roles import SEARCH_ROLES

DEMO_TENANT_FILE = Path(__file__).with_name("demo_tenant.json")


class TenantFileError(ValueError):
    """The tenant file is not valid; the message says what and where."""


# Entra's ``groupMembershipClaims`` values (app manifest); None and "None" both mean no groups claim.
GROUP_MEMBERSHIP_CLAIMS = ("None", "SecurityGroup", "DirectoryRole", "ApplicationGroup", "All")
# Above this many groups a JWT carries the overage claims instead of ``groups`` (docs/identity.md, Groups).
GROUPS_OVERAGE_LIMIT = 200


@dataclass(frozen=True)
class Group:
    id: str
    name: str
    description: str = ""
    security_enabled: bool = True  # False: a distribution (mail-only) group


@dataclass(frozen=True)
class User:
    username: str
    oid: str
    name: str
    upn: str
    groups: tuple[str, ...]  # group object ids

    @property
    def login(self) -> str:
        """The part before ``@`` (what ``login --as`` accepts)."""
        return self.username.split("@", 1)[0]


@dataclass(frozen=True)
class ResourceAccess:
    """An app's delegated permission on another resource, and who has consented to it."""

    resource: str  # the resource's identifier URI, e.g. https://search.azure.com
    delegated_scopes: tuple[str, ...]
    admin_consent: bool = False
    consented_users: frozenset[str] = frozenset()  # user object ids

    def consented(self, oid: str) -> bool:
        return self.admin_consent or oid in self.consented_users


@dataclass(frozen=True)
class AppRegistration:
    key: str
    name: str
    client_id: str
    service_principal_id: str
    public_client: bool = False
    allow_device_code_flow: bool = False
    client_secret: SecretStr | None = field(default=None, repr=False)
    identifier_uris: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()  # delegated scopes this app exposes
    authorized_client_ids: tuple[str, ...] = ()  # pre-authorized clients (no consent prompt)
    app_roles: tuple[str, ...] = ()  # application permissions this app exposes
    granted_app_roles: tuple[str, ...] = ()  # roles this app holds on itself (client_credentials)
    requested_access_token_version: int | None = None
    required_resource_access: tuple[ResourceAccess, ...] = ()
    redirect_uris: tuple[str, ...] = ()  # "Mobile and desktop" redirect URIs (public clients: loopback)
    group_membership_claims: str | None = None  # manifest ``groupMembershipClaims``; None: no groups claim
    assigned_groups: tuple[str, ...] = ()  # groups assigned to the enterprise app (for "ApplicationGroup")
    secret_expired: bool = False  # the client secret is past its end date (AADSTS7000222; scenarios)

    @property
    def access_token_version(self) -> int:
        """Entra issues v1 tokens unless the resource asked for v2 (``requestedAccessTokenVersion``)."""
        return 2 if self.requested_access_token_version == 2 else 1

    def access_to(self, resource_uri: str) -> ResourceAccess | None:
        for access in self.required_resource_access:
            if access.resource == resource_uri:
                return access
        return None


@dataclass(frozen=True)
class Resource:
    """A first-party resource (here: Azure AI Search) that apps can request delegated tokens for."""

    name: str
    app_id: str
    identifier_uri: str
    scopes: tuple[str, ...]
    token_version: int = 1


@dataclass(frozen=True)
class ConditionalAccessPolicy:
    """A Conditional Access policy, in the terms of Entra's policy editor (docs/identity.md, Conditional Access).

    Applies to ``user_ids`` and members of ``group_ids``, for sign-ins to ``resources`` (identifier URIs; "All"
    for every resource), optionally only for the ``authentication_flows`` named (``deviceCodeFlow``). ``grant``:
    ``mfa`` (require multi-factor authentication) or ``block``. ``state``: ``enabled`` or ``disabled``.
    """

    id: str
    name: str
    grant: str  # "mfa" | "block"
    state: str = "enabled"
    user_ids: frozenset[str] = frozenset()  # object ids
    group_ids: frozenset[str] = frozenset()
    resources: tuple[str, ...] = ("All",)
    authentication_flows: tuple[str, ...] = ()  # empty: every flow

    def applies(self, user: User, resource_uri: str | None, flow: str | None = None) -> bool:
        """Whether this policy governs ``user`` signing in to ``resource_uri`` with ``flow``."""
        if self.state != "enabled":
            return False
        if user.oid not in self.user_ids and not self.group_ids & set(user.groups):
            return False
        if "All" not in self.resources:
            wanted = (resource_uri or "").rstrip("/").lower()
            if wanted not in {r.rstrip("/").lower() for r in self.resources}:
                return False
        return not self.authentication_flows or flow in self.authentication_flows


@dataclass(frozen=True)
class RoleAssignment:
    """An Azure role assignment on the search service: what a keyless (Bearer) caller may do there."""

    principal_id: str  # object id: an app's service principal, or a user
    role: str  # e.g. "Search Index Data Reader" (mcp_server.localcloud.search.roles)


POLICY_GRANTS = ("mfa", "block")
POLICY_STATES = ("enabled", "disabled")
AUTHENTICATION_FLOWS = ("deviceCodeFlow",)


@dataclass(frozen=True)
class Tenant:
    tenant_id: str
    display_name: str
    domain: str
    users: tuple[User, ...]
    groups: tuple[Group, ...]
    apps: tuple[AppRegistration, ...]
    resources: tuple[Resource, ...] = ()
    policies: tuple[ConditionalAccessPolicy, ...] = ()
    search_role_assignments: tuple[RoleAssignment, ...] = ()

    # -- directory -------------------------------------------------------------------------------------
    def user_by_login(self, login: str) -> User | None:
        """A user by full username, UPN, or the part before ``@`` (case-insensitive)."""
        wanted = login.strip().lower()
        if not wanted:
            return None
        for user in self.users:
            if wanted in (user.username.lower(), user.upn.lower(), user.login.lower()):
                return user
        return None

    def user_by_oid(self, oid: str) -> User | None:
        wanted = oid.strip().lower()
        return next((u for u in self.users if u.oid.lower() == wanted), None)

    def groups_of(self, oid: str) -> list[str]:
        """Group object ids of a user (the directory lookup the search service does); [] if unknown."""
        user = self.user_by_oid(oid)
        return list(user.groups) if user else []

    def search_roles_of(self, tenant_id: str, oid: str) -> frozenset[str] | None:
        """The search-service roles of ``oid`` (what Azure RBAC answers); None for another tenant."""
        if tenant_id != self.tenant_id:
            return None
        return frozenset(a.role for a in self.search_role_assignments if a.principal_id == oid)

    def group_by_id(self, group_id: str) -> Group | None:
        return next((g for g in self.groups if g.id == group_id), None)

    def claim_groups(self, user: User, app: AppRegistration) -> list[str] | None:
        """The group ids Entra would put in a token for ``app`` (its ``groupMembershipClaims``); None: no claim.

        ``SecurityGroup``: security groups; ``All``: every group; ``ApplicationGroup``: the user's groups that are
        assigned to the app; ``DirectoryRole``: directory roles only, which this tenant does not model, so none.
        No qualifying group: no claim (the stricter reading; Entra's documentation does not say)."""
        setting = app.group_membership_claims
        if setting in (None, "None", "DirectoryRole"):
            return None
        chosen: list[str] = []
        for group_id in user.groups:
            group = self.group_by_id(group_id)
            if group is None:
                continue
            if setting == "SecurityGroup" and not group.security_enabled:
                continue
            if setting == "ApplicationGroup" and group_id not in app.assigned_groups:
                continue
            chosen.append(group_id)
        return chosen or None

    # -- applications ---------------------------------------------------------------------------------
    def app_by_client_id(self, client_id: str) -> AppRegistration | None:
        wanted = client_id.strip().lower()
        return next((a for a in self.apps if a.client_id.lower() == wanted), None)

    def app(self, key: str) -> AppRegistration:
        for app in self.apps:
            if app.key == key:
                return app
        raise KeyError(f"no app registration with key {key!r} in tenant {self.tenant_id}")

    @property
    def console_app(self) -> AppRegistration:
        return self.app("console")

    @property
    def api_app(self) -> AppRegistration:
        return self.app("api")

    @property
    def api_scope(self) -> str:
        """The scope the console requests for the MCP API, e.g. ``api://<client id>/execute``."""
        api = self.api_app
        return f"{api.identifier_uris[0]}/{api.scopes[0]}"

    def resource_by_uri(self, uri: str) -> Resource | None:
        wanted = uri.rstrip("/").lower()
        return next((r for r in self.resources if r.identifier_uri.rstrip("/").lower() == wanted), None)

    def with_consent(self, app_key: str, resource_uri: str, oids: Iterable[str]) -> Tenant:
        """A copy where exactly ``oids`` have consented to ``app_key``'s access to ``resource_uri``."""
        app = self.app(app_key)
        accesses = tuple(
            replace(a, admin_consent=False, consented_users=frozenset(oids))
            if a.resource == resource_uri
            else a
            for a in app.required_resource_access
        )
        new_app = replace(app, required_resource_access=accesses)
        return replace(self, apps=tuple(new_app if a.key == app_key else a for a in self.apps))


def load_demo_tenant(path: Path | None = None) -> Tenant:
    """Load the tenant file (default: the shipped demo tenant) and check it is consistent."""
    source = path or DEMO_TENANT_FILE
    try:
        raw = json.loads(Path(source).read_text())
    except FileNotFoundError as exc:
        raise TenantFileError(f"Tenant file {source} does not exist.") from exc
    except json.JSONDecodeError as exc:
        raise TenantFileError(f"Tenant file {source} is not valid JSON: {exc}") from exc
    try:
        return _parse(raw)
    except (KeyError, TypeError, ValueError) as exc:
        raise TenantFileError(f"Tenant file {source} is not valid: {exc}") from exc


def _parse(raw: dict[str, Any]) -> Tenant:
    groups = tuple(
        Group(g["id"], g["name"], g.get("description", ""), bool(g.get("securityEnabled", True)))
        for g in raw["groups"]
    )
    group_ids = {g.name: g.id for g in groups} | {g.id: g.id for g in groups}
    users = []
    for u in raw["users"]:
        unknown = [g for g in u["groups"] if g not in group_ids]
        if unknown:
            raise ValueError(f"user {u['username']} is in unknown group(s) {unknown}")
        users.append(
            User(
                u["username"],
                u["oid"],
                u["name"],
                u.get("upn", u["username"]),
                tuple(group_ids[g] for g in u["groups"]),
            )
        )
    oid_of = {u.username.lower(): u.oid for u in users} | {u.oid: u.oid for u in users}
    apps = tuple(_parse_app(a, oid_of, group_ids) for a in raw["applications"])
    resources = tuple(
        Resource(
            r["name"], r["app_id"], r["identifier_uri"], tuple(r["scopes"]), int(r.get("token_version", 1))
        )
        for r in raw.get("resources", [])
    )
    policies = tuple(_parse_policy(p, oid_of, group_ids) for p in raw.get("conditional_access_policies", []))
    principal_of = oid_of | {a.key: a.service_principal_id for a in apps}
    assignments = tuple(_parse_role(r, principal_of) for r in raw.get("search_role_assignments", []))
    tenant = Tenant(
        raw["tenant"]["id"],
        raw["tenant"]["display_name"],
        raw["tenant"]["domain"],
        tuple(users),
        groups,
        apps,
        resources,
        policies,
        assignments,
    )
    tenant.console_app  # noqa: B018 - both registrations must exist
    tenant.api_app  # noqa: B018
    return tenant


def _parse_role(raw: dict[str, Any], principal_of: dict[str, str]) -> RoleAssignment:
    principal, role = raw["principal"], raw["role"]
    if role not in SEARCH_ROLES:
        raise ValueError(f"search role assignment: unknown role {role!r}; use one of {sorted(SEARCH_ROLES)}")
    resolved = principal_of.get(principal) or principal_of.get(str(principal).lower())
    if resolved is None:
        raise ValueError(
            f"search role assignment: unknown principal {principal!r}; use an app key, a username or an object id"
        )
    return RoleAssignment(resolved, role)


def _parse_policy(
    p: dict[str, Any], oid_of: dict[str, str], group_ids: dict[str, str]
) -> ConditionalAccessPolicy:
    name = p["name"]
    grant, state = p["grant"], p.get("state", "enabled")
    if grant not in POLICY_GRANTS:
        raise ValueError(f"policy {name!r}: grant must be one of {POLICY_GRANTS}, not {grant!r}")
    if state not in POLICY_STATES:
        raise ValueError(f"policy {name!r}: state must be one of {POLICY_STATES}, not {state!r}")
    flows = tuple(p.get("authentication_flows", []))
    if unknown_flows := [f for f in flows if f not in AUTHENTICATION_FLOWS]:
        raise ValueError(
            f"policy {name!r}: unknown authentication flow(s) {unknown_flows}; use {AUTHENTICATION_FLOWS}"
        )
    users = p.get("users", {})
    unknown = [u for u in users.get("include_users", []) if u.lower() not in oid_of]
    unknown += [g for g in users.get("include_groups", []) if g not in group_ids]
    if unknown:
        raise ValueError(f"policy {name!r}: unknown user(s) or group(s) {unknown}")
    return ConditionalAccessPolicy(
        id=p["id"],
        name=name,
        grant=grant,
        state=state,
        user_ids=frozenset(oid_of[u.lower()] for u in users.get("include_users", [])),
        group_ids=frozenset(group_ids[g] for g in users.get("include_groups", [])),
        resources=tuple(p.get("target_resources", ["All"])),
        authentication_flows=flows,
    )


def _group_claims_setting(a: dict[str, Any]) -> str | None:
    setting = a.get("groupMembershipClaims")
    if setting is not None and setting not in GROUP_MEMBERSHIP_CLAIMS:
        raise ValueError(
            f"app {a['key']}: groupMembershipClaims must be one of {GROUP_MEMBERSHIP_CLAIMS} (or null), "
            f"not {setting!r}"
        )
    return None if setting in (None, "None") else str(setting)


def _parse_app(a: dict[str, Any], oid_of: dict[str, str], group_ids: dict[str, str]) -> AppRegistration:
    unknown_groups = [g for g in a.get("assigned_groups", []) if g not in group_ids]
    if unknown_groups:
        raise ValueError(f"app {a['key']}: unknown assigned group(s) {unknown_groups}")
    accesses = []
    for ra in a.get("required_resource_access", []):
        unknown = [u for u in ra.get("consented_users", []) if u.lower() not in oid_of]
        if unknown:
            raise ValueError(f"app {a['key']}: consent for unknown user(s) {unknown}")
        accesses.append(
            ResourceAccess(
                ra["resource"],
                tuple(ra["delegated_scopes"]),
                bool(ra.get("admin_consent", False)),
                frozenset(oid_of[u.lower()] for u in ra.get("consented_users", [])),
            )
        )
    secret = a.get("client_secret")
    return AppRegistration(
        key=a["key"],
        name=a["name"],
        client_id=a["client_id"],
        service_principal_id=a["service_principal_id"],
        public_client=bool(a.get("public_client", False)),
        allow_device_code_flow=bool(a.get("allow_device_code_flow", False)),
        client_secret=SecretStr(secret) if secret else None,
        identifier_uris=tuple(a.get("identifier_uris", [])),
        scopes=tuple(a.get("scopes", [])),
        authorized_client_ids=tuple(a.get("authorized_client_ids", [])),
        app_roles=tuple(a.get("app_roles", [])),
        granted_app_roles=tuple(a.get("granted_app_roles", [])),
        requested_access_token_version=a.get("requested_access_token_version"),
        required_resource_access=tuple(accesses),
        redirect_uris=tuple(a.get("redirect_uris", [])),
        group_membership_claims=_group_claims_setting(a),
        assigned_groups=tuple(group_ids[g] for g in a.get("assigned_groups", [])),
    )
