"""`obo-console provision` against the local search service: local mode (state file) and Azure mode (settings
and --assign), through the real CLI entry point and the real SDK."""

from __future__ import annotations

import json
import uuid

import pytest
from azure.core.credentials import AzureKeyCredential
from azure.search.documents import SearchClient

from console.cli import main
from mcp_server.localcloud.identity.platform import IdentityPlatform
from mcp_server.localcloud.search.errors import SearchError
from mcp_server.localcloud.search.service import SearchService
from mcp_server.localcloud.search.store import QueryIdentity
from mcp_server.localcloud.tenant import Tenant
from mcp_server.provision import DEMO_DOCUMENTS, SAMPLE_SET, parse_assignments, referenced_principals
from mcp_server.stack_state import StackState, write_state


def _client(service: SearchService, index: str) -> SearchClient:
    return SearchClient(service.endpoint, index, AzureKeyCredential(service.api_key.get_secret_value()))


def _write_stack_state(service: SearchService, index: str) -> None:
    write_state(
        StackState(search_endpoint=service.endpoint, search_index=index, search_api_key=service.api_key)
    )


def test_local_mode_provisions_from_the_state_file_and_is_idempotent(
    search_service: SearchService,
    identity_platform: IdentityPlatform,
    demo_tenant: Tenant,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _write_stack_state(search_service, "cli-local")
    assert main(["provision", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["index"] == "cli-local" and first["documents"] == len(DEMO_DOCUMENTS)
    assert first["created"] == len(DEMO_DOCUMENTS) and first["unmapped_principals"] == []
    assert main(["provision", "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["created"] == 0 and again["updated"] == len(DEMO_DOCUMENTS)

    client = _client(search_service, "cli-local")
    assert client.get_document_count() == len(DEMO_DOCUMENTS)
    alice = demo_tenant.user_by_login("alice")
    assert alice is not None
    token = identity_platform.issue_access_token(
        "alice", audience="https://search.azure.com", scopes=["user_impersonation"]
    )
    seen = {r["id"] for r in client.search("*", query_source_authorization=token)}
    assert len(seen & set(SAMPLE_SET)) == 3
    # The ACL fields hold the demo tenant's real object ids.
    review = client.get_document("doc-03", query_source_authorization=token)
    assert review["oid"] == [alice.oid]
    finance = next(g for g in demo_tenant.groups if g.name == "Finance")
    assert client.get_document("doc-02", query_source_authorization=token)["group"] == [finance.id]


def test_local_mode_without_a_stack_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["provision"]) != 0
    err = capsys.readouterr().err
    assert "No local stack is running" in err and "obo-console server" in err


def test_azure_mode_maps_demo_principals_with_assign(
    search_service: SearchService,
    identity_platform: IdentityPlatform,
    demo_tenant: Tenant,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    alice = demo_tenant.user_by_login("alice")
    assert alice is not None
    finance_id = str(uuid.uuid4())  # a group alice is not in
    monkeypatch.setenv("OBO_CONSOLE_MODE", "azure")
    monkeypatch.setenv("OBO_CONSOLE_SEARCH_ENDPOINT", search_service.endpoint)
    monkeypatch.setenv("OBO_CONSOLE_SEARCH_API_KEY", search_service.api_key.get_secret_value())
    monkeypatch.setenv("OBO_CONSOLE_SEARCH_INDEX", "cli-azure")
    code = main(
        ["provision", "--json", "--assign", f"alice={alice.oid}", "--assign", f"group:finance={finance_id}"]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    report = json.loads(captured.out)
    assert report["index"] == "cli-azure"
    assert set(report["unmapped_principals"]) == set(referenced_principals()) - {"alice", "group:Finance"}
    assert "not mapped" in captured.err

    # alice now reads exactly the public documents and the ones naming her directly: her groups were not mapped.
    token = identity_platform.issue_access_token(
        "alice", audience="https://search.azure.com", scopes=["user_impersonation"]
    )
    client = _client(search_service, "cli-azure")
    seen = {r["id"] for r in client.search("*", query_source_authorization=token)}
    assert seen == {d.id for d in DEMO_DOCUMENTS if d.public or "alice" in d.users}
    # A member of the mapped Finance id reads the Finance documents (checked in-process against the store).
    store = search_service.store
    assert store is not None
    member = QueryIdentity(demo_tenant.tenant_id, str(uuid.uuid4()), (finance_id,))
    assert store.get_document("cli-azure", "doc-02", None, member)["group"] == [finance_id]
    # Unmapped readers are left out, never replaced by something wider.
    with pytest.raises(SearchError):
        store.get_document("cli-azure", "doc-06", None, member)  # Engineering: unmapped, so nobody


def test_assignments_are_validated() -> None:
    assert parse_assignments(["Alice=AAAAAAAA-0000-0000-0000-000000000001"]) == {
        "alice": "aaaaaaaa-0000-0000-0000-000000000001"
    }
    for bad in ["alice", "mallory=00000000-0000-0000-0000-000000000001", "alice=not-a-guid", "=x"]:
        with pytest.raises(ValueError):
            parse_assignments([bad])
    assert "group:Finance" in referenced_principals() and "alice" in referenced_principals()


def test_invalid_assign_is_a_user_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["provision", "--assign", "mallory=1"]) != 0
    assert "unknown demo principal" in capsys.readouterr().err
