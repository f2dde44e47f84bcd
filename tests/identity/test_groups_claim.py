"""``groups`` as Entra emits it: only when the app registration's ``groupMembershipClaims`` asks, filtered by
its value, and replaced by the overage claims above 200 groups (real MSAL sign-ins against the platform)."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests

from mcp_server.localcloud.identity.platform import IdentityPlatform
from mcp_server.localcloud.identity.scopes import Target
from mcp_server.localcloud.identity.tokens import TokenMinter
from mcp_server.localcloud.signing_keys import SigningKeyStore
from mcp_server.localcloud.tenant import (
    DEMO_TENANT_FILE,
    Group,
    Tenant,
    TenantFileError,
    User,
    load_demo_tenant,
)
from tests.identity.helpers import device_flow_sign_in, public_app


def _claims(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def _sign_in(platform: IdentityPlatform, session: requests.Session, login: str) -> dict[str, Any]:
    result = device_flow_sign_in(platform, public_app(platform, session), login)
    assert "access_token" in result, result
    return result


def test_the_api_token_carries_security_groups_as_the_registration_asks(
    identity_platform: IdentityPlatform, identity_http: requests.Session, demo_tenant: Tenant
) -> None:
    assert demo_tenant.api_app.group_membership_claims == "SecurityGroup"
    result = _sign_in(identity_platform, identity_http, "bob")
    bob = demo_tenant.user_by_login("bob")
    assert bob is not None
    claims = _claims(result["access_token"])
    assert claims["groups"] == list(bob.groups)
    assert "_claim_names" not in claims and "_claim_sources" not in claims
    # The console's registration sets no groupMembershipClaims: its id token has no groups.
    assert "groups" not in _claims(result["id_token"])


def test_erin_in_241_groups_gets_the_overage_claims_instead_of_groups(
    identity_platform: IdentityPlatform, identity_http: requests.Session, demo_tenant: Tenant
) -> None:
    erin = demo_tenant.user_by_login("erin")
    assert erin is not None and len(erin.groups) == 241
    claims = _claims(_sign_in(identity_platform, identity_http, "erin")["access_token"])
    assert "groups" not in claims
    assert claims["_claim_names"] == {"groups": "src1"}
    assert claims["_claim_sources"] == {
        "src1": {
            "endpoint": f"https://graph.windows.net/{demo_tenant.tenant_id}/users/{erin.oid}/getMemberObjects"
        }
    }


@pytest.fixture
def minter(tmp_path: Path) -> TokenMinter:
    return TokenMinter(
        load_demo_tenant(), SigningKeyStore(tmp_path / "keys.json").ensure(), lambda: "https://x"
    )


def _tenant_with(setting: str | None, *, groups: int, distribution: bool = False) -> tuple[Tenant, User]:
    """The demo tenant where the API asks ``setting`` and a user ``zoe`` is in ``groups`` security groups (plus,
    with ``distribution``, one mail-only group), the first of them assigned to the API's enterprise app."""
    base = load_demo_tenant()
    made = [Group(str(uuid.uuid4()), f"G{n}") for n in range(groups)]
    mail = [Group(str(uuid.uuid4()), "Newsletter", security_enabled=False)] if distribution else []
    zoe = User(
        "zoe@contoso.example",
        str(uuid.uuid4()),
        "Zoe",
        "zoe@contoso.example",
        tuple(g.id for g in made + mail),
    )
    api = replace(
        base.api_app, group_membership_claims=setting, assigned_groups=(made[0].id,) if made else ()
    )
    apps = tuple(api if a.key == "api" else a for a in base.apps)
    tenant = replace(base, users=(*base.users, zoe), groups=(*base.groups, *made, *mail), apps=apps)
    return tenant, zoe


def _api_token_claims(minter: TokenMinter, tenant: Tenant, user: User) -> dict[str, Any]:
    minter.tenant = tenant
    target = Target(app=tenant.api_app)
    return minter.user_access_token(
        user, target, ("execute",), tenant.console_app, client_authenticated=False
    ).claims


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        (None, None),
        ("DirectoryRole", None),  # directory roles only; this tenant has none
        ("SecurityGroup", "security"),
        ("All", "all"),
        ("ApplicationGroup", "assigned"),
    ],
)
def test_group_membership_claims_decides_which_groups_the_token_names(
    minter: TokenMinter, setting: str | None, expected: str | None
) -> None:
    tenant, zoe = _tenant_with(setting, groups=3, distribution=True)
    claims = _api_token_claims(minter, tenant, zoe)
    security = [g.id for g in tenant.groups if g.id in zoe.groups and g.security_enabled]
    want = {None: None, "security": security, "all": list(zoe.groups), "assigned": [zoe.groups[0]]}[expected]
    assert claims.get("groups") == want
    assert "_claim_names" not in claims


def test_exactly_200_groups_still_ride_in_the_token_and_201_become_the_overage(minter: TokenMinter) -> None:
    tenant, zoe = _tenant_with("SecurityGroup", groups=200)
    assert _api_token_claims(minter, tenant, zoe)["groups"] == list(zoe.groups)
    tenant, zoe = _tenant_with("SecurityGroup", groups=201)
    claims = _api_token_claims(minter, tenant, zoe)
    assert "groups" not in claims and claims["_claim_names"] == {"groups": "src1"}
    assert claims["_claim_sources"]["src1"]["endpoint"].endswith(f"/users/{zoe.oid}/getMemberObjects")


def test_first_party_resources_get_no_groups(minter: TokenMinter, demo_tenant: Tenant) -> None:
    """Search and Graph tokens are not shaped by this tenant's registrations."""
    alice = demo_tenant.user_by_login("alice")
    assert alice is not None
    for resource in demo_tenant.resources:
        claims = minter.user_access_token(
            alice, Target(resource=resource), resource.scopes, demo_tenant.api_app, client_authenticated=True
        ).claims
        assert "groups" not in claims and "_claim_names" not in claims


def test_an_unknown_group_membership_claims_value_is_refused_with_the_choices(tmp_path: Path) -> None:
    raw = json.loads(DEMO_TENANT_FILE.read_text())
    raw["applications"][1]["groupMembershipClaims"] = "Security"
    path = tmp_path / "tenant.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(TenantFileError) as caught:
        load_demo_tenant(path)
    assert str(caught.value) == (
        f"Tenant file {path} is not valid: app api: groupMembershipClaims must be one of ('None', "
        "'SecurityGroup', 'DirectoryRole', 'ApplicationGroup', 'All') (or null), not 'Security'"
    )
