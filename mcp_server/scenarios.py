"""Named misconfigurations of the running local stack, switched on and off live (docs/scenarios.md).

Each scenario changes one link of the chain the way a real tenant breaks (an administrator's change in the portal, a
rotated key, an outage) and its reset puts it back. None weakens a check: every scenario makes something refuse,
never accept; the server keeps validating tokens and trimming results. Applying one clears the MCP server's OBO
cache and JWKS cache (as time passing would), so the break shows on the next call instead of an hour later.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from azure.core.exceptions import ResourceNotFoundError
from azure.search.documents import SearchClient
from azure.search.documents.indexes import SearchIndexClient
from pydantic import SecretStr

from mcp_server import provision
from mcp_server.atomic import write_private
from mcp_server.localcloud.identity.platform import IdentityPlatform
from mcp_server.localcloud.search.service import SearchService
from mcp_server.localcloud.tenant import ConditionalAccessPolicy, Tenant
from mcp_server.search_credential import api_key_auth
from mcp_server.server.app import OboServer
from mcp_server.server.config import SEARCH_AUDIENCE


class ServiceControl(Protocol):
    """A service the stack may stop and start again on the same address (a Redis it manages)."""

    def stop(self) -> None: ...

    def start(self) -> None: ...


class StackParts(Protocol):
    """What a scenario changes: the parts of ``mcp_server.stack.LocalStack`` (a protocol, so this module does
    not import the stack that imports it)."""

    identity: IdentityPlatform
    search: SearchService
    server: OboServer | None
    tenant: Tenant
    search_key: SecretStr
    index_name: str
    redis: ServiceControl | None


Memo = dict[str, str]  # what a scenario keeps to undo itself (per switch)
Switch = Callable[[StackParts, Memo], None]

CLOCK_SKEW_SECONDS = 600.0  # beyond the 300 s Azure AI Search and Entra tolerate
SCENARIO_POLICY_ID = "b1e6c0de-5ce0-4a10-9f00-00000000mfa0"


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    check: str  # the doctor check that names it
    where: str  # where the console shows the break
    apply: Switch
    reset: Switch

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "title": self.title, "check": self.check, "where": self.where}


class ScenarioUnavailable(RuntimeError):
    """The scenario cannot run on this stack (the message says why and what to do)."""


class UnknownScenario(LookupError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"No scenario named {name[:60]!r}. Scenarios: {', '.join(SCENARIOS)}.")


# -- the switches ----------------------------------------------------------------------------------------------


def _consent(revoke: bool) -> Switch:
    def switch(stack: StackParts, memo: Memo) -> None:
        for user in stack.tenant.users:
            if revoke:
                stack.identity.revoke_consent(user)
            else:
                stack.identity.restore_consent(user)

    return switch


def _secret(wrong: bool) -> Switch:
    """The MCP server's configured secret (what an operator typed), not the registration's."""

    def switch(stack: StackParts, memo: Memo) -> None:
        assert stack.server is not None
        exchanger = stack.server.exchanger
        right = stack.server.config.api_client_secret
        secret = SecretStr("wrong-" + secrets.token_urlsafe(16)) if wrong else right
        exchanger.config = replace(exchanger.config, api_client_secret=secret)
        exchanger.close()  # the MSAL app holds the secret it was made with

    return switch


def _edit_tenant(change: Callable[[Tenant], Tenant]) -> Switch:
    def switch(stack: StackParts, memo: Memo) -> None:
        stack.identity.update_tenant(change(stack.identity.tenant))

    return switch


def _restore_tenant(stack: StackParts, memo: Memo) -> None:
    stack.identity.update_tenant(stack.tenant)


def _expire_secret(tenant: Tenant) -> Tenant:
    api = replace(tenant.api_app, secret_expired=True)
    return replace(tenant, apps=tuple(api if a.key == "api" else a for a in tenant.apps))


def _block_device_code(tenant: Tenant) -> Tenant:
    console = replace(tenant.console_app, allow_device_code_flow=False)
    return replace(tenant, apps=tuple(console if a.key == "console" else a for a in tenant.apps))


def _require_mfa(tenant: Tenant) -> Tenant:
    policy = ConditionalAccessPolicy(
        id=SCENARIO_POLICY_ID,
        name="Scenario: require multifactor authentication for Azure AI Search",
        grant="mfa",
        user_ids=frozenset(u.oid for u in tenant.users),
        resources=(SEARCH_AUDIENCE,),
    )
    return replace(tenant, policies=(*tenant.policies, policy))


def _rotate_keys(stack: StackParts, memo: Memo) -> None:
    memo.setdefault("keys", stack.identity.keys_file.read_text())  # reset puts the old key back
    stack.identity.rotate_keys(grace_seconds=0)


def _restore_keys(stack: StackParts, memo: Memo) -> None:
    saved = memo.pop("keys", None)
    if saved is not None:
        write_private(stack.identity.keys_file, saved)


def _search_key(rotate: bool) -> Switch:
    def switch(stack: StackParts, memo: Memo) -> None:
        key = SecretStr(secrets.token_urlsafe(32)) if rotate else stack.search_key
        stack.search.set_api_key(key)

    return switch


def _rebuild_index(with_permissions: bool) -> Switch:
    def switch(stack: StackParts, memo: Memo) -> None:
        auth = api_key_auth(stack.search_key)
        with SearchIndexClient(stack.search.endpoint, **auth.client_kwargs()) as client:
            with contextlib.suppress(ResourceNotFoundError):
                client.delete_index(stack.index_name)
            principals = provision.principals_from_tenant(stack.tenant)
            if with_permissions:
                provision.provision(stack.search.endpoint, stack.search_key, stack.index_name, principals)
                return
            index = provision.index_definition(stack.index_name)
            for field in index.fields:
                field.permission_filter = None
            index.permission_filter_option = None
            client.create_index(index)
        documents = provision.resolve_documents(principals).documents
        with SearchClient(stack.search.endpoint, stack.index_name, **auth.client_kwargs()) as search:
            search.upload_documents(documents)

    return switch


def _skew_clock(offset: float) -> Switch:
    def switch(stack: StackParts, memo: Memo) -> None:
        stack.identity.minter.clock_offset = offset

    return switch


def _search_down(stack: StackParts, memo: Memo) -> None:
    stack.search.stop()


def _search_up(stack: StackParts, memo: Memo) -> None:
    stack.search.start()


def _redis(up: bool) -> Switch:
    def switch(stack: StackParts, memo: Memo) -> None:
        if stack.redis is None:
            raise ScenarioUnavailable(
                "This local stack manages no Redis, so it cannot take one down; stop your Redis yourself to see "
                "the break (doctor names 'redis' when USE_REDIS=true)."
            )
        if up:
            stack.redis.start()
        else:
            stack.redis.stop()

    return switch


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "consent-missing",
            "No admin consent for the API's Azure AI Search permission (AADSTS65001)",
            "obo",
            "presenter step 4 (OBO exchange)",
            _consent(True),
            _consent(False),
        ),
        Scenario(
            "wrong-secret",
            "The MCP server is configured with a wrong client secret (AADSTS7000215)",
            "obo",
            "presenter step 4 (OBO exchange)",
            _secret(True),
            _secret(False),
        ),
        Scenario(
            "expired-secret",
            "The API's client secret has expired (AADSTS7000222)",
            "obo",
            "presenter step 4 (OBO exchange)",
            _edit_tenant(_expire_secret),
            _restore_tenant,
        ),
        Scenario(
            "signing-key-rotated",
            "The identity platform rotated its signing key without a grace period",
            "token",
            "presenter step 3 (validation)",
            _rotate_keys,
            _restore_keys,
        ),
        Scenario(
            "search-key-rotated",
            "The search service's admin key was regenerated; the server has the old one",
            "search_service",
            "presenter step 5 (search)",
            _search_key(True),
            _search_key(False),
        ),
        Scenario(
            "index-without-permissions",
            "The index was rebuilt without permission filter fields",
            "index",
            "presenter step 5 (search)",
            _rebuild_index(False),
            _rebuild_index(True),
        ),
        Scenario(
            "conditional-access-mfa",
            "A Conditional Access policy requires MFA for Azure AI Search (AADSTS50076)",
            "obo",
            "presenter step 4 (OBO exchange)",
            _edit_tenant(_require_mfa),
            _restore_tenant,
        ),
        Scenario(
            "device-code-blocked",
            "The console app no longer allows public client flows (device code: AADSTS7000218)",
            "public_client",
            "presenter step 1 (sign-in)",
            _edit_tenant(_block_device_code),
            _restore_tenant,
        ),
        Scenario(
            "clock-skew",
            f"The identity platform's clock runs {CLOCK_SKEW_SECONDS:.0f} s ahead (beyond the tolerance)",
            "clock",
            "presenter step 5 (search)",
            _skew_clock(CLOCK_SKEW_SECONDS),
            _skew_clock(0.0),
        ),
        Scenario(
            "search-down",
            "The search service is down",
            "search_service",
            "presenter step 5 (search)",
            _search_down,
            _search_up,
        ),
        Scenario(
            "redis-down",
            "The Redis the console reads its configs from is down (stacks that manage a Redis)",
            "redis",
            "a notice: the config store is unreachable",
            _redis(False),
            _redis(True),
        ),
    )
}


class ScenarioSwitch:
    """At most one scenario active on ``stack``; applying another resets the first. Thread-safe."""

    def __init__(self, stack: StackParts) -> None:
        self.stack = stack
        self.active: str | None = None
        self._memo: Memo = {}
        self._lock = threading.Lock()

    def apply(self, name: str) -> Scenario:
        scenario = SCENARIOS.get(name)
        if scenario is None:
            raise UnknownScenario(name)
        with self._lock:
            self._reset_locked()
            try:
                scenario.apply(self.stack, self._memo)
                self.active = scenario.name
            finally:
                self._forget_caches()
        return scenario

    def reset(self) -> str | None:
        """Undo the active scenario; the name it was (None when none was)."""
        with self._lock:
            was = self.active
            self._reset_locked()
            self._forget_caches()
            return was

    def _reset_locked(self) -> None:
        if self.active is not None:
            SCENARIOS[self.active].reset(self.stack, self._memo)
            self.active = None

    def _forget_caches(self) -> None:
        """What time would do: cached OBO tokens, JWKS keys and the index definition are read again."""
        server = self.stack.server
        if server is None:
            return
        server.cache.clear()
        server.exchanger.close()  # MSAL remembers refusals of the same assertion for a while
        server.search.forget_index()
        if server.verifier is not None:
            server.verifier.forget_keys()
