"""Conditional Access on the local identity platform (docs/identity.md, Conditional Access).

Two decisions, taken where Entra takes them: whether a sign-in needs multi-factor authentication (the page asks
for the second step; OBO and refresh answer ``interaction_required`` with a ``claims`` challenge), and whether a
sign-in is blocked (AADSTS53003). Also the ``claims`` request parameter a client sends after a challenge.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from mcp_server.localcloud.identity.errors import EntraError
from mcp_server.localcloud.tenant import ConditionalAccessPolicy, Tenant, User

MAX_CLAIMS_LENGTH = 2048  # a real challenge is ~100 characters; anything this long is not one
DEVICE_CODE_FLOW = "deviceCodeFlow"


@dataclass(frozen=True)
class ClaimsRequest:
    """What a ``claims`` request parameter asks of the access token: policies (``capolids``) to satisfy,
    authentication contexts (``acrs``), or ``amr`` values. Each of them means: do multi-factor authentication."""

    policy_ids: tuple[str, ...] = ()
    acrs: tuple[str, ...] = ()
    amr: tuple[str, ...] = ()

    @property
    def demands_mfa(self) -> bool:
        return bool(self.policy_ids or self.acrs or "mfa" in self.amr)


def parse_claims(raw: str | None) -> ClaimsRequest:
    """The ``claims`` parameter (OIDC claims request JSON), or EntraError invalid_request saying what is wrong."""
    if not raw:
        return ClaimsRequest()
    if len(raw) > MAX_CLAIMS_LENGTH:
        raise _bad_claims(f"It is {len(raw)} characters long; at most {MAX_CLAIMS_LENGTH} are accepted.")
    try:
        request = json.loads(raw)
    except ValueError:
        raise _bad_claims("It is not JSON.") from None
    if not isinstance(request, dict):
        raise _bad_claims('It must be a JSON object such as {"access_token":{...}}.')
    wanted: dict[str, tuple[str, ...]] = {"capolids": (), "acrs": (), "amr": ()}
    for token_kind in ("access_token", "id_token"):
        section = request.get(token_kind)
        if section is None:
            continue
        if not isinstance(section, dict):
            raise _bad_claims(f"'{token_kind}' must be a JSON object.")
        for name in wanted:
            wanted[name] += _values(section.get(name), name)
    return ClaimsRequest(wanted["capolids"], wanted["acrs"], wanted["amr"])


def _values(member: object, name: str) -> tuple[str, ...]:
    """``{"essential": true, "values": [...]}`` or ``{"value": "..."}`` as a tuple of strings."""
    if member is None:
        return ()
    if not isinstance(member, dict):
        raise _bad_claims(f"'{name}' must be an object with 'values' or 'value'.")
    values = member.get("values", [member["value"]] if "value" in member else [])
    if not isinstance(values, list) or not all(isinstance(v, str) and 0 < len(v) <= 64 for v in values):
        raise _bad_claims(f"'{name}' values must be a list of short strings.")
    return tuple(values)


def _bad_claims(detail: str) -> EntraError:
    # Entra's code for a malformed claims parameter is not documented; 90100 is this platform's choice.
    return EntraError("invalid_request", 90100, f"The 'claims' parameter is not valid. {detail}")


def _applying(
    tenant: Tenant, user: User, resource_uri: str | None, grant: str, flow: str | None = None
) -> list[ConditionalAccessPolicy]:
    return [p for p in tenant.policies if p.grant == grant and p.applies(user, resource_uri, flow)]


def mfa_policies(tenant: Tenant, user: User, resource_uri: str | None) -> list[ConditionalAccessPolicy]:
    """The enabled policies that require multi-factor authentication for ``user`` signing in to the resource."""
    return _applying(tenant, user, resource_uri, "mfa")


def needs_mfa(tenant: Tenant, user: User, resource_uri: str | None, claims: ClaimsRequest) -> bool:
    """Whether the sign-in page must ask ``user`` for the second step."""
    return claims.demands_mfa or bool(mfa_policies(tenant, user, resource_uri))


def check_blocked(tenant: Tenant, user: User, resource_uri: str | None, flow: str | None) -> None:
    """EntraError AADSTS53003 when a policy blocks this sign-in."""
    if _applying(tenant, user, resource_uri, "block", flow):
        raise blocked()


def blocked() -> EntraError:
    # Entra's `error` for 53003 at the token endpoint is not in the reference; reports of MSAL raising
    # "interaction required" exceptions for it point to invalid_grant (unconfirmed; docs/identity.md).
    return EntraError(
        "invalid_grant",
        53003,
        "Access has been blocked by Conditional Access policies. The access policy does not allow token issuance.",
    )


def check_mfa(
    tenant: Tenant,
    user: User,
    resource_uri: str,
    resource_app_id: str,
    amr: tuple[str, ...],
    claims: ClaimsRequest = ClaimsRequest(),
) -> None:
    """EntraError interaction_required (AADSTS50076) with a ``claims`` challenge when a policy (or the client's
    own claims request) requires MFA the session has not done."""
    if "mfa" in amr:
        return
    policy_ids = [p.id for p in mfa_policies(tenant, user, resource_uri)] + list(claims.policy_ids)
    if not policy_ids and not claims.demands_mfa:
        return
    challenge: dict[str, object] = {}
    if policy_ids:
        challenge["capolids"] = {"essential": True, "values": list(dict.fromkeys(policy_ids))}
    if claims.acrs:
        challenge["acrs"] = {"essential": True, "values": list(claims.acrs)}
    raise EntraError(
        "interaction_required",
        50076,
        "Due to a configuration change made by your administrator, or because you moved to a new location, you "
        f"must use multi-factor authentication to access '{resource_app_id}'.",
        extra={"claims": json.dumps({"access_token": challenge}, separators=(",", ":"))},
    )
