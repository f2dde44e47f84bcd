"""The demo tenant: the constraints the rest of the project relies on."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from mcp_server.localcloud.tenant import DEMO_TENANT_FILE, TenantFileError, load_demo_tenant


def _is_guid(value: str) -> bool:
    return str(uuid.UUID(value)) == value


def test_demo_users_alice_bob_carol_dave_erin_with_stable_guids_and_distinct_groups() -> None:
    tenant = load_demo_tenant()
    assert _is_guid(tenant.tenant_id)
    assert [u.username.split("@")[0] for u in tenant.users] == ["alice", "bob", "carol", "dave", "erin"]
    assert all(_is_guid(u.oid) for u in tenant.users)
    assert len({u.oid for u in tenant.users}) == 5
    group_ids = {g.id for g in tenant.groups}
    assert all(_is_guid(g) for g in group_ids)
    for user in tenant.users:
        assert user.groups and set(user.groups) <= group_ids
        assert user.name and user.upn == user.username
    # Different group sets, with overlap: permission trimming gives each user a different view.
    assert len({frozenset(u.groups) for u in tenant.users}) == 5
    alice, bob, carol, dave, erin = tenant.users
    assert len(erin.groups) == 241 and set(dave.groups) < set(erin.groups)  # erin: above the overage limit
    assert set(alice.groups) & set(carol.groups) and set(alice.groups) & set(bob.groups)
    assert set(dave.groups) < set(bob.groups)  # dave: All Staff only, the fewest documents
    assert load_demo_tenant() == tenant  # stable across loads


def test_lookups() -> None:
    tenant = load_demo_tenant()
    alice = tenant.users[0]
    assert tenant.user_by_login("alice") is alice
    assert tenant.user_by_login("ALICE@contoso.example") is alice
    assert tenant.user_by_login(" Alice ") is alice
    assert tenant.user_by_login("mallory") is None and tenant.user_by_login("") is None
    assert tenant.user_by_oid(alice.oid) is alice and tenant.user_by_oid(alice.oid.upper()) is alice
    assert tenant.groups_of(alice.oid) == list(alice.groups)
    assert tenant.groups_of(str(uuid.uuid4())) == []
    assert {tenant.group_by_id(g).name for g in alice.groups} == {"Finance", "Engineering", "All Staff"}  # type: ignore[union-attr]


def test_app_registrations() -> None:
    tenant = load_demo_tenant()
    console, api = tenant.console_app, tenant.api_app
    assert console.public_client and console.allow_device_code_flow and console.client_secret is None
    assert not api.public_client and api.requested_access_token_version == 2
    assert api.identifier_uris == (f"api://{api.client_id}",)
    assert api.scopes == ("execute",) and tenant.api_scope == f"api://{api.client_id}/execute"
    assert console.client_id in api.authorized_client_ids
    search = api.access_to("https://search.azure.com")
    assert search is not None and search.delegated_scopes == ("user_impersonation",)
    assert all(search.consented(u.oid) for u in tenant.users)
    assert tenant.resource_by_uri("https://search.azure.com/") is not None


def test_client_secret_is_masked() -> None:
    api = load_demo_tenant().api_app
    secret = api.client_secret.get_secret_value()  # type: ignore[union-attr]
    assert secret not in repr(api) and secret not in repr(load_demo_tenant())
    assert secret not in str(api.client_secret)


def test_broken_tenant_files_say_what_is_wrong(tmp_path: Path) -> None:
    raw = json.loads(DEMO_TENANT_FILE.read_text())
    raw["users"][0]["groups"] = ["Finance", "Marketing"]
    bad = tmp_path / "tenant.json"
    bad.write_text(json.dumps(raw))
    with pytest.raises(TenantFileError, match="unknown group.*Marketing"):
        load_demo_tenant(bad)
    bad.write_text("{not json")
    with pytest.raises(TenantFileError, match="not valid JSON"):
        load_demo_tenant(bad)
    with pytest.raises(TenantFileError, match="does not exist"):
        load_demo_tenant(tmp_path / "missing.json")
